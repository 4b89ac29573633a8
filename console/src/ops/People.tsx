// Accounts as an admin sees them: find them, disable or enable them.

import { useState } from 'preact/hooks';
import { api } from '../api.js';
import type { User } from '../types.js';
import { Alert } from '../ui.js';

interface AdminUser extends User {
  isAdmin: boolean;
  disabledAt: string | null;
}

export function People({ myId }: { myId: string }) {
  const [users, setUsers] = useState<AdminUser[] | undefined>();
  const [more, setMore] = useState<string | null>(null);
  const [q, setQ] = useState('');
  const [error, setError] = useState<string | undefined>();

  const search = (query: string, cursor?: string) =>
    api<{ users: AdminUser[]; nextCursor: string | null }>('GET', '/admin/users', undefined, {
      query: { q: query, limit: '50', ...(cursor ? { cursor } : {}) },
    }).then(
      (r) => {
        setUsers((us) => (cursor ? [...(us ?? []), ...r.users] : r.users));
        setMore(r.nextCursor);
        setError(undefined);
      },
      (e: Error) => setError(e.message),
    );

  const toggle = (u: AdminUser) => () =>
    void api<{ user: AdminUser }>('POST', `/admin/users/${u.id}/${u.disabledAt ? 'enable' : 'disable'}`).then(
      (r) => setUsers((us) => us?.map((x) => (x.id === u.id ? r.user : x))),
      (e: Error) => setError(e.message),
    );

  return (
    <section aria-label="People">
      <form
        class="row narrow"
        onSubmit={(e) => {
          e.preventDefault();
          void search(q);
        }}
      >
        <label class="grow">
          Find accounts
          <input type="search" value={q} onInput={(e) => setQ((e.currentTarget as HTMLInputElement).value)} placeholder="Name, or an exact email address" />
        </label>
        <button type="submit">Search</button>
      </form>
      <Alert error={error} />
      {users && (
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Username</th>
              <th scope="col">Name</th>
              <th scope="col">Since</th>
              <th scope="col">State</th>
              <th scope="col" />
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.id}>
                <td>
                  {u.username}
                  {u.isAdmin && <span class="muted"> (admin)</span>}
                  {u.bot && <span class="muted"> (bot)</span>}
                </td>
                <td>{u.displayName}</td>
                <td>{new Date(u.createdAt).toLocaleDateString()}</td>
                <td>{u.disabledAt ? `disabled ${new Date(u.disabledAt).toLocaleString()}` : 'active'}</td>
                <td>
                  {u.id !== myId && (
                    <button
                      type="button"
                      class={u.disabledAt ? undefined : 'danger'}
                      onClick={toggle(u)}
                      aria-label={`${u.disabledAt ? 'Enable' : 'Disable'} ${u.username}`}
                    >
                      {u.disabledAt ? 'Enable' : 'Disable'}
                    </button>
                  )}
                </td>
              </tr>
            ))}
            {users.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">
                  Nobody matches.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {more && (
        <button type="button" onClick={() => void search(q, more)}>
          More
        </button>
      )}
    </section>
  );
}
