// A robot's command audit log, newest first, reloaded after each command sent from the page.

import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { nameOf, resolveNames } from '../chat/rooms.js';

const IN_FLIGHT_RELOAD_MS = 1000;

interface Command {
  id: string;
  userId: string | null;
  command: string;
  issuedAt: string;
  deliveredAt: string | null;
  acceptedAt: string | null;
  completedAt: string | null;
  outcome: string | null;
}

export function Audit({ robot, tick }: { robot: string; tick: number }) {
  const [rows, setRows] = useState<Command[]>([]);
  const [error, setError] = useState<string | undefined>();
  const [n, setN] = useState(0);
  useEffect(() => {
    let again: ReturnType<typeof setTimeout> | undefined;
    api<{ commands: Command[] }>('GET', `/robots/${robot}/audit`, undefined, { query: { limit: '20' } }).then(
      (r) => {
        setRows(r.commands);
        setError(undefined);
        void resolveNames(r.commands.map((c) => c.userId));
        // The log is written just after a command's stages are reported: while a command shows no
        // outcome yet, read it again shortly.
        if (r.commands.some((c) => c.outcome === null)) again = setTimeout(() => setN((x) => x + 1), IN_FLIGHT_RELOAD_MS);
      },
      (e: Error) => setError(e.message),
    );
    return () => clearTimeout(again);
  }, [robot, tick, n]);
  const t = (s: string | null) => (s ? new Date(s).toLocaleTimeString() : '—');
  return (
    <section aria-label="Audit log">
      <div class="row">
        <h3 class="grow">Audit log</h3>
        <button type="button" onClick={() => setN((x) => x + 1)}>
          Reload
        </button>
      </div>
      {error && <p class="error">{error}</p>}
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Command</th>
            <th scope="col">By</th>
            <th scope="col">Issued</th>
            <th scope="col">Delivered</th>
            <th scope="col">Accepted</th>
            <th scope="col">Done</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((c) => (
            <tr key={c.id}>
              <td>{c.command}</td>
              <td>{nameOf(c.userId)}</td>
              <td>{t(c.issuedAt)}</td>
              <td>{t(c.deliveredAt)}</td>
              <td>{t(c.acceptedAt)}</td>
              <td>{t(c.completedAt)}</td>
              <td>{c.outcome ?? 'in flight'}</td>
            </tr>
          ))}
          {rows.length === 0 && (
            <tr>
              <td colSpan={7} class="muted">
                No commands yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}
