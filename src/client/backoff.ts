// Reconnect delays. Exponential with "equal jitter": half the delay is fixed, half random, so a
// fleet of clients dropped at once spreads its reconnects while each still waits a minimum.

export interface BackoffOptions {
  /** Ceiling of the first delay, ms. */
  minMs: number;
  /** Largest delay, ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { minMs: 250, maxMs: 30_000 };

/** The delay before retry number `attempt` (0 for the first), ms: in [c/2, c] with c = min(maxMs, minMs·2^attempt). */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxMs, o.minMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** A server-suggested delay, spread over [ms, 1.5·ms] so clients told together do not return together. */
export function jitter(ms: number, random: () => number = Math.random): number {
  return Math.round(ms + (random() * ms) / 2);
}
