// What only a robot's owner (or an admin) does: grant roles, rotate or revoke the certificate, sign
// the robot's own certificate request, delete the robot.

import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import type { User } from '../types.js';
import { Alert, useAction } from '../ui.js';
import { Credentials, type Issued } from './Credentials.js';
import { SignCsr } from './SignCsr.js';

interface Grant {
  userId: string;
  username: string;
  role: 'viewer' | 'operator';
}

export function Owner({ robot, name }: { robot: string; name: string }) {
  const [grants, setGrants] = useState<Grant[]>([]);
  const [issued, setIssued] = useState<Issued | undefined>();
  const [signing, setSigning] = useState(false);
  const { error, setError, act: guard } = useAction();
  const [info, setInfo] = useState<string | undefined>();

  const load = () =>
    api<{ grants: Grant[] }>('GET', `/robots/${robot}/grants`).then(
      (r) => setGrants(r.grants),
      (e: Error) => setError(e.message),
    );
  useEffect(() => {
    void load();
  }, [robot]);

  async function grant(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const username = String(f.get('username') ?? '').trim();
    await guard(async () => {
      const { users } = await api<{ users: User[] }>('GET', '/users', undefined, { query: { q: username, limit: '20' } });
      const user = users.find((u) => u.username.toLowerCase() === username.toLowerCase());
      if (!user) throw new Error(`Nobody is called ${username}.`);
      await api('PUT', `/robots/${robot}/grants/${user.id}`, { role: f.get('role') });
      await load();
    })();
  }

  return (
    <section aria-label="Owner">
      <h3>Who may watch and drive it</h3>
      <ul class="pick">
        {grants.map((g) => (
          <li key={g.userId}>
            <span class="grow">
              {g.username} <span class="muted">{g.role}</span>
            </span>
            <button type="button" onClick={guard(() => api('DELETE', `/robots/${robot}/grants/${g.userId}`).then(load))}>
              Remove
            </button>
          </li>
        ))}
        {grants.length === 0 && <li class="muted">Only you.</li>}
      </ul>
      <form class="row narrow" onSubmit={grant}>
        <label class="grow">
          Username
          <input name="username" required maxLength={32} />
        </label>
        <label>
          Role
          <select name="role">
            <option value="viewer">viewer</option>
            <option value="operator">operator</option>
          </select>
        </label>
        <button type="submit">Grant</button>
      </form>
      <h3>Certificate</h3>
      <div class="row">
        <button
          type="button"
          onClick={guard(async () => {
            if (!confirm(`Issue ${name} a new certificate and key? Its current ones stop working at once.`)) return;
            // A rotation answers with the new files only: the robot is this one.
            setIssued({ robot: { id: robot, name }, ...(await api<Omit<Issued, 'robot'>>('POST', `/robots/${robot}/certificate`)) });
          })}
        >
          Rotate (new key; the old one stops working)
        </button>
        <button type="button" onClick={() => setSigning(true)}>
          Sign a certificate request
        </button>
        <button
          type="button"
          onClick={guard(async () => {
            if (!confirm(`Revoke every certificate of ${name}? It disconnects now and cannot connect until rotated.`)) return;
            const r = await api<{ revoked: number }>('DELETE', `/robots/${robot}/certificate`);
            setInfo(`${r.revoked} certificate(s) revoked.`);
          })}
        >
          Revoke
        </button>
        <button
          type="button"
          class="danger"
          onClick={guard(async () => {
            if (!confirm(`Delete ${name} with its grants, certificates and audit log?`)) return;
            await api('DELETE', `/robots/${robot}`);
            location.hash = '#/robots';
          })}
        >
          Delete robot
        </button>
      </div>
      {info && <p class="info">{info}</p>}
      <Alert error={error} />
      {issued && <Credentials issued={issued} onClose={() => setIssued(undefined)} />}
      {signing && (
        <SignCsr
          robot={robot}
          name={name}
          onClose={() => setSigning(false)}
          onSigned={(i) => {
            setSigning(false);
            setIssued(i);
          }}
        />
      )}
    </section>
  );
}
