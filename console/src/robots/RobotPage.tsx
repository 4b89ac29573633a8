// One robot: its state and channels (each with a box to watch it or not), live plots of numeric
// telemetry of the watched channels, the latest value of each channel, the control lease, commands
// as they pass their stages, the audit log, and an emergency stop that stays on screen. Owners
// also rotate or revoke its certificate, grant roles and delete it.

import { useEffect, useMemo, useState } from 'preact/hooks';
import type { SwitchboardClient } from '../../../src/client/index.js';
import type { Me } from '../types.js';
import { Alert, useAction } from '../ui.js';
import { Audit } from './Audit.js';
import { OpenInFoxglove } from './Foxglove.js';
import { Owner } from './Owner.js';
import { Plot } from './Plot.js';
import { RobotWatch } from './watch.js';

const time = (ms: number) => new Date(ms).toLocaleTimeString();

function preview(data: unknown): string {
  if (data instanceof Uint8Array) return `${data.byteLength} bytes`;
  const s = JSON.stringify(data);
  return s.length > 120 ? `${s.slice(0, 117)}…` : s;
}

export function RobotPage({ id, client, me }: { id: string; client: SwitchboardClient; me: Me }) {
  const watch = useMemo(() => new RobotWatch(client, id), [client, id]);
  const [auditTick, setAuditTick] = useState(0);
  const { error, setError, act: guard } = useAction();
  useEffect(() => {
    void watch.start();
    return () => watch.stop();
  }, [watch]);

  const st = watch.state.value;
  const lease = watch.lease.value;
  const role = st?.role ?? null;
  const operator = role === 'operator' || role === 'owner' || (role === null && me.isAdmin);
  const mine = lease?.holder.id === me.id;

  async function send(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const name = String(f.get('name') ?? '').trim();
    const raw = String(f.get('args') ?? '').trim();
    let args: unknown;
    try {
      args = raw ? JSON.parse(raw) : undefined;
    } catch {
      setError('The arguments must be JSON, e.g. {"x": 1}.');
      return;
    }
    await guard(async () => {
      await watch.handle.command(name, args, { timeoutMs: Number(f.get('timeout')) * 1000 });
      setAuditTick((n) => n + 1);
    })();
  }

  const estop = guard(async () => {
    await watch.handle.estop();
    setAuditTick((n) => n + 1);
  });

  const latest = watch.latest.value;
  return (
    <section class="page robot" aria-label={st?.name ?? 'Robot'}>
      <header class="robot-head">
        <h2>{st?.name ?? '…'}</h2>
        <span class="presence">
          <span class={st?.online ? 'dot on' : 'dot'} aria-hidden="true" /> {st ? (st.online ? 'online' : 'offline') : watch.status.value}
        </span>
        <span class="muted">{role ? `you are ${role === 'owner' ? 'its owner' : `an ${role}`}` : me.isAdmin ? 'admin' : ''}</span>
        <span class="spacer" />
        <OpenInFoxglove robot={id} onError={setError} />
        <button type="button" class="estop" onClick={estop} disabled={!operator} title={operator ? 'Stop the robot now' : 'Operators only'}>
          EMERGENCY STOP
        </button>
      </header>
      <Alert error={error ?? watch.error.value} />

      <div class="cols">
        <section aria-label="Telemetry">
          <h3>Telemetry</h3>
          <div class="plots">
            {watch.shownFields().map((f) => (
              <Plot key={f} label={f} series={watch.series.get(f) as never} />
            ))}
            {watch.shownFields().length === 0 && <p class="muted">No numeric telemetry yet.</p>}
          </div>
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Channel</th>
                <th scope="col">Delivery</th>
                <th scope="col">Latest</th>
                <th scope="col">At</th>
                <th scope="col">Watch</th>
              </tr>
            </thead>
            <tbody>
              {(st?.channels ?? []).map((c) => {
                const s = latest.get(c.id);
                return (
                  <tr key={c.id}>
                    <td>
                      {c.name} <span class="muted">{c.schema ?? c.encoding}</span>
                    </td>
                    <td>{c.delivery}</td>
                    <td>
                      <code>{s ? preview(s.data) : '—'}</code>
                    </td>
                    <td>{s ? time(s.ts) : ''}</td>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`Watch ${c.name}`}
                        checked={watch.watches(c.name)}
                        onChange={(e) => guard(() => watch.choose(c.name, (e.currentTarget as HTMLInputElement).checked))()}
                      />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>

        <section aria-label="Control">
          <h3>Control lease</h3>
          <p>
            {lease ? (
              <>
                Held by <b>{mine ? 'you' : lease.holder.username}</b> until {time(lease.expiresAt)}
                {mine && watch.handle.lease.autoRenewing ? ' (renewing)' : ''}
              </>
            ) : (
              'Nobody holds it.'
            )}
          </p>
          <div class="row">
            {!mine && (
              <button
                type="button"
                disabled={!operator}
                onClick={guard(() => watch.handle.lease.acquire({ autoRenew: true, force: Boolean(lease) && (role === 'owner' || me.isAdmin) }))}
              >
                {lease ? 'Take over' : 'Take control'}
              </button>
            )}
            {mine && (
              <button type="button" onClick={guard(() => watch.handle.lease.release())}>
                Release
              </button>
            )}
          </div>

          <h3>Send a command</h3>
          <form class="command" onSubmit={send}>
            <label>
              Command
              <input name="name" required maxLength={64} placeholder="e.g. move" />
            </label>
            <label>
              Arguments (JSON)
              <input name="args" placeholder='{"x": 1}' />
            </label>
            <label>
              Deadline (s)
              <input name="timeout" type="number" min={1} max={600} value={10} />
            </label>
            <button type="submit" class="primary" disabled={!operator || !mine} title={mine ? undefined : 'Take the control lease first'}>
              Send
            </button>
          </form>
          <ol class="commands" aria-label="Commands sent">
            {watch.commands.value.map((c) => (
              <li key={c.key}>
                <b>{c.name}</b>{' '}
                {c.stages.map((s) => (
                  <span key={s.stage} class={`stage ${s.stage}`}>
                    {s.stage}
                  </span>
                ))}
              </li>
            ))}
          </ol>
        </section>
      </div>

      <Audit robot={id} tick={auditTick} />
      {role === 'owner' || me.isAdmin ? <Owner robot={id} name={st?.name ?? ''} /> : null}
    </section>
  );
}
