// The robots you own or hold a role on, online or not, registering a new one, and fleet bootstrap
// tokens with which robots enroll themselves.

import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Alert } from '../ui.js';
import { BootstrapTokens } from './BootstrapTokens.js';
import { Credentials, type Issued } from './Credentials.js';

export interface Robot {
  id: string;
  name: string;
  ownerId: string;
  createdAt: string;
  lastSeenAt: string | null;
  online: boolean;
  role: 'owner' | 'operator' | 'viewer' | null;
}

export function RobotList() {
  const [robots, setRobots] = useState<Robot[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [issued, setIssued] = useState<Issued | undefined>();

  async function load() {
    try {
      const all: Robot[] = [];
      let cursor: string | null = null;
      do {
        const page: { robots: Robot[]; nextCursor: string | null } = await api('GET', '/robots', undefined, {
          query: { limit: '100', ...(cursor ? { cursor } : {}) },
        });
        all.push(...page.robots);
        cursor = page.nextCursor;
      } while (cursor);
      setRobots(all);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  useEffect(() => {
    void load();
  }, []);

  async function register(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const name = String(new FormData(form).get('name') ?? '').trim();
    try {
      setIssued(await api<Issued>('POST', '/robots', { name }));
      form.reset();
      setError(undefined);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  }

  return (
    <section class="page" aria-label="Robots">
      <h2>Robots</h2>
      {robots && robots.length === 0 && <p class="muted">No robots yet: register one below, or ask an owner to grant you a role on theirs.</p>}
      {robots && robots.length > 0 && (
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">Your role</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {robots.map((r) => (
              <tr key={r.id}>
                <td>
                  <a href={`#/robot/${r.id}`}>{r.name}</a>
                </td>
                <td>
                  <span class={r.online ? 'dot on' : 'dot'} aria-hidden="true" /> {r.online ? 'online' : 'offline'}
                </td>
                <td>{r.role ?? 'admin'}</td>
                <td>{r.lastSeenAt ? new Date(r.lastSeenAt).toLocaleString() : 'never'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form onSubmit={register} class="row narrow">
        <label class="grow">
          Register a robot
          <input name="name" required maxLength={64} placeholder="Its name, e.g. rover-1" />
        </label>
        <button type="submit" class="primary">
          Register
        </button>
      </form>
      <Alert error={error} />
      {issued && <Credentials issued={issued} onClose={() => setIssued(undefined)} />}
      <BootstrapTokens />
    </section>
  );
}
