// Small pieces every screen uses.

import { useState } from 'preact/hooks';

/** The last failure of an action on this screen, read out by screen readers as it appears. */
export function Alert({ error }: { error: string | undefined }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

/**
 * Runs a screen's actions: `run(f)` starts one now, `act(f)` makes an event handler of it. The
 * last one's failure is `error` (for an Alert); a success clears it.
 */
export function useAction() {
  const [error, setError] = useState<string | undefined>();
  const run = (f: () => Promise<unknown>): void =>
    void f().then(
      () => setError(undefined),
      (e: Error) => setError(e.message),
    );
  return { error, setError, run, act: (f: () => Promise<unknown>) => () => run(f) };
}
