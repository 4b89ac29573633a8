// The client SDK's robots against a real hub with its robot endpoint, through real sockets: watching
// (state, telemetry, online/offline) in both encodings, the lease and a command's stages to each
// outcome, the e-stop, automatic lease renewal, re-watching after the hub closes the connection, the
// outcome of commands in flight when the connection drops (never resent), the end of a watch
// (access revoked, robot deleted), and refusals surfacing as SwitchboardError with code and request id.

import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import WebSocket from 'ws';
import type { Emitter } from '../src/client/emitter.js';
import {
  type ClientEvents,
  type CommandStage,
  type RobotEvents,
  type RobotHandle,
  SwitchboardClient,
  type SwitchboardClientOptions,
  SwitchboardError,
  type TelemetrySample,
} from '../src/client/index.js';
import { CloseCode } from '../src/protocol/frames.js';
import type { RobotClient } from '../src/robot-kit/robot-client.js';
import { CHANNELS, type Enrolled, startRobotHub, type User } from './helpers/robots.js';

const h = await startRobotHub(t);
const wsUrl = `${h.hub.url.replace(/^http/, 'ws')}/ws`;

function newClient(t: Test, token: SwitchboardClientOptions['token'], opts: Partial<SwitchboardClientOptions> = {}): SwitchboardClient {
  const c = new SwitchboardClient({ url: wsUrl, token, WebSocket, requestTimeoutMs: 5_000, reconnect: { minMs: 20, maxMs: 200 }, ...opts });
  t.teardown(() => c.close());
  return c;
}

/** The arguments of the next `event` for which `pred` holds; rejects after `ms`. Set it up before the action that causes it. */
function next<K extends keyof RobotEvents>(
  em: RobotHandle,
  event: K,
  pred?: (...args: Parameters<RobotEvents[K]>) => boolean,
  ms?: number,
): Promise<Parameters<RobotEvents[K]>>;
function next<K extends keyof ClientEvents>(
  em: SwitchboardClient,
  event: K,
  pred?: (...args: Parameters<ClientEvents[K]>) => boolean,
  ms?: number,
): Promise<Parameters<ClientEvents[K]>>;
function next(em: Emitter<any>, event: string, pred: (...args: any[]) => boolean = () => true, ms = 5_000): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching ${event} within ${ms} ms`));
    }, ms);
    const off = em.on(event, (...args: any[]) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

/** Everything a robot handle emits, in order. */
function record(r: RobotHandle) {
  const rec = { telemetry: [] as TelemetrySample[], events: [] as string[], commands: [] as CommandStage[], errors: [] as SwitchboardError[] };
  r.on('telemetry', (s) => rec.telemetry.push(s));
  r.on('online', () => rec.events.push('online'));
  r.on('offline', () => rec.events.push('offline'));
  r.on('lease', (l, reason) => rec.events.push(`lease:${reason}:${l ? l.holder.username : 'none'}`));
  r.on('watching', () => rec.events.push('watching'));
  r.on('ended', (reason) => rec.events.push(`ended:${reason}`));
  r.on('command', (s) => rec.commands.push(s));
  r.on('error', (e) => rec.errors.push(e));
  return rec;
}

async function rejectsWith(t: Test, p: Promise<unknown>, code: string, what: string): Promise<SwitchboardError | undefined> {
  try {
    await p;
    t.fail(`${what}: expected ${code}, but it succeeded`);
    return undefined;
  } catch (e) {
    t.ok(e instanceof SwitchboardError, `${what}: a SwitchboardError`);
    t.equal((e as SwitchboardError).code, code, `${what}: ${code}`);
    return e as SwitchboardError;
  }
}

/** A robot that answers every command: accepted, then completed with `{ name, args }`; names in `hold` get no answer. */
function answering(robot: RobotClient, hold: Set<string> = new Set()) {
  const received: { id: string; name: string; args: unknown }[] = [];
  robot.on('command', (c) => {
    received.push({ id: c.command, name: c.name, args: c.args });
    if (hold.has(c.name)) return;
    robot.status(c.command, 'accepted');
    robot.status(c.command, 'completed', { name: c.name, args: c.args });
  });
  return received;
}

/** Closes a client's connection from the hub's side, as a node under load would (a reconnectable code). */
function closeFromServer(c: SwitchboardClient, code: number = CloseCode.OVERLOADED): void {
  const conns = (h.hub.ws as unknown as { conns?: Set<{ id: string; close(code: number, reason: string): void }> }).conns;
  if (!conns) throw new Error('the hub no longer keeps its connections in WsServer.conns: update closeFromServer');
  const session = c.hello?.session;
  const conn = [...conns].find((x) => x.id === session);
  if (!conn) throw new Error(`the hub has no connection for session ${session}`);
  conn.close(code, 'closed by the test');
}

/** A token function whose connections wait while the gate is shut: a reconnect can be held back. */
function gated(u: User) {
  let open: () => void = () => {};
  let gate: Promise<void> | undefined;
  return {
    token: async () => {
      if (gate) await gate;
      return u.token;
    },
    shut() {
      gate = new Promise((resolve) => {
        open = resolve;
      });
    },
    open() {
      gate = undefined;
      open();
    },
  };
}

async function setup(): Promise<{ owner: User; r: Enrolled; robot: RobotClient }> {
  const owner = await h.signUp('own');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r);
  return { owner, r, robot };
}

const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

for (const encoding of ['msgpack', 'json'] as const) {
  t.test(`${encoding}: watch, state, telemetry, online and offline, unwatch`, async (t) => {
    const { owner, r, robot } = await setup();
    const viewer = await h.signUp('view');
    await h.grant(owner, r.id, viewer, 'viewer');
    const c = newClient(t, owner.token, { encoding });
    await c.connect();
    const handle = c.robot(r.id);
    t.equal(c.robot(r.id), handle, 'one handle per robot');
    t.equal(handle.status, 'idle');
    t.equal(handle.state, undefined, 'no state before the watch');
    const rec = record(handle);

    t.equal(await c.watchRobot(r.id), handle);
    t.equal(handle.status, 'watching');
    t.match(handle.state, { id: r.id, name: r.name, role: 'owner', online: true, lease: null });
    t.same(handle.state?.channels, CHANNELS, 'the channels the robot advertised');
    t.equal(handle.state?.latest.size, 0, 'no samples yet');

    const pose = next(handle, 'telemetry', (s) => s.ch === 1);
    const log = next(handle, 'telemetry', (s) => s.ch === 2);
    robot.telemetry(1, { x: 1, y: 2 }, 1_000);
    robot.telemetry(2, 'hello', 1_001);
    t.same((await pose)[0], { robot: r.id, ch: 1, channel: 'pose', ts: 1_000, data: { x: 1, y: 2 } });
    t.same((await log)[0], { robot: r.id, ch: 2, channel: 'log', ts: 1_001, data: 'hello' });
    t.same(handle.sample('pose')?.data, { x: 1, y: 2 }, 'the state keeps the newest sample, by name');
    t.equal(handle.sample(2)?.data, 'hello', 'and by channel id');

    const cv = newClient(t, viewer.token, { encoding });
    await cv.connect();
    const hv = await cv.watchRobot(r.id);
    t.equal(hv.state?.role, 'viewer');
    t.same(
      [...(hv.state?.latest.values() ?? [])].map((s) => [s.channel, s.data]),
      [
        ['pose', { x: 1, y: 2 }],
        ['log', 'hello'],
      ],
      'a new watcher gets the latest sample of every channel',
    );

    const offline = next(handle, 'offline');
    await robot.close();
    const [lastSeen] = await offline;
    t.type(lastSeen, 'number');
    t.equal(handle.state?.online, false);
    t.equal(handle.state?.lastSeen, lastSeen);

    const online = next(handle, 'online');
    const again = await h.connectRobot(r, [CHANNELS[0]!]);
    t.same((await online)[0], [CHANNELS[0]], 'online, with the channels the robot now advertises');
    t.equal(handle.state?.online, true);
    t.equal(handle.sample('log'), undefined, 'samples of channels no longer advertised are dropped');

    await handle.unwatch();
    t.equal(handle.status, 'idle');
    const seenByViewer = next(hv, 'telemetry', (s) => s.ts === 2_000);
    again.telemetry(1, { x: 5, y: 5 }, 2_000);
    await seenByViewer;
    await c.ping(); // every frame the hub sent before the pong has arrived
    t.notOk(
      rec.telemetry.some((s) => s.ts === 2_000),
      'no telemetry after unwatch',
    );
    t.same(rec.events, ['watching', 'offline', 'online']);
    t.same(rec.errors, []);
  });
}

t.test('watch({channels}): only the chosen channels; a `channels` event as the robot advertises and withdraws', async (t) => {
  const { owner, r, robot } = await setup();
  const c = newClient(t, owner.token);
  await c.connect();
  const handle = await c.watchRobot(r.id, { channels: ['log', 'scan'] });
  t.same(handle.channels, ['log', 'scan'], 'the choice is kept on the handle');
  t.same(
    handle.state?.channels.map((ch) => ch.name),
    ['pose', 'log'],
    'the state lists every channel',
  );
  const rec = record(handle);
  const changed = next(handle, 'channels');
  robot.advertise([{ id: 3, name: 'scan', encoding: 'json', schema: null, delivery: 'reliable', schemaEncoding: 'jsonschema', schemaData: '{}' }]);
  const [list] = await changed;
  t.same(
    list.map((ch) => ch.name),
    ['pose', 'log', 'scan'],
    'a `channels` event with the whole list',
  );
  t.match(handle.state?.channels[2], { name: 'scan', schemaEncoding: 'jsonschema', schemaData: '{}' }, 'and the state follows');
  const scan = next(handle, 'telemetry', (s) => s.channel === 'scan');
  robot.telemetry(1, { x: 1 }, 10);
  robot.telemetry(3, 'ranges', 11);
  t.match((await scan)[0], { ch: 3, data: 'ranges' }, 'a chosen channel advertised after the watch');
  await c.ping();
  t.same(
    rec.telemetry.map((s) => s.channel),
    ['scan'],
    'no sample of a channel not chosen',
  );

  const pose = next(handle, 'telemetry', (s) => s.channel === 'pose');
  await handle.watch({ channels: ['pose'] });
  t.same(handle.channels, ['pose'], 'a second watch replaces the choice');
  robot.telemetry(1, { x: 2 }, 12);
  t.match((await pose)[0], { data: { x: 2 } });

  const withdrawn = next(handle, 'channels');
  robot.withdraw([3]);
  t.same(
    (await withdrawn)[0].map((ch) => ch.id),
    [1, 2],
  );
  t.equal(handle.sample('scan'), undefined, "a withdrawn channel's sample leaves the state");
});

t.test('numbered samples: replayed with `since`, and after a reconnect from the last seq received, each once', async (t) => {
  const { owner, r, robot } = await setup(); // channel 2, `log`, is reliable
  const stored = (seq: number) =>
    new Promise<void>((resolve) => {
      const off = robot.on('ack', (ch, s) => {
        if (ch === 2 && s >= seq) {
          off();
          resolve();
        }
      });
    });
  const first = stored(4);
  for (let seq = 0; seq < 5; seq++) robot.reliable(2, seq, `line ${seq}`);
  await first;
  const g = gated(owner);
  const c = newClient(t, g.token);
  await c.connect();
  const handle = c.robot(r.id);
  const seqs: number[] = [];
  handle.on('telemetry', (s) => {
    if (s.seq !== undefined) seqs.push(s.seq);
  });
  const replayed = next(handle, 'telemetry', (s) => s.seq === 4);
  await handle.watch({ since: { log: 1 } });
  await replayed;
  t.same(seqs, [2, 3, 4], 'the stored samples after `since`, with their seq');

  // Samples sent while the client is disconnected (its reconnect held back) arrive after it
  // reconnects, then the live ones.
  g.shut();
  const gone = next(c, 'state', (s) => s === 'reconnecting');
  closeFromServer(c);
  await gone;
  const missed = stored(9);
  for (let seq = 5; seq < 10; seq++) robot.reliable(2, seq, `line ${seq}`);
  await missed;
  t.same(seqs, [2, 3, 4], 'nothing while disconnected');
  const rewatched = next(handle, 'watching', undefined, 10_000);
  g.open();
  await rewatched;
  const live = next(handle, 'telemetry', (s) => s.seq === 10, 10_000);
  robot.reliable(2, 10, 'line 10');
  await live;
  t.same(seqs, [...Array(11).keys()].slice(2), 'nothing lost across the reconnect, nothing twice');
});

t.test('lease and commands: every stage to each outcome; renew and release', async (t) => {
  const { owner, r, robot } = await setup();
  const received = answering(robot, new Set(['ignore', 'reject', 'fail']));
  robot.on('command', (cmd) => {
    if (cmd.name === 'reject') robot.status(cmd.command, 'rejected', 'busy');
    if (cmd.name === 'fail') {
      robot.status(cmd.command, 'accepted');
      robot.status(cmd.command, 'failed', { error: 'stalled' });
    }
  });
  const c = newClient(t, owner.token);
  await c.connect();
  const handle = await c.watchRobot(r.id);
  const rec = record(handle);
  t.equal(handle.lease.held, false);

  const acquired = next(handle, 'lease', (_l, reason) => reason === 'acquired');
  const lease = await handle.lease.acquire({ ttlMs: 20_000 });
  t.equal(lease.holder.id, owner.id);
  t.type(lease.expiresAt, 'number');
  await acquired;
  t.equal(handle.lease.held, true);
  t.same(handle.state?.lease, lease, 'the state follows the lease');

  const stages: CommandStage[] = [];
  const out = await handle.command('move', { x: 1 }, { timeoutMs: 5_000, onStage: (s) => stages.push(s) });
  t.match(out, { robot: r.id, name: 'move', stage: 'completed', ok: true, fromHub: true, detail: { name: 'move', args: { x: 1 } } });
  t.match(out.cmd, isUuid, 'the hub’s command id');
  t.same(
    stages.map((s) => s.stage),
    ['queued', 'delivered', 'accepted', 'completed'],
    'every stage, queued first',
  );
  t.ok(
    stages.every((s) => s.cmd === out.cmd),
    'each stage names the command',
  );
  t.same(rec.commands, stages, 'the handle’s command event reports the same stages');
  t.same(received, [{ id: out.cmd, name: 'move', args: { x: 1 } }], 'the robot got it once, with its args');

  const noArgs = await handle.command('home');
  t.equal(noArgs.stage, 'completed');
  t.equal(received.at(-1)?.args, null, 'a command without args reaches the robot with null');

  t.match(await handle.command('reject'), { stage: 'rejected', ok: false, fromHub: true, detail: 'busy' });
  const failStages: string[] = [];
  t.match(await handle.command('fail', undefined, { onStage: (s) => failStages.push(s.stage) }), {
    stage: 'failed',
    ok: false,
    fromHub: true,
    detail: { error: 'stalled' },
  });
  t.same(failStages, ['queued', 'delivered', 'accepted', 'failed']);
  t.match(await handle.command('ignore', null, { timeoutMs: 200 }), { stage: 'timeout', ok: false, fromHub: true }, 'no answer by the deadline');

  const renewed = next(handle, 'lease', (_l, reason) => reason === 'renewed');
  const longer = await handle.lease.renew({ ttlMs: 60_000 });
  t.ok(longer.expiresAt > lease.expiresAt, 'renew extends it');
  await renewed;
  const released = next(handle, 'lease', (_l, reason) => reason === 'released');
  await handle.lease.release();
  t.same((await released)[0], null);
  t.equal(handle.lease.held, false);
  t.equal(handle.lease.current, null);
  await handle.lease.release(); // a no-op once released
  t.same(rec.errors, []);
});

t.test('errors surface as SwitchboardError with code, robot and request id', async (t) => {
  const { owner, r, robot } = await setup();
  answering(robot);
  const [operator, viewer, stranger] = [await h.signUp('op'), await h.signUp('view'), await h.signUp('str')];
  await h.grant(owner, r.id, operator, 'operator');
  await h.grant(owner, r.id, viewer, 'viewer');
  const co = newClient(t, owner.token);
  const cop = newClient(t, operator.token);
  const cv = newClient(t, viewer.token);
  const cs = newClient(t, stranger.token);
  const clientErrors: SwitchboardError[] = [];
  for (const c of [co, cop, cv, cs]) c.on('error', (e) => clientErrors.push(e));

  await rejectsWith(t, co.robot(r.id).command('move'), 'DISCONNECTED', 'a command before connect() is not queued');
  await Promise.all([co.connect(), cop.connect(), cv.connect(), cs.connect()]);

  const missing = randomUUID();
  const nf = await rejectsWith(t, co.watchRobot(missing), 'NOT_FOUND', 'watching no robot');
  t.equal(nf?.robot, missing, 'the error names the robot');
  t.ok(Number.isSafeInteger(nf?.requestId) && (nf?.requestId as number) > 0, `and the request id (${nf?.requestId})`);
  t.equal(co.robot(missing).status, 'idle', 'a refused watch is not kept');
  await rejectsWith(t, cs.watchRobot(r.id), 'NOT_FOUND', 'someone else’s robot looks like no robot');

  const hop = cop.robot(r.id);
  const noLease = await rejectsWith(t, hop.command('move', { x: 1 }), 'LEASE_REQUIRED', 'a command without the lease');
  t.equal(noLease?.robot, r.id);
  t.ok((noLease?.requestId as number) > 0, 'with the request id');
  t.match(noLease?.message, /lease/);

  await rejectsWith(t, cv.robot(r.id).lease.acquire(), 'FORBIDDEN', 'a viewer cannot hold the lease');
  await rejectsWith(t, cv.robot(r.id).estop(), 'FORBIDDEN', 'nor send an e-stop');
  await rejectsWith(t, cs.robot(r.id).command('move'), 'NOT_FOUND', 'a stranger’s command');

  await hop.lease.acquire({ ttlMs: 3_000, autoRenew: true }); // the operator does not watch
  const ho = await co.watchRobot(r.id);
  t.equal(ho.lease.current?.holder.id, operator.id, 'the watch reports who holds the lease');
  await rejectsWith(t, ho.lease.acquire(), 'LEASE_HELD', 'the lease is someone else’s');
  await rejectsWith(t, ho.command('move'), 'LEASE_REQUIRED', 'so is the right to command');
  const takenOver = next(ho, 'lease', (_l, reason) => reason === 'taken_over');
  const renewRefused = next(hop, 'error');
  t.equal((await ho.lease.acquire({ force: true })).holder.id, owner.id, 'the owner takes it over');
  await takenOver;
  const [renewErr] = await renewRefused;
  t.match(renewErr, { code: 'LEASE_REQUIRED', robot: r.id, requestId: Number }, 'the operator’s automatic renewal is refused…');
  t.equal(hop.lease.autoRenewing, false, '…and stops');
  await rejectsWith(t, hop.lease.renew(), 'LEASE_REQUIRED', 'the operator can no longer renew');
  await rejectsWith(t, hop.command('x'.repeat(65)), 'VALIDATION', 'a name over 64 characters');

  const offline = next(ho, 'offline');
  await robot.close();
  await offline;
  const off = await rejectsWith(t, ho.command('move'), 'ROBOT_OFFLINE', 'a command to an offline robot');
  t.ok((off?.requestId as number) > 0);
  const released = next(ho, 'lease', (_l, reason) => reason === 'estop');
  await rejectsWith(t, ho.estop(), 'ROBOT_OFFLINE', 'an e-stop to an offline robot');
  await released;
  t.equal(ho.lease.current, null, '…still ends the lease');

  for (const c of [co, cop, cv, cs]) t.equal(c.state, 'open', 'refusals leave the connection up');
  t.same(clientErrors, [], 'refusals of calls are not also reported as events');
});

t.test('e-stop: any operator, no lease needed; it ends the lease and stops auto-renewal', async (t) => {
  const { owner, r, robot } = await setup();
  const operator = await h.signUp('op');
  await h.grant(owner, r.id, operator, 'operator');
  const stops: string[] = [];
  robot.on('estop', (id) => {
    stops.push(id);
    robot.status(id, 'accepted');
    robot.status(id, 'completed', 'stopped');
  });
  const co = newClient(t, owner.token);
  const cop = newClient(t, operator.token);
  await Promise.all([co.connect(), cop.connect()]);
  const ho = await co.watchRobot(r.id);
  const hop = cop.robot(r.id);
  const rec = record(ho);

  // The owner holds the lease and keeps it renewed: ttl 3 s, renewed every second.
  const lease = await ho.lease.acquire({ ttlMs: 3_000, autoRenew: true });
  t.equal(ho.lease.autoRenewing, true);
  const [renewed] = await next(ho, 'lease', (_l, reason) => reason === 'renewed');
  t.ok((renewed?.expiresAt as number) > lease.expiresAt, 'renewed by itself');

  const ended = next(ho, 'lease', (_l, reason) => reason === 'estop');
  const stages: string[] = [];
  const out = await hop.estop({ onStage: (s) => stages.push(s.stage) });
  t.match(out, { name: 'estop', stage: 'completed', ok: true, fromHub: true, detail: 'stopped' });
  t.same(stages, ['queued', 'delivered', 'accepted', 'completed']);
  t.same(stops, [out.cmd], 'the robot got one stop, with that id');
  t.same((await ended)[0], null, 'the e-stop ended the lease');
  t.equal(ho.lease.held, false);
  t.equal(ho.lease.autoRenewing, false, 'automatic renewal stopped: the lease is not taken back');
  await co.ping();
  t.equal(ho.lease.current, null, 'and nobody holds it');
  t.same(rec.errors, []);
});

t.test('after the hub closes the connection, watched robots are watched again with fresh state', async (t) => {
  const { owner, r, robot } = await setup();
  const operator = await h.signUp('op');
  await h.grant(owner, r.id, operator, 'operator');
  const gate = gated(operator);
  const c = newClient(t, gate.token);
  const co = newClient(t, owner.token);
  await Promise.all([c.connect(), co.connect()]);
  const handle = await c.watchRobot(r.id);
  const ho = await co.watchRobot(r.id);
  const rec = record(handle);
  const sample = next(handle, 'telemetry');
  robot.telemetry(1, { x: 1 }, 1);
  await sample;
  await handle.lease.acquire({ ttlMs: 60_000 });
  const first = c.hello?.session;

  // The hub closes the socket; the reconnect waits at the gate while things change.
  gate.shut();
  const reconnecting = next(c, 'state', (s) => s === 'reconnecting');
  closeFromServer(c);
  await reconnecting;
  t.equal(handle.status, 'resuming');
  const ownerSees = next(ho, 'telemetry', (s) => s.ts === 2);
  robot.telemetry(1, { x: 2 }, 2);
  await ownerSees;
  const takenOver = next(ho, 'lease', (_l, reason) => reason === 'taken_over');
  await ho.lease.acquire({ force: true });
  await takenOver;
  const gone = next(ho, 'offline');
  await robot.close();
  await gone;

  const rewatched = next(handle, 'watching');
  gate.open();
  const [state] = await rewatched;
  t.not(c.hello?.session, first, 'a new session');
  t.equal(handle.status, 'watching');
  t.equal(state, handle.state);
  t.match(state, { online: false, lease: { holder: { id: owner.id } } });
  t.same(handle.sample('pose')?.data, { x: 2 }, 'the newest sample, from the re-watch');
  t.equal(handle.lease.held, false);
  t.same(
    rec.events,
    [`lease:acquired:${operator.username}`, 'watching', 'offline', `lease:resync:${owner.username}`],
    'what changed while disconnected is reported once re-watched',
  );
  t.same(
    rec.telemetry.map((s) => s.ts),
    [1],
    'samples sent while disconnected are not replayed as events',
  );

  const online = next(handle, 'online');
  const back = await h.connectRobot(r);
  await online;
  const live = next(handle, 'telemetry', (s) => s.ts === 3);
  back.telemetry(1, { x: 3 }, 3);
  t.same((await live)[0].data, { x: 3 }, 'live again');
});

t.test('commands in flight when the connection drops resolve as lost, and are never resent', async (t) => {
  const { owner, r, robot } = await setup();
  const received = answering(robot, new Set(['slow', 'hang']));
  const c = newClient(t, owner.token);
  await c.connect();
  const handle = await c.watchRobot(r.id);
  await handle.lease.acquire({ ttlMs: 60_000 });

  // Delivered to the robot, then the hub closes the connection before the outcome.
  const stages: string[] = [];
  const rewatched = next(handle, 'watching');
  const out = await handle.command(
    'slow',
    { n: 1 },
    {
      timeoutMs: 30_000,
      onStage: (s) => {
        stages.push(s.stage);
        if (s.stage === 'delivered') closeFromServer(c);
      },
    },
  );
  t.match(out, { name: 'slow', stage: 'lost', ok: false, fromHub: false, detail: { code: 'DISCONNECTED', message: /may still run/ } });
  t.match(out.cmd, isUuid, 'the command id, to look up in the audit log');
  t.same(stages, ['queued', 'delivered', 'lost']);
  t.equal(received.length, 1);
  robot.status(received[0]!.id, 'completed', 'done after all'); // reported to the closed connection only

  await rewatched;
  t.equal(handle.lease.held, true, 'the lease belongs to the user, not the connection');
  t.equal((await handle.command('after')).stage, 'completed', 'commands work on the new connection');
  t.same(
    received.map((x) => x.name),
    ['slow', 'after'],
    'the lost command was not sent again',
  );

  // Sent, and the connection drops before the hub answers: not even the command id is known.
  const reopened2 = next(c, 'state', (s) => s === 'open');
  const racy = handle.command('racy');
  c._dropConnection(CloseCode.OVERLOADED);
  t.match(await racy, { name: 'racy', cmd: undefined, stage: 'lost', fromHub: false, detail: { code: 'DISCONNECTED' } });
  await reopened2;
  t.equal((await handle.command('after2')).stage, 'completed');
  t.ok(received.filter((x) => x.name === 'racy').length <= 1, 'the racy command reached the robot at most once');
  t.same(
    received.filter((x) => x.name !== 'racy').map((x) => x.name),
    ['slow', 'after', 'after2'],
  );

  // While disconnected, a command is refused at once rather than queued.
  const rewatched3 = next(handle, 'watching');
  c._dropConnection(CloseCode.OVERLOADED);
  await rejectsWith(t, handle.command('later'), 'DISCONNECTED', 'a command while reconnecting');
  await rejectsWith(t, handle.estop(), 'DISCONNECTED', 'an e-stop while reconnecting (the caller may retry it)');
  await rewatched3;

  // close(): a command awaiting its outcome resolves as lost; the watch ends.
  const ended = next(handle, 'ended');
  const hang = handle.command('hang', undefined, {
    onStage: (s) => {
      if (s.stage === 'delivered') void c.close();
    },
  });
  t.match(await hang, { stage: 'lost', fromHub: false, detail: { code: 'CLOSED' } });
  const [reason, err] = await ended;
  t.equal(reason, 'closed');
  t.equal(err?.code, 'CLOSED');
  t.equal(handle.status, 'ended');
  await rejectsWith(t, handle.command('late'), 'CLOSED', 'a command after close()');
  await rejectsWith(t, handle.watch(), 'CLOSED', 'a watch after close()');
});

t.test('a watch ends when access is revoked or the robot is deleted', async (t) => {
  const { owner, r } = await setup();
  const viewer = await h.signUp('view');
  await h.grant(owner, r.id, viewer, 'viewer');
  const co = newClient(t, owner.token);
  const cv = newClient(t, viewer.token);
  await Promise.all([co.connect(), cv.connect()]);
  const ho = await co.watchRobot(r.id);
  const hv = await cv.watchRobot(r.id);

  const revoked = next(hv, 'ended');
  const del = await h.api.request('DELETE', `/api/v1/robots/${r.id}/grants/${viewer.id}`, undefined, { token: owner.token });
  t.equal(del.status, 204, del.text);
  t.same(await revoked, ['access_revoked', undefined]);
  t.equal(hv.status, 'ended');
  await rejectsWith(t, hv.watch(), 'NOT_FOUND', 'watching again without access');

  const deleted = next(ho, 'ended');
  const gone = await h.api.request('DELETE', `/api/v1/robots/${r.id}`, undefined, { token: owner.token });
  t.equal(gone.status, 204, gone.text);
  t.same(await deleted, ['deleted', undefined]);
  t.equal(ho.status, 'ended');
  await rejectsWith(t, co.watchRobot(r.id), 'NOT_FOUND', 'a deleted robot');
});
