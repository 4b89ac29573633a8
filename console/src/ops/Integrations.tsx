// The server API's keys and the webhook endpoints: create (the secret is shown this once), list,
// revoke or delete, and an endpoint's delivery log.

import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Dialog } from '../chat/NewRoom.js';
import { Alert, useAction } from '../ui.js';

interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}
interface Webhook {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
  disabledAt: string | null;
  disabledReason: string | null;
}
interface Delivery {
  id: string;
  type: string;
  createdAt: string;
  attempts: number;
  state: string;
  lastStatus: number | null;
  lastError: string | null;
}

const SCOPES = ['publish', 'presence', 'users', 'rooms'];
const EVENTS = [
  'message.created',
  'message.edited',
  'message.deleted',
  'member.joined',
  'member.left',
  'user.registered',
  'robot.online',
  'robot.offline',
  'command.completed',
];
const when = (s: string | null) => (s ? new Date(s).toLocaleString() : '—');

function Secret({ what, secret, onClose }: { what: string; secret: string; onClose: () => void }) {
  return (
    <Dialog title={`The secret of ${what}`} onClose={onClose}>
      <p>
        <strong>Copy it now:</strong> it is shown this once; the hub keeps only a hash of it.
      </p>
      <input readOnly value={secret} aria-label="Secret" onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
    </Dialog>
  );
}

const checked = (form: HTMLFormElement, name: string) => new FormData(form).getAll(name).map(String);

export function Integrations() {
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [hooks, setHooks] = useState<Webhook[]>([]);
  const [log, setLog] = useState<{ hook: string; deliveries: Delivery[] } | undefined>();
  const [secret, setSecret] = useState<{ what: string; secret: string } | undefined>();
  const { error, run: guard } = useAction();
  const load = () =>
    guard(async () => {
      setKeys((await api<{ apiKeys: ApiKey[] }>('GET', '/admin/api-keys')).apiKeys);
      setHooks((await api<{ webhooks: Webhook[] }>('GET', '/admin/webhooks')).webhooks);
    });
  useEffect(load, []);

  function createKey(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    guard(async () => {
      const r = await api<{ apiKey: ApiKey; secret: string }>('POST', '/admin/api-keys', {
        name: String(new FormData(form).get('name')),
        scopes: checked(form, 'scope'),
      });
      setSecret({ what: `key ${r.apiKey.name}`, secret: r.secret });
      form.reset();
      load();
    });
  }

  function createHook(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    guard(async () => {
      const r = await api<{ webhook: Webhook; secret: string }>('POST', '/admin/webhooks', {
        url: String(new FormData(form).get('url')),
        events: checked(form, 'event'),
      });
      setSecret({ what: r.webhook.url, secret: r.secret });
      form.reset();
      load();
    });
  }

  return (
    <section aria-label="Integrations">
      <Alert error={error} />
      <h3>Server API keys</h3>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Key</th>
            <th scope="col">Scopes</th>
            <th scope="col">Last used</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td>
                <code>{k.prefix}…</code>
              </td>
              <td>{k.scopes.join(', ')}</td>
              <td>{when(k.lastUsedAt)}</td>
              <td>
                {k.revokedAt ? (
                  `revoked ${when(k.revokedAt)}`
                ) : (
                  <button type="button" class="danger" onClick={() => guard(() => api('DELETE', `/admin/api-keys/${k.id}`).then(load))}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="narrow" onSubmit={createKey}>
        <div class="row">
          <label class="grow">
            New key's name
            <input name="name" required maxLength={64} placeholder="e.g. deploys" />
          </label>
          <button type="submit">Create key</button>
        </div>
        <fieldset class="checks">
          <legend>Scopes</legend>
          {SCOPES.map((s) => (
            <label key={s}>
              <input type="checkbox" name="scope" value={s} /> {s}
            </label>
          ))}
        </fieldset>
      </form>

      <h3>Webhooks</h3>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Endpoint</th>
            <th scope="col">Events</th>
            <th scope="col">State</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {hooks.map((h) => (
            <tr key={h.id}>
              <td class="wrap">{h.url}</td>
              <td>{h.events.join(', ')}</td>
              <td>{h.disabledAt ? `disabled: ${h.disabledReason ?? ''}` : 'enabled'}</td>
              <td class="row">
                <button
                  type="button"
                  onClick={() =>
                    guard(async () =>
                      setLog({ hook: h.id, deliveries: (await api<{ deliveries: Delivery[] }>('GET', `/admin/webhooks/${h.id}/deliveries`)).deliveries }),
                    )
                  }
                >
                  Deliveries
                </button>
                <button type="button" class="danger" onClick={() => guard(() => api('DELETE', `/admin/webhooks/${h.id}`).then(load))}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {log && (
        <table class="grid" aria-label="Deliveries">
          <thead>
            <tr>
              <th scope="col">Event</th>
              <th scope="col">Created</th>
              <th scope="col">State</th>
              <th scope="col">Attempts</th>
              <th scope="col">Last answer</th>
            </tr>
          </thead>
          <tbody>
            {log.deliveries.map((d) => (
              <tr key={d.id}>
                <td>{d.type}</td>
                <td>{when(d.createdAt)}</td>
                <td>{d.state}</td>
                <td>{d.attempts}</td>
                <td>{d.lastStatus ?? d.lastError ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="narrow" onSubmit={createHook}>
        <div class="row">
          <label class="grow">
            New endpoint (https URL)
            <input name="url" type="url" required maxLength={2048} placeholder="https://backend.example.com/hooks" />
          </label>
          <button type="submit">Add webhook</button>
        </div>
        <fieldset class="checks">
          <legend>Events</legend>
          {EVENTS.map((ev) => (
            <label key={ev}>
              <input type="checkbox" name="event" value={ev} /> {ev}
            </label>
          ))}
        </fieldset>
      </form>
      {secret && <Secret what={secret.what} secret={secret.secret} onClose={() => setSecret(undefined)} />}
    </section>
  );
}
