// Fleet bootstrap tokens on the robots list: robots enroll themselves as yours with one (and their
// own key's certificate request). A new token's secret is shown once; the list shows its uses left,
// expiry and state, and revokes it.

import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Alert, useAction } from '../ui.js';

interface Token {
  id: string;
  name: string | null;
  prefix: string;
  uses: number;
  usesLeft: number;
  expiresAt: string;
  revokedAt: string | null;
}

const HOUR_S = 3_600;

function state(t: Token): string {
  if (t.revokedAt) return 'revoked';
  if (new Date(t.expiresAt).getTime() <= Date.now()) return 'expired';
  if (t.usesLeft === 0) return 'used up';
  return `${t.usesLeft} of ${t.uses} left`;
}

export function BootstrapTokens() {
  const [tokens, setTokens] = useState<Token[]>([]);
  const [secret, setSecret] = useState<string | undefined>();
  const { error, run, act } = useAction();

  const load = () => api<{ tokens: Token[] }>('GET', '/robots/bootstrap-tokens').then((r) => setTokens(r.tokens));
  useEffect(() => run(load), []);

  function create(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const name = String(f.get('name') ?? '').trim();
    run(async () => {
      const r = await api<{ token: Token; secret: string }>('POST', '/robots/bootstrap-tokens', {
        ...(name ? { name } : {}),
        uses: Number(f.get('uses')),
        expiresInS: Number(f.get('hours')) * HOUR_S,
      });
      setSecret(r.secret);
      form.reset();
      await load();
    });
  }

  return (
    <section aria-label="Fleet bootstrap tokens">
      <h3>Fleet bootstrap tokens</h3>
      <p class="muted">A robot that holds one enrolls itself as yours, with a certificate for a key it made (see docs/robots.md).</p>
      {secret && (
        <p class="info" aria-live="polite">
          The token, shown this once: <code class="wrap">{secret}</code>{' '}
          <button type="button" onClick={() => void navigator.clipboard?.writeText(secret)}>
            Copy
          </button>{' '}
          <button type="button" onClick={() => setSecret(undefined)}>
            Hide
          </button>
        </p>
      )}
      {tokens.length > 0 && (
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Token</th>
              <th scope="col">Uses</th>
              <th scope="col">Expires</th>
              <th scope="col" />
            </tr>
          </thead>
          <tbody>
            {tokens.map((t) => (
              <tr key={t.id}>
                <td>{t.name ?? <span class="muted">unnamed</span>}</td>
                <td>
                  <code>{t.prefix}…</code>
                </td>
                <td>{state(t)}</td>
                <td>{new Date(t.expiresAt).toLocaleString()}</td>
                <td>
                  {state(t).endsWith('left') && (
                    <button type="button" onClick={act(() => api('DELETE', `/robots/bootstrap-tokens/${t.id}`).then(load))}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form onSubmit={create} class="row narrow">
        <label class="grow">
          Token name
          <input name="name" maxLength={64} placeholder="optional, e.g. line 3" />
        </label>
        <label>
          Robots
          <input name="uses" type="number" min={1} max={1000} defaultValue={1} required />
        </label>
        <label>
          Valid (hours)
          <input name="hours" type="number" min={1} max={720} defaultValue={24} required />
        </label>
        <button type="submit">Create token</button>
      </form>
      <Alert error={error} />
    </section>
  );
}
