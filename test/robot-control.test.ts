// Robot control through a listening hub (fresh PostgreSQL, robots over real mutual TLS, users over
// real WebSockets): the authorisation matrix (owner / operator / viewer / stranger / admin against
// watch, cmd, lease, forced takeover, e-stop and grant, each allowed action checked by its effect),
// the command lifecycle with the robot's answers and its audit trail, the emergency stop, the control
// lease, watching (state on watch, unwatch, online/offline, deletion, REST status) and frame
// validation. Tests wait on events (frames, robot events, ping barriers), never on sleeps.

import { createHash, randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import { type CommandFrame, type RobotClient, RobotConnectError } from '../src/robot-kit/robot-client.js';
import { CHANNELS, type Enrolled, type RobotHub, startRobotHub, type User, waitUntil } from './helpers/robots.js';
import type { Frame, RawClient } from './helpers/ws.js';

const h = await startRobotHub(t);

// ---- helpers ----

const sha256Hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
/** What the audit log must keep of a command's arguments: SHA-256 of their JSON (absent arguments are null). */
const digestOf = (args: unknown) => sha256Hex(JSON.stringify(args === undefined ? null : args));

/** An account whose tokens carry admin: true (promoted in the store, then logged in again). */
async function signUpAdmin(hub: RobotHub): Promise<User> {
  const u = await hub.signUp('adm');
  await hub.hub.store.db.sql`UPDATE users SET is_admin = true WHERE id = ${u.id}`;
  const l = await hub.api.post('/api/v1/auth/login', { username: u.username, password: u.password });
  if (l.status !== 200) throw new Error(`admin login: ${l.status} ${l.text}`);
  return { ...u, token: l.body.accessToken };
}

type HubError = { code: string; message: string; ref: string | null };
type Answer = (c: CommandFrame, robot: RobotClient) => void;

/** Accepts and completes every command with `{ ok: true }`. */
const completeAll: Answer = (c, robot) => {
  robot.status(c.command, 'accepted');
  robot.status(c.command, 'completed', { ok: true });
};
const neverAnswer: Answer = () => {};

/** Everything that reached a robot: commands, e-stops (answered `completed`), the hub's errors, its close. */
class RobotLog {
  readonly commands: CommandFrame[] = [];
  readonly estops: string[] = [];
  readonly errors: HubError[] = [];
  closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly robot: RobotClient,
    answer: Answer,
  ) {
    robot.on('command', (c) => {
      this.commands.push(c);
      answer(c, robot);
      this.wake();
    });
    robot.on('estop', (id) => {
      this.estops.push(id);
      robot.status(id, 'completed', 'stopped');
      this.wake();
    });
    robot.on('hubError', (e) => {
      this.errors.push(e);
      this.wake();
    });
    robot.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Resolves with what `probe` returns once it is not undefined; rejects after `ms`. */
  until<T>(probe: () => T | undefined, what: string, ms = 5_000): Promise<T> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        const v = probe();
        if (v === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(v);
      };
      timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `robot: timed out after ${ms} ms waiting for ${what}; got commands ${JSON.stringify(this.commands.map((c) => [c.name, c.command]))}, estops ${JSON.stringify(this.estops)}, errors ${JSON.stringify(this.errors)}`,
          ),
        );
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  command(id: string): Promise<CommandFrame> {
    return this.until(() => this.commands.find((c) => c.command === id), `command ${id}`);
  }

  estop(id: string): Promise<string> {
    return this.until(() => this.estops.find((e) => e === id), `e-stop ${id}`);
  }

  error(pred: (e: HubError) => boolean, what: string): Promise<HubError> {
    return this.until(() => this.errors.find(pred), what);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

interface Bot {
  r: Enrolled;
  robot: RobotClient;
  log: RobotLog;
}

/** Registers a robot owned by `owner`, connects it over mTLS and records what reaches it. */
async function onlineRobot(hub: RobotHub, owner: User, answer: Answer = completeAll): Promise<Bot> {
  const r = await hub.enroll(owner);
  const robot = await hub.connectRobot(r);
  return { r, robot, log: new RobotLog(robot, answer) };
}

interface AuditRow {
  id: string;
  robotId: string;
  userId: string | null;
  command: string;
  argsDigest: string;
  issuedAt: string;
  deliveredAt: string | null;
  acceptedAt: string | null;
  completedAt: string | null;
  outcome: string | null;
}

async function auditLog(hub: RobotHub, robotId: string, as: User): Promise<AuditRow[]> {
  const r = await hub.api.get(`/api/v1/robots/${robotId}/audit?limit=200`, { token: as.token });
  if (r.status !== 200) throw new Error(`audit: ${r.status} ${r.text}`);
  return r.body.commands;
}

/** The robot's audit log once each of `settled` has its outcome (and each of `delivered` its delivery). */
function settledAudit(hub: RobotHub, robotId: string, as: User, settled: string[], delivered: string[] = []): Promise<AuditRow[]> {
  return waitUntil(
    () => auditLog(hub, robotId, as),
    (rows) =>
      settled.every((id) => rows.find((r) => r.id === id)?.outcome != null) && delivered.every((id) => rows.find((r) => r.id === id)?.deliveredAt != null),
    `audit rows ${[...settled, ...delivered].join(', ')} written`,
  );
}

interface AuditExpectation {
  command: string;
  outcome: string | null;
  by: User;
  args: unknown;
  delivered: boolean;
  accepted: boolean;
  completed: boolean;
}

function checkAudit(t: Test, rows: AuditRow[], id: string, exp: AuditExpectation): AuditRow | undefined {
  const row = rows.find((r) => r.id === id);
  if (!row) {
    t.fail(`no audit row for ${exp.command} ${id}`);
    return undefined;
  }
  t.equal(row.command, exp.command, `${exp.command}: command name`);
  t.equal(row.outcome, exp.outcome, `${exp.command}: outcome ${exp.outcome}`);
  t.equal(row.userId, exp.by.id, `${exp.command}: issued by`);
  t.equal(row.argsDigest, digestOf(exp.args), `${exp.command}: argsDigest is SHA-256 of the JSON of the arguments`);
  t.equal(row.deliveredAt !== null, exp.delivered, `${exp.command}: deliveredAt ${exp.delivered ? 'set' : 'empty'}`);
  t.equal(row.acceptedAt !== null, exp.accepted, `${exp.command}: acceptedAt ${exp.accepted ? 'set' : 'empty'}`);
  t.equal(row.completedAt !== null, exp.completed, `${exp.command}: completedAt ${exp.completed ? 'set' : 'empty'}`);
  const times = [row.issuedAt, row.deliveredAt, row.acceptedAt, row.completedAt].filter((x): x is string => x !== null).map((x) => Date.parse(x));
  t.same(
    times,
    [...times].sort((a, b) => a - b),
    `${exp.command}: issued ≤ delivered ≤ accepted ≤ completed`,
  );
  return row;
}

async function restStatus(hub: RobotHub, robotId: string, as: User) {
  const r = await hub.api.get(`/api/v1/robots/${robotId}/status`, { token: as.token });
  if (r.status !== 200) throw new Error(`status: ${r.status} ${r.text}`);
  return r.body.status as {
    online: boolean;
    lastSeenAt: string | null;
    channels: unknown[];
    lease: { holder: { id: string; username: string }; expiresAt: string } | null;
  };
}

/** The `cmd` frames of command `id` (exactly `n`, checked after a barrier). */
async function stagesOf(t: Test, u: RawClient, id: string, n: number): Promise<Frame[]> {
  const got = await u.take((f) => f.t === 'cmd' && f.cmd === id, n, `${n} stages of command ${id}`);
  await u.barrier();
  t.equal(u.frames.filter((f) => f.t === 'cmd' && f.cmd === id).length, n, 'no further stage frames');
  t.ok(
    got.every((f, i) => i === 0 || f.ts >= (got[i - 1] as Frame).ts),
    'stage timestamps never go backwards',
  );
  return got;
}

/** Frames received since `mark` (an index into `u.frames`) that match. */
const since = (u: RawClient, mark: number, pred: (f: Frame) => boolean) => u.frames.slice(mark).filter(pred);

const grantsPath = (robotId: string, userId: string) => `/api/v1/robots/${robotId}/grants/${userId}`;

// ---- 1. the authorisation matrix ----

type Who = 'owner' | 'operator' | 'viewer' | 'stranger' | 'admin';
type Want = 'ok' | 'FORBIDDEN' | 'NOT_FOUND';
interface MatrixRow {
  who: Who;
  /** The role `watching` reports. */
  role: string | null;
  watch: Want;
  lease: Want;
  cmd: Want;
  takeover: Want;
  estop: Want;
  grant: 'ok' | { status: number; code: string };
}

const NOT_OWNER = { status: 403, code: 'NOT_OWNER' };
const HIDDEN = { status: 404, code: 'NOT_FOUND' };
const ALL_OK = { watch: 'ok', lease: 'ok', cmd: 'ok', takeover: 'ok', estop: 'ok', grant: 'ok' } as const;
const MATRIX: MatrixRow[] = [
  { who: 'owner', role: 'owner', ...ALL_OK },
  { who: 'operator', role: 'operator', watch: 'ok', lease: 'ok', cmd: 'ok', takeover: 'FORBIDDEN', estop: 'ok', grant: NOT_OWNER },
  { who: 'viewer', role: 'viewer', watch: 'ok', lease: 'FORBIDDEN', cmd: 'FORBIDDEN', takeover: 'FORBIDDEN', estop: 'FORBIDDEN', grant: NOT_OWNER },
  { who: 'stranger', role: null, watch: 'NOT_FOUND', lease: 'NOT_FOUND', cmd: 'NOT_FOUND', takeover: 'NOT_FOUND', estop: 'NOT_FOUND', grant: HIDDEN },
  { who: 'admin', role: null, ...ALL_OK },
];

/** Checks a reply against the table: the success frame, or an error with the expected code. */
function expectReply(t: Test, reply: Frame, want: Want, okType: string, what: string): boolean {
  if (want === 'ok') {
    t.equal(reply.t, okType, `${what} allowed (${JSON.stringify(reply).slice(0, 200)})`);
    return reply.t === okType;
  }
  t.match(reply, { t: 'error', code: want }, `${what} refused with ${want}`);
  return false;
}

t.test('authorisation matrix: every role against every action, checked by its effect', async (t) => {
  for (const row of MATRIX) {
    await t.test(row.who, async (t) => {
      const owner = await h.signUp('own');
      const holder = await h.signUp('hold');
      const { r, robot, log } = await onlineRobot(h, owner);
      await h.grant(owner, r.id, holder, 'operator');
      const subject = row.who === 'owner' ? owner : row.who === 'admin' ? await signUpAdmin(h) : await h.signUp(row.who);
      if (row.who === 'operator' || row.who === 'viewer') await h.grant(owner, r.id, subject, row.who);
      const [observer, me, holderWs] = await Promise.all([h.user(owner), h.user(subject), h.user(holder)]);
      t.equal((await observer.request({ t: 'watch', robot: r.id })).t, 'watching', 'the owner observes');
      const sentCommands: string[] = [];
      const sentEstops: string[] = [];
      const args = { who: row.who, speed: 0.5 };

      // watch
      const w = await me.request({ t: 'watch', robot: r.id });
      if (expectReply(t, w, row.watch, 'watching', 'watch')) {
        t.equal(w.role, row.role, 'watching carries the role');
        robot.telemetry(2, `for-${row.who}`);
        const tm = await me.next((f) => f.t === 'tm' && f.robot === r.id, 'telemetry after watching');
        t.equal(tm.data, `for-${row.who}`, 'telemetry reaches the watcher');
      } else {
        const mark = me.frames.length;
        robot.telemetry(2, 'not-for-you');
        await observer.next((f) => f.t === 'tm' && f.data === 'not-for-you', 'the observer gets the telemetry');
        await me.barrier();
        t.same(
          since(me, mark, (f) => f.t === 'tm'),
          [],
          'a refused watcher gets no telemetry',
        );
      }

      // lease acquire (nobody holds it)
      const l = await me.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 });
      if (expectReply(t, l, row.lease, 'leased', 'lease acquire')) {
        t.equal(l.lease?.holder.id, subject.id, 'the caller holds the lease');
        const ev = await observer.next((f) => f.t === 'lease' && f.reason === 'acquired', 'lease acquired broadcast');
        t.same(ev.lease, l.lease, 'watchers are told who holds it');
      } else {
        t.equal((await restStatus(h, r.id, owner)).lease, null, 'refused: nobody holds the lease');
      }

      // cmd (with the lease when the caller may hold it)
      const q = await me.request({ t: 'cmd', robot: r.id, name: 'matrix', args });
      if (expectReply(t, q, row.cmd, 'queued', 'cmd')) {
        sentCommands.push(q.cmd);
        const got = await log.command(q.cmd);
        t.same([got.name, got.args], ['matrix', args], 'the robot received the command with its arguments');
        const done = await me.next((f) => f.t === 'cmd' && f.cmd === q.cmd && f.stage === 'completed', 'command completed');
        t.same(done.detail, { ok: true }, "the robot's result reaches the issuer");
      }
      if (row.lease === 'ok') {
        const rel = await me.request({ t: 'lease', robot: r.id, op: 'release' });
        t.equal(rel.lease, null, 'released');
        await observer.next((f) => f.t === 'lease' && f.reason === 'released', 'lease released broadcast');
      }

      // forced takeover of a lease someone else holds
      const held = await holderWs.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 });
      t.equal(held.lease?.holder.id, holder.id, 'another operator holds the lease');
      await observer.next((f) => f.t === 'lease' && f.reason === 'acquired' && f.lease?.holder.id === holder.id, 'holder acquired');
      const tk = await me.request({ t: 'lease', robot: r.id, op: 'acquire', force: true, ttlMs: 60_000 });
      if (expectReply(t, tk, row.takeover, 'leased', 'forced takeover')) {
        t.equal(tk.lease?.holder.id, subject.id, 'the caller holds the lease now');
        const ev = await observer.next((f) => f.t === 'lease' && f.reason === 'taken_over', 'taken_over broadcast');
        t.equal(ev.lease?.holder.id, subject.id, 'watchers are told who took it');
        t.match(await holderWs.request({ t: 'cmd', robot: r.id, name: 'x' }), { t: 'error', code: 'LEASE_REQUIRED' }, 'the previous holder lost it');
      } else {
        t.equal((await restStatus(h, r.id, owner)).lease?.holder.id, holder.id, 'refused: the holder keeps the lease');
      }

      // e-stop
      const es = await me.request({ t: 'estop', robot: r.id });
      if (expectReply(t, es, row.estop, 'queued', 'estop')) {
        sentEstops.push(es.cmd);
        t.equal(await log.estop(es.cmd), es.cmd, 'the robot received the e-stop');
        const ev = await observer.next((f) => f.t === 'lease' && f.reason === 'estop', 'lease ended by the e-stop');
        t.equal(ev.lease, null, 'nobody holds the lease after an e-stop');
        await me.next((f) => f.t === 'cmd' && f.cmd === es.cmd && f.stage === 'completed', 'the e-stop completed');
      } else {
        t.equal((await restStatus(h, r.id, owner)).lease?.holder.id, holder.id, 'refused: the lease is untouched');
      }

      // grant (REST)
      const target = await h.signUp('tgt');
      const g = await h.api.request('PUT', grantsPath(r.id, target.id), { role: 'viewer' }, { token: subject.token });
      const grants = (await h.api.get(`/api/v1/robots/${r.id}/grants`, { token: owner.token })).body.grants as { userId: string; role: string }[];
      if (row.grant === 'ok') {
        t.equal(g.status, 200, `grant allowed: ${g.text}`);
        t.ok(
          grants.some((x) => x.userId === target.id && x.role === 'viewer'),
          'the grant is stored',
        );
      } else {
        t.equal(g.status, row.grant.status, `grant refused: ${g.text}`);
        t.equal(g.body?.error?.code, row.grant.code, `grant refused with ${row.grant.code}`);
        t.notOk(
          grants.some((x) => x.userId === target.id),
          'no grant stored',
        );
      }

      // Barrier on the robot's link: the owner's e-stop arrives after anything sent before it.
      const fin = await observer.request({ t: 'estop', robot: r.id });
      t.equal(fin.t, 'queued', "the owner's closing e-stop");
      await log.estop(fin.cmd);
      t.same(
        log.commands.map((c) => c.command),
        sentCommands,
        'the robot received exactly the allowed commands',
      );
      t.same(log.estops, [...sentEstops, fin.cmd], 'and exactly the allowed e-stops');
      const rows = await settledAudit(h, r.id, owner, [...sentCommands, ...sentEstops, fin.cmd]);
      t.same(
        rows.map((x) => x.id).sort(),
        [...sentCommands, ...sentEstops, fin.cmd].sort(),
        'the audit log holds exactly what was sent: refusals leave no row',
      );
      for (const id of sentCommands)
        checkAudit(t, rows, id, { command: 'matrix', outcome: 'completed', by: subject, args, delivered: true, accepted: true, completed: true });
      for (const id of sentEstops)
        checkAudit(t, rows, id, { command: 'estop', outcome: 'completed', by: subject, args: null, delivered: true, accepted: false, completed: true });
    });
  }
});

t.test('a stranger cannot tell a hidden robot from a missing one', async (t) => {
  const owner = await h.signUp('own');
  const stranger = await h.signUp('str');
  const { r } = await onlineRobot(h, owner);
  const ghost = randomUUID();
  const u = await h.user(stranger);
  const frames = [
    { t: 'watch' },
    { t: 'cmd', name: 'move' },
    { t: 'lease', op: 'acquire' },
    { t: 'lease', op: 'acquire', force: true },
    { t: 'lease', op: 'renew' },
    { t: 'lease', op: 'release' },
    { t: 'estop' },
  ];
  for (const f of frames) {
    const real = await u.request({ ...f, robot: r.id });
    const missing = await u.request({ ...f, robot: ghost });
    t.match(real, { t: 'error', code: 'NOT_FOUND' }, `${JSON.stringify(f)}: NOT_FOUND`);
    t.same([real.code, real.message], [missing.code, missing.message], `${JSON.stringify(f)}: same answer as for a robot that does not exist`);
  }
  for (const [method, path, body] of [
    ['GET', '/status', undefined],
    ['GET', '/audit', undefined],
    ['GET', '', undefined],
    ['PUT', `/grants/${stranger.id}`, { role: 'operator' }],
  ] as const) {
    const real = await h.api.request(method, `/api/v1/robots/${r.id}${path}`, body, { token: stranger.token });
    const missing = await h.api.request(method, `/api/v1/robots/${ghost}${path}`, body, { token: stranger.token });
    t.equal(real.status, 404, `${method} ${path || '/'}: 404`);
    t.same(
      [real.status, real.body?.error?.code, real.body?.error?.message],
      [missing.status, missing.body?.error?.code, missing.body?.error?.message],
      `${method} ${path || '/'}: indistinguishable`,
    );
  }
});

// Admins act as owners everywhere, live side included: a grant an admin also holds does not limit
// them, and a lease an admin holds survives role changes that do not concern them.

t.test('an admin who also holds a viewer grant still acts as the owner', async (t) => {
  const owner = await h.signUp('own');
  const admin = await signUpAdmin(h);
  const { r, log } = await onlineRobot(h, owner);
  await h.grant(owner, r.id, admin, 'viewer');
  const [o, u] = await Promise.all([h.user(owner), h.user(admin)]);
  await o.request({ t: 'watch', robot: r.id });
  const w = await u.request({ t: 'watch', robot: r.id });
  t.equal(w.role, 'viewer', 'watching reports the grant');
  const g = await h.api.request('PUT', grantsPath(r.id, (await h.signUp('tgt')).id), { role: 'viewer' }, { token: admin.token });
  t.equal(g.status, 200, 'REST treats the admin as the owner');
  t.match(await u.request({ t: 'lease', robot: r.id, op: 'acquire' }), { t: 'leased', lease: { holder: { id: admin.id } } }, 'the lease, despite the grant');
  const forced = await o.request({ t: 'lease', robot: r.id, op: 'acquire', force: true });
  t.equal(forced.lease?.holder.id, owner.id, 'the owner takes it over');
  t.match(
    await u.request({ t: 'lease', robot: r.id, op: 'acquire', force: true }),
    { t: 'leased', lease: { holder: { id: admin.id } } },
    'and the admin takes it back',
  );
  const stop = await u.request({ t: 'estop', robot: r.id });
  t.equal(stop.t, 'queued', 'the e-stop is accepted');
  await log.estop(stop.cmd);
  t.same(log.estops, [stop.cmd], 'and reaches the robot');
});

t.test('an admin holding the lease keeps it when roles that do not concern them change', async (t) => {
  const owner = await h.signUp('own');
  const admin = await signUpAdmin(h);
  const bystander = await h.signUp('by');
  const { r } = await onlineRobot(h, owner);
  await h.grant(owner, r.id, bystander, 'viewer');
  const [observer, a, b] = await Promise.all([h.user(owner), h.user(admin), h.user(bystander)]);
  await observer.request({ t: 'watch', robot: r.id });
  t.equal((await b.request({ t: 'watch', robot: r.id })).t, 'watching');
  const l = await a.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 });
  t.equal(l.lease?.holder.id, admin.id, 'the admin (no grant) holds the lease');
  await observer.next((f) => f.t === 'lease' && f.reason === 'acquired', 'acquired');
  t.equal((await h.api.delete(grantsPath(r.id, bystander.id), { token: owner.token })).status, 204);
  await b.next((f) => f.t === 'robot' && f.kind === 'access_revoked', 'the bystander loses its watch');
  await observer.barrier();
  t.same(
    observer.all('lease').filter((f) => f.reason === 'access_revoked'),
    [],
    "the admin's lease did not end",
  );
  t.equal((await restStatus(h, r.id, owner)).lease?.holder.id, admin.id, 'REST still shows the admin holding it');
});

// ---- 2. the command lifecycle ----

t.test('command lifecycle with the robot answering, and its audit trail', async (t) => {
  const owner = await h.signUp('lc');
  const { r, robot, log } = await onlineRobot(h, owner, (c, robot) => {
    switch (c.name) {
      case 'drive':
        robot.status(c.command, 'accepted');
        robot.status(c.command, 'completed', { arrived: true, echo: c.args });
        break;
      case 'jump':
        robot.status(c.command, 'rejected', 'cannot jump');
        break;
      case 'lift':
        robot.status(c.command, 'accepted');
        robot.status(c.command, 'failed', { error: 'overload' });
        break;
      default: // 'wait': never answered
        break;
    }
  });
  const u = await h.user(owner);
  const marker = `secret-${randomUUID()}`;
  const issue = async (name: string, args?: unknown, timeoutMs?: number, via: RawClient = u): Promise<string> => {
    const f: Record<string, unknown> = { t: 'cmd', robot: r.id, name };
    if (args !== undefined) f.args = args;
    if (timeoutMs !== undefined) f.timeoutMs = timeoutMs;
    const q = await via.request(f);
    if (q.t !== 'queued' || q.robot !== r.id) throw new Error(`cmd ${name}: ${JSON.stringify(q)}`);
    return q.cmd;
  };
  const ids: Record<string, string> = {};

  await t.test('without the lease: LEASE_REQUIRED', async (t) => {
    const e = await u.request({ t: 'cmd', robot: r.id, name: 'drive', args: { marker } });
    t.match(e, { t: 'error', code: 'LEASE_REQUIRED' });
    const l = await u.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 300_000 });
    t.equal(l.t, 'leased');
  });

  await t.test('accepted → completed: detail is the result', async (t) => {
    const args = { to: [1.5, -2], speed: 0.25, note: 'héllo ✓', marker };
    const id = await issue('drive', args);
    ids.drive = id;
    const c = await log.command(id);
    t.same([c.name, c.args], ['drive', args], 'the robot got name and arguments');
    t.ok(c.timeoutMs > 0 && c.timeoutMs <= 10_000, `the robot got the remaining deadline (${c.timeoutMs} ms of the default 10 s)`);
    const s = await stagesOf(t, u, id, 3);
    t.same(
      s.map((f) => f.stage),
      ['delivered', 'accepted', 'completed'],
    );
    t.same(s[2]?.detail, { arrived: true, echo: args }, 'completed carries the result');
  });

  await t.test('rejected: detail is the reason; no arguments travel as null', async (t) => {
    const id = await issue('jump');
    ids.jump = id;
    t.equal((await log.command(id)).args, null, 'absent arguments reach the robot as null');
    const s = await stagesOf(t, u, id, 2);
    t.same(
      s.map((f) => f.stage),
      ['delivered', 'rejected'],
    );
    t.equal(s[1]?.detail, 'cannot jump', 'rejected carries the reason');
  });

  await t.test('accepted → failed: detail is the error', async (t) => {
    const id = await issue('lift', [1, 2, 3]);
    ids.lift = id;
    const s = await stagesOf(t, u, id, 3);
    t.same(
      s.map((f) => f.stage),
      ['delivered', 'accepted', 'failed'],
    );
    t.same(s[2]?.detail, { error: 'overload' }, 'failed carries the error');
  });

  await t.test('the digest does not depend on the encoding: a JSON connection', async (t) => {
    const j = await h.user(owner, 'json');
    const args = { b: 'ünïcødé 🚀', a: [null, true, 0.1], marker };
    const id = await issue('drive', args, undefined, j);
    ids.json = id;
    const s = await stagesOf(t, j, id, 3);
    t.equal(s[2]?.stage, 'completed');
  });

  await t.test('deadline expiry: stage timeout, and a late STATUS is refused with UNKNOWN_COMMAND', async (t) => {
    const id = await issue('wait', { marker }, 300);
    ids.wait = id;
    const c = await log.command(id);
    t.ok(c.timeoutMs > 0 && c.timeoutMs <= 300, `the robot got the deadline (${c.timeoutMs} ms)`);
    const s = await stagesOf(t, u, id, 2);
    t.same(
      s.map((f) => f.stage),
      ['delivered', 'timeout'],
    );
    robot.status(id, 'completed', 'too late');
    const err = await log.error((e) => e.ref === id, 'an ERROR about the late STATUS');
    t.equal(err.code, 'UNKNOWN_COMMAND', 'the late STATUS is refused');
    await u.barrier();
    t.equal(u.frames.filter((f) => f.t === 'cmd' && f.cmd === id).length, 2, 'the issuer hears nothing more of it');
  });

  await t.test('the audit log of every case', async (t) => {
    const all = [ids.drive, ids.jump, ids.lift, ids.json, ids.wait] as string[];
    const rows = await settledAudit(h, r.id, owner, all);
    t.same(rows.map((x) => x.id).sort(), [...all].sort(), 'one row per command sent; the refused one left none');
    checkAudit(t, rows, ids.drive as string, {
      command: 'drive',
      outcome: 'completed',
      by: owner,
      args: { to: [1.5, -2], speed: 0.25, note: 'héllo ✓', marker },
      delivered: true,
      accepted: true,
      completed: true,
    });
    checkAudit(t, rows, ids.jump as string, { command: 'jump', outcome: 'rejected', by: owner, args: null, delivered: true, accepted: false, completed: true });
    checkAudit(t, rows, ids.lift as string, {
      command: 'lift',
      outcome: 'failed',
      by: owner,
      args: [1, 2, 3],
      delivered: true,
      accepted: true,
      completed: true,
    });
    checkAudit(t, rows, ids.json as string, {
      command: 'drive',
      outcome: 'completed',
      by: owner,
      args: { b: 'ünïcødé 🚀', a: [null, true, 0.1], marker },
      delivered: true,
      accepted: true,
      completed: true,
    });
    const wait = checkAudit(t, rows, ids.wait as string, {
      command: 'wait',
      outcome: 'timeout',
      by: owner,
      args: { marker },
      delivered: true,
      accepted: false,
      completed: true,
    });
    if (wait) {
      const took = Date.parse(wait.completedAt as string) - Date.parse(wait.issuedAt);
      // The deadline runs from when the hub received the cmd, a little before the row's issue time.
      t.ok(took >= 0, `the timeout is recorded after the issue (${took} ms later)`);
    }
    const text = JSON.stringify(rows);
    t.notOk(text.includes(marker), 'the REST audit log does not carry the arguments');
    const stored = await h.hub.store.db.sql`SELECT * FROM command_audit WHERE robot_id = ${r.id}`;
    const dump = JSON.stringify(stored, (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v));
    t.equal(stored.length, all.length);
    t.notOk(dump.includes(marker), 'the database does not store the arguments');
  });
});

t.test('a robot that drops its link mid-command; commands and e-stops to an offline robot', async (t) => {
  const owner = await h.signUp('lost');
  const { r, robot, log } = await onlineRobot(h, owner, (c, robot) => robot.status(c.command, 'accepted'));
  const u = await h.user(owner);
  t.equal((await u.request({ t: 'watch', robot: r.id })).online, true);
  t.equal((await u.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 })).t, 'leased');
  await u.next((f) => f.t === 'lease' && f.reason === 'acquired', 'acquired');

  const q = await u.request({ t: 'cmd', robot: r.id, name: 'grip', args: { force: 3 } });
  t.equal(q.t, 'queued');
  await u.take((f) => f.t === 'cmd' && f.cmd === q.cmd, 2, 'delivered and accepted');
  robot.destroy();
  const lost = await u.next((f) => f.t === 'cmd' && f.cmd === q.cmd, 'the final stage');
  t.equal(lost.stage, 'lost', 'the command is lost with the link');
  t.type(lost.detail, 'string', 'lost says why');
  await u.next((f) => f.t === 'robot' && f.kind === 'offline', 'offline');
  t.equal(log.commands.length, 1);

  const off = await u.request({ t: 'cmd', robot: r.id, name: 'grip' });
  t.match(off, { t: 'error', code: 'ROBOT_OFFLINE' }, 'a command to an offline robot');
  t.equal((await restStatus(h, r.id, owner)).lease?.holder.id, owner.id, 'the lease outlives the link');

  const es = await u.request({ t: 'estop', robot: r.id });
  t.match(es, { t: 'error', code: 'ROBOT_OFFLINE' }, 'an e-stop to an offline robot');
  const ev = await u.next((f) => f.t === 'lease', 'lease event');
  t.match(ev, { lease: null, reason: 'estop' }, 'the e-stop released the lease anyway');
  t.equal((await restStatus(h, r.id, owner)).lease, null, 'nobody holds the lease');

  const rows = await waitUntil(
    () => auditLog(h, r.id, owner),
    (rows) => rows.length >= 2 && rows.every((x) => x.outcome !== null),
    'both audit rows settled',
  );
  t.equal(rows.length, 2, 'the lost command and the e-stop; the refused command left no row');
  checkAudit(t, rows, q.cmd, { command: 'grip', outcome: 'lost', by: owner, args: { force: 3 }, delivered: true, accepted: true, completed: true });
  const estopRow = rows.find((x) => x.command === 'estop');
  t.ok(estopRow, 'the refused e-stop is audited');
  if (estopRow)
    checkAudit(t, rows, estopRow.id, { command: 'estop', outcome: 'offline', by: owner, args: null, delivered: false, accepted: false, completed: true });
});

// ---- 3. the emergency stop ----

t.test('e-stop: reaches the robot over another user’s lease and ends it', async (t) => {
  const owner = await h.signUp('own');
  const [driver, stopper, viewer] = await Promise.all([h.signUp('drv'), h.signUp('stp'), h.signUp('vw')]);
  const { r, log } = await onlineRobot(h, owner, neverAnswer);
  await h.grant(owner, r.id, driver, 'operator');
  await h.grant(owner, r.id, stopper, 'operator');
  await h.grant(owner, r.id, viewer, 'viewer');
  const [d, s, v] = await Promise.all([h.user(driver), h.user(stopper), h.user(viewer)]);
  await d.request({ t: 'watch', robot: r.id });
  await v.request({ t: 'watch', robot: r.id });
  t.equal((await d.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 })).t, 'leased');
  for (const c of [d, v]) await c.next((f) => f.t === 'lease' && f.reason === 'acquired', 'acquired');
  const q = await d.request({ t: 'cmd', robot: r.id, name: 'go', timeoutMs: 60_000 });
  await log.command(q.cmd);

  const es = await s.request({ t: 'estop', robot: r.id });
  t.equal(es.t, 'queued', 'an operator without the lease may stop the robot');
  t.equal(await log.estop(es.cmd), es.cmd, 'the robot received the e-stop');
  for (const [who, c] of [
    ['the holder', d],
    ['a viewer', v],
  ] as const) {
    const ev = await c.next((f) => f.t === 'lease', `${who}: lease event`);
    t.match(ev, { t: 'lease', robot: r.id, lease: null, reason: 'estop' }, `${who} is told the lease ended`);
  }
  t.match(await d.request({ t: 'cmd', robot: r.id, name: 'go' }), { t: 'error', code: 'LEASE_REQUIRED' }, 'the former holder must acquire again');
  const done = await s.next((f) => f.t === 'cmd' && f.cmd === es.cmd && f.stage === 'completed', 'the robot confirms the stop');
  t.equal(done.detail, 'stopped');
  log.robot.status(q.cmd, 'failed', 'stopped by e-stop');
  const end = await d.next((f) => f.t === 'cmd' && f.cmd === q.cmd && f.stage !== 'delivered', 'the command in flight ends');
  t.match(end, { stage: 'failed', detail: 'stopped by e-stop' }, 'the command in flight was not ended by the e-stop: it ends with its own stage');
  const rows = await settledAudit(h, r.id, owner, [es.cmd, q.cmd]);
  checkAudit(t, rows, es.cmd, { command: 'estop', outcome: 'completed', by: stopper, args: null, delivered: true, accepted: false, completed: true });
  checkAudit(t, rows, q.cmd, { command: 'go', outcome: 'failed', by: driver, args: null, delivered: true, accepted: false, completed: true });
});

// ---- 4. the control lease ----

t.test('the control lease', async (t) => {
  const owner = await h.signUp('own');
  const [a, b, viewer] = await Promise.all([h.signUp('opa'), h.signUp('opb'), h.signUp('vw')]);
  const { r, robot, log } = await onlineRobot(h, owner);
  await h.grant(owner, r.id, a, 'operator');
  await h.grant(owner, r.id, b, 'operator');
  await h.grant(owner, r.id, viewer, 'viewer');
  const [o, wa, wb, w] = await Promise.all([h.user(owner), h.user(a), h.user(b), h.user(viewer)]);
  for (const c of [wa, wb, w]) t.equal((await c.request({ t: 'watch', robot: r.id })).t, 'watching');
  const lease = (c: RawClient, op: string, extra: Record<string, unknown> = {}) => c.request({ t: 'lease', robot: r.id, op, ...extra });
  const nextLease = (reason: string) => w.next((f) => f.t === 'lease' && f.robot === r.id, `lease ${reason}`);

  await t.test('acquire, LEASE_HELD, renew, release', async (t) => {
    const before = Date.now();
    const l1 = await lease(wa, 'acquire', { ttlMs: 30_000 });
    const after = Date.now();
    t.equal(l1.t, 'leased');
    t.same(l1.lease.holder, { id: a.id, username: a.username }, 'holder');
    t.ok(l1.lease.expiresAt >= before + 30_000 && l1.lease.expiresAt <= after + 30_000, 'expiresAt is now + ttlMs');
    t.same(await nextLease('acquired'), { t: 'lease', robot: r.id, lease: l1.lease, reason: 'acquired' }, 'watchers: acquired');

    const held = await lease(wb, 'acquire');
    t.match(held, { t: 'error', code: 'LEASE_HELD' }, 'a second operator: LEASE_HELD');
    t.match(held.message, a.username, 'naming the holder');
    t.match(await lease(wb, 'acquire', { force: true }), { t: 'error', code: 'FORBIDDEN' }, 'an operator cannot force');

    const l2 = await lease(wa, 'renew', { ttlMs: 60_000 });
    t.ok(l2.lease.expiresAt > l1.lease.expiresAt, 'renew moves expiresAt later');
    t.same(await nextLease('renewed'), { t: 'lease', robot: r.id, lease: l2.lease, reason: 'renewed' }, 'watchers: renewed');
    const l3 = await lease(wa, 'acquire', { ttlMs: 120_000 });
    t.ok(l3.lease.expiresAt > l2.lease.expiresAt, 'acquiring a lease one holds renews it');
    t.match(await nextLease('renewed'), { reason: 'renewed' });

    t.match(await lease(wb, 'renew'), { t: 'error', code: 'LEASE_REQUIRED' }, 'renew by a non-holder: LEASE_REQUIRED');
    const notMine = await lease(wb, 'release');
    t.equal(notMine.lease?.holder.id, a.id, "releasing someone else's lease changes nothing");

    const rel = await lease(wa, 'release');
    t.equal(rel.lease, null);
    t.same(await nextLease('released'), { t: 'lease', robot: r.id, lease: null, reason: 'released' }, 'watchers: released');
    await w.barrier();
    t.equal(w.frames.filter((f) => f.t === 'lease').length, 4, 'and no other lease event (the refusals sent none)');
  });

  await t.test('expiry', async (t) => {
    const l = await lease(wa, 'acquire', { ttlMs: 1_000 });
    t.match(await nextLease('acquired'), { reason: 'acquired' });
    const ev = await nextLease('expired');
    t.match(ev, { lease: null, reason: 'expired' }, 'watchers: expired');
    t.ok(Date.now() >= l.lease.expiresAt - 5, 'not before expiresAt');
    t.match(await wa.request({ t: 'cmd', robot: r.id, name: 'go' }), { t: 'error', code: 'LEASE_REQUIRED' }, 'commands need a fresh lease');
    t.equal((await restStatus(h, r.id, owner)).lease, null);
  });

  await t.test("the owner's forced takeover", async (t) => {
    await lease(wa, 'acquire', { ttlMs: 60_000 });
    await nextLease('acquired');
    const held = await lease(o, 'acquire');
    t.match(held, { t: 'error', code: 'LEASE_HELD' }, 'without force, even the owner gets LEASE_HELD');
    const tk = await lease(o, 'acquire', { force: true, ttlMs: 60_000 });
    t.equal(tk.lease?.holder.id, owner.id);
    t.same(await nextLease('taken_over'), { t: 'lease', robot: r.id, lease: tk.lease, reason: 'taken_over' }, 'watchers: taken_over');
    const refused = await wa.request({ t: 'cmd', robot: r.id, name: 'go' });
    t.match(refused, { t: 'error', code: 'LEASE_REQUIRED' }, 'the previous holder lost it');
    const q = await o.request({ t: 'cmd', robot: r.id, name: 'go' });
    t.equal((await log.command(q.cmd)).name, 'go', "the new holder's command reaches the robot");
    await lease(o, 'release');
    await nextLease('released');
  });

  await t.test("revoking the holder's grant ends the lease and the watch", async (t) => {
    await lease(wa, 'acquire', { ttlMs: 60_000 });
    await nextLease('acquired');
    t.equal((await h.api.delete(grantsPath(r.id, a.id), { token: owner.token })).status, 204);
    t.match(await nextLease('access_revoked'), { lease: null, reason: 'access_revoked' }, 'watchers: access_revoked');
    t.match(await wa.next((f) => f.t === 'robot', 'robot event'), { t: 'robot', robot: r.id, kind: 'access_revoked' }, "the user's watch ends");
    const mark = wa.frames.length;
    robot.telemetry(2, 'after-revoke');
    await w.next((f) => f.t === 'tm' && f.data === 'after-revoke', 'telemetry still flows to others');
    await wa.barrier();
    t.same(
      since(wa, mark, (f) => f.t === 'tm'),
      [],
      'no telemetry for the revoked user',
    );
    t.match(await wa.request({ t: 'cmd', robot: r.id, name: 'go' }), { t: 'error', code: 'NOT_FOUND' }, 'the robot is hidden from them now');
    t.match(await wa.request({ t: 'watch', robot: r.id }), { t: 'error', code: 'NOT_FOUND' });
  });

  await t.test('downgrading the holder to viewer ends the lease, not the watch', async (t) => {
    await lease(wb, 'acquire', { ttlMs: 60_000 });
    await nextLease('acquired');
    t.equal((await h.api.request('PUT', grantsPath(r.id, b.id), { role: 'viewer' }, { token: owner.token })).status, 200);
    t.match(await nextLease('access_revoked'), { lease: null, reason: 'access_revoked' }, 'watchers: the lease ended');
    robot.telemetry(2, 'after-downgrade');
    t.equal((await wb.next((f) => f.t === 'tm' && f.data === 'after-downgrade', 'telemetry')).data, 'after-downgrade', 'the viewer still watches');
    t.same(
      wb.frames.filter((f) => f.t === 'robot'),
      [],
      'no access_revoked for a downgrade',
    );
    t.match(await wb.request({ t: 'cmd', robot: r.id, name: 'go' }), { t: 'error', code: 'FORBIDDEN' }, 'viewers cannot command');
    t.match(await lease(wb, 'acquire'), { t: 'error', code: 'FORBIDDEN' }, 'nor hold the lease');
  });
});

// ---- 5. watching ----

t.test('watching: state on watch, unwatch, online/offline, REST status, deletion', async (t) => {
  const owner = await h.signUp('own');
  const [viewer, op] = await Promise.all([h.signUp('vw'), h.signUp('op')]);
  const r = await h.enroll(owner);
  await h.grant(owner, r.id, viewer, 'viewer');
  await h.grant(owner, r.id, op, 'operator');
  const [o, v, p] = await Promise.all([h.user(owner), h.user(viewer), h.user(op)]);
  const listed = async () => {
    const res = await h.api.get('/api/v1/robots', { token: owner.token });
    return (res.body.robots as { id: string; online: boolean }[]).find((x) => x.id === r.id)?.online;
  };

  const w0 = await v.request({ t: 'watch', robot: r.id });
  t.match(
    w0,
    { t: 'watching', robot: r.id, name: r.name, role: 'viewer', online: false, lastSeen: null, channels: [], latest: [], lease: null },
    'a robot never seen',
  );
  t.match(await restStatus(h, r.id, viewer), { online: false, lastSeenAt: null, channels: [], lease: null }, 'REST status: offline');
  t.equal(await listed(), false, 'listed offline');

  let robot = await h.connectRobot(r);
  const on = await v.next((f) => f.t === 'robot', 'online');
  t.same(on, { t: 'robot', robot: r.id, kind: 'online', channels: CHANNELS }, 'watchers: online, with the channels');
  t.match(await restStatus(h, r.id, viewer), { online: true, channels: CHANNELS }, 'REST status: online');
  t.equal(await listed(), true, 'listed online');

  robot.telemetry(1, { x: 1 }, 1_000);
  robot.telemetry(2, 'first', 1_001);
  robot.telemetry(1, { x: 2 }, 1_002);
  await v.next((f) => f.t === 'tm' && f.ch === 1 && f.data?.x === 2, 'the newest pose');
  await v.next((f) => f.t === 'tm' && f.ch === 2 && f.data === 'first', 'the log line');
  const l = await o.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 });

  await t.test('a new watcher gets the current state at once', async (t) => {
    const w = await p.request({ t: 'watch', robot: r.id });
    t.equal(w.t, 'watching');
    t.equal(w.role, 'operator');
    t.equal(w.online, true);
    t.type(w.lastSeen, 'number');
    t.same(w.channels, CHANNELS);
    t.same(
      [...w.latest].sort((x: Frame, y: Frame) => x.ch - y.ch),
      [
        { ch: 1, ts: 1_002, data: { x: 2 } },
        { ch: 2, ts: 1_001, data: 'first' },
      ],
      'the latest sample of each channel',
    );
    t.same(w.lease, l.lease, 'who holds the lease');
    const st = await restStatus(h, r.id, viewer);
    t.same(
      st.lease,
      { holder: { id: owner.id, username: owner.username }, expiresAt: new Date(l.lease.expiresAt).toISOString() },
      'REST status: the lease, ISO expiresAt',
    );
  });

  await t.test('unwatch stops telemetry and events', async (t) => {
    t.match(await p.request({ t: 'unwatch', robot: r.id }), { t: 'ok' });
    const mark = p.frames.length;
    robot.telemetry(2, 'second', 1_003);
    robot.telemetry(1, { x: 3 }, 1_004);
    t.equal((await o.request({ t: 'lease', robot: r.id, op: 'release' })).lease, null);
    await v.next((f) => f.t === 'tm' && f.data === 'second', 'log line to the remaining watcher');
    await v.next((f) => f.t === 'tm' && f.data?.x === 3, 'pose to the remaining watcher');
    await v.next((f) => f.t === 'lease' && f.reason === 'released', 'lease event to the remaining watcher');
    await p.barrier();
    t.same(
      since(p, mark, (f) => f.t === 'tm' || f.t === 'lease' || f.t === 'robot'),
      [],
      'nothing of the robot after unwatch',
    );
  });

  await t.test('offline and back online', async (t) => {
    const connectedAt = Date.now();
    await robot.close();
    const off = await v.next((f) => f.t === 'robot', 'offline');
    t.match(off, { t: 'robot', robot: r.id, kind: 'offline' });
    t.ok(off.lastSeen >= connectedAt - 5_000 && off.lastSeen <= Date.now(), 'offline carries lastSeen');
    const st = await restStatus(h, r.id, viewer);
    t.equal(st.online, false, 'REST status: offline');
    t.type(st.lastSeenAt, 'string');
    t.equal(await listed(), false, 'listed offline');
    const w = await (await h.user(owner)).request({ t: 'watch', robot: r.id });
    t.match(w, { online: false, lastSeen: off.lastSeen }, 'a watcher of an offline robot gets lastSeen');
    robot = await h.connectRobot(r);
    t.match(await v.next((f) => f.t === 'robot', 'online again'), { kind: 'online' });
    t.equal(await listed(), true);
  });

  await t.test('deleting the robot ends watches and closes its link', async (t) => {
    const log = new RobotLog(robot, neverAnswer);
    const held = await o.request({ t: 'lease', robot: r.id, op: 'acquire' });
    t.equal(held.t, 'leased');
    await v.next((f) => f.t === 'lease' && f.reason === 'acquired' && f.lease?.expiresAt === held.lease.expiresAt, 'this acquire');
    const mark = v.frames.length;
    t.equal((await h.api.delete(`/api/v1/robots/${r.id}`, { token: owner.token })).status, 204);
    await v.next((f) => f.t === 'robot' && f.kind === 'deleted', 'deleted');
    t.same(
      since(v, mark, (f) => f.t === 'robot').map((f) => f.kind),
      ['offline', 'deleted'],
      'offline, then deleted',
    );
    const err = await log.error(() => true, 'an ERROR on the link');
    t.equal(err.code, 'UNKNOWN_CERTIFICATE', 'the robot is told why');
    await log.until(() => log.closed || undefined, 'the link closed');
    t.ok(robot.closed, 'the link is closed');
    await v.barrier();
    t.same(
      since(v, mark, (f) => f.t === 'lease'),
      [],
      'the lease ends without a lease frame',
    );
    t.match(await v.request({ t: 'watch', robot: r.id }), { t: 'error', code: 'NOT_FOUND' }, 'the robot is gone');
    t.equal((await h.api.get(`/api/v1/robots/${r.id}/status`, { token: owner.token })).status, 404, 'REST status: 404');
    const refused = await h.connectRobot(r).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(refused instanceof RobotConnectError, 'its certificate no longer connects');
    t.match(refused, { code: 'UNKNOWN_CERTIFICATE' });
  });
});

t.test('frame validation: VALIDATION errors carrying the request id', async (t) => {
  const owner = await h.signUp('val');
  const r = await h.enroll(owner);
  const u = await h.user(owner);
  const cases: [string, Record<string, unknown>][] = [
    ['watch: robot is not a uuid', { t: 'watch', robot: 'robot-1' }],
    ['unwatch: robot is not a uuid', { t: 'unwatch', robot: `${r.id}x` }],
    ['cmd: robot is not a uuid', { t: 'cmd', robot: '1234', name: 'go' }],
    ['lease: unknown op', { t: 'lease', robot: r.id, op: 'steal' }],
    ['lease: ttlMs below 1 s', { t: 'lease', robot: r.id, op: 'acquire', ttlMs: 999 }],
    ['lease: ttlMs above 5 min', { t: 'lease', robot: r.id, op: 'acquire', ttlMs: 300_001 }],
    ['cmd: name too long', { t: 'cmd', robot: r.id, name: 'x'.repeat(65) }],
    ['cmd: empty name', { t: 'cmd', robot: r.id, name: '' }],
    ['cmd: timeoutMs below 100', { t: 'cmd', robot: r.id, name: 'go', timeoutMs: 99 }],
    ['estop: unknown field', { t: 'estop', robot: r.id, force: true }],
  ];
  for (const [what, frame] of cases) {
    const id = u.id();
    u.send({ ...frame, id });
    const reply = await u.next((f) => f.id === id, what);
    t.match(reply, { t: 'error', id, code: 'VALIDATION' }, what);
  }
  t.equal((await u.request({ t: 'ping' })).t, 'pong', 'the connection stays open');
  t.match(await u.request({ t: 'cmd', robot: r.id, name: 'x'.repeat(64) }), { t: 'error', code: 'LEASE_REQUIRED' }, 'a 64-character name passes validation');
  t.equal((await u.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 1_000 })).t, 'leased', 'ttlMs 1000 passes');
  t.equal((await u.request({ t: 'lease', robot: r.id, op: 'renew', ttlMs: 300_000 })).t, 'leased', 'ttlMs 300000 passes');
});

// ---- limits: a hub with a small request rate, one watch per connection and two commands in flight ----

t.test('limits', async (t) => {
  const lh = await startRobotHub(t, { env: { SB_WS_REQUESTS_PER_SECOND: '1', SB_WS_MAX_SUBSCRIPTIONS: '1', SB_ROBOT_MAX_PENDING_COMMANDS: '2' } });

  await t.test('SB_ROBOT_MAX_PENDING_COMMANDS: RATE_LIMITED beyond it; an e-stop is never refused for it', async (t) => {
    const owner = await lh.signUp('own');
    const { r, robot, log } = await onlineRobot(lh, owner, neverAnswer);
    const u = await lh.user(owner);
    t.equal((await u.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 })).t, 'leased');
    const q1 = await u.request({ t: 'cmd', robot: r.id, name: 'hold', timeoutMs: 60_000 });
    const q2 = await u.request({ t: 'cmd', robot: r.id, name: 'hold', timeoutMs: 60_000 });
    t.same([q1.t, q2.t], ['queued', 'queued'], 'two in flight');
    await log.command(q2.cmd);
    const q3 = await u.request({ t: 'cmd', robot: r.id, name: 'hold', timeoutMs: 60_000 });
    t.match(q3, { t: 'error', code: 'RATE_LIMITED', message: /in flight/ }, 'the third: RATE_LIMITED');
    robot.status(q1.cmd, 'completed', 'done');
    await u.next((f) => f.t === 'cmd' && f.cmd === q1.cmd && f.stage === 'completed', 'the first completes');
    const q4 = await u.request({ t: 'cmd', robot: r.id, name: 'hold', timeoutMs: 60_000 });
    t.equal(q4.t, 'queued', 'a slot freed: accepted again');
    await log.command(q4.cmd);
    const es = await u.request({ t: 'estop', robot: r.id });
    t.equal(es.t, 'queued', 'an e-stop with the limit reached');
    await log.estop(es.cmd);
    t.same(
      log.commands.map((c) => c.command),
      [q1.cmd, q2.cmd, q4.cmd],
      'the refused command never reached the robot',
    );
    const rows = await settledAudit(lh, r.id, owner, [q1.cmd, es.cmd], [q2.cmd, q4.cmd]);
    t.equal(rows.length, 4, 'and left no audit row');
    checkAudit(t, rows, q1.cmd, { command: 'hold', outcome: 'completed', by: owner, args: null, delivered: true, accepted: false, completed: true });
    checkAudit(t, rows, q2.cmd, { command: 'hold', outcome: null, by: owner, args: null, delivered: true, accepted: false, completed: false });
  });

  await t.test('e-stops are not refused by the per-connection request rate', async (t) => {
    const owner = await lh.signUp('own');
    const [driver, stopper] = await Promise.all([lh.signUp('drv'), lh.signUp('stp')]);
    const { r, log } = await onlineRobot(lh, owner);
    await lh.grant(owner, r.id, driver, 'operator');
    await lh.grant(owner, r.id, stopper, 'operator');
    const [o, d, s] = await Promise.all([lh.user(owner), lh.user(driver), lh.user(stopper)]);
    await o.request({ t: 'watch', robot: r.id });
    t.equal((await d.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 })).t, 'leased');
    await o.next((f) => f.t === 'lease' && f.reason === 'acquired', 'acquired');

    // Empty the stopper's request bucket (burst: the subscription limit + 10 = 11; refill 1/s).
    const pings = Array.from({ length: 15 }, () => s.id());
    for (const id of pings) s.send({ t: 'ping', id });
    const replies = await s.take((f) => pings.includes(f.id), pings.length, 'the ping replies');
    t.ok(
      replies.some((f) => f.t === 'error' && f.code === 'RATE_LIMITED'),
      'the bucket is empty: requests are refused',
    );
    const estops = Array.from({ length: 5 }, () => s.id());
    const after = Array.from({ length: 3 }, () => s.id());
    for (const id of estops) s.send({ t: 'estop', robot: r.id, id });
    for (const id of after) s.send({ t: 'ping', id });
    const answers = await s.take((f) => estops.includes(f.id), estops.length, 'the e-stop replies');
    t.same(
      answers.map((f) => f.t),
      ['queued', 'queued', 'queued', 'queued', 'queued'],
      'every e-stop is queued',
    );
    const pingAnswers = await s.take((f) => after.includes(f.id), after.length, 'the later pings');
    t.ok(
      pingAnswers.some((f) => f.code === 'RATE_LIMITED'),
      'while other requests are still refused',
    );
    const ids = answers.map((f) => f.cmd as string);
    await log.until(() => (ids.every((id) => log.estops.includes(id)) ? true : undefined), 'all five e-stops at the robot');
    t.same([...log.estops].sort(), [...ids].sort(), 'the robot received all five');
    const ev = await o.next((f) => f.t === 'lease', 'lease ended');
    t.match(ev, { lease: null, reason: 'estop' });
    await o.barrier();
    t.equal(o.frames.filter((f) => f.t === 'lease' && f.reason === 'estop').length, 1, 'one lease event: the later e-stops found no lease');
    const rows = await settledAudit(lh, r.id, owner, ids);
    for (const id of ids)
      checkAudit(t, rows, id, { command: 'estop', outcome: 'completed', by: stopper, args: null, delivered: true, accepted: false, completed: true });
  });

  await t.test('a watch the hub ended counts against the connection until unwatch (documented)', async (t) => {
    const owner = await lh.signUp('own');
    const viewer = await lh.signUp('vw');
    const [r1, r2, r3] = await Promise.all([lh.enroll(owner), lh.enroll(owner), lh.enroll(owner)]);
    for (const r of [r1, r2, r3]) await lh.grant(owner, r.id, viewer, 'viewer');

    const v = await lh.user(viewer);
    t.equal((await v.request({ t: 'watch', robot: r1.id })).t, 'watching');
    t.match(await v.request({ t: 'watch', robot: r2.id }), { t: 'error', code: 'RATE_LIMITED' }, 'one watch per connection here');
    t.equal((await lh.api.delete(grantsPath(r1.id, viewer.id), { token: owner.token })).status, 204);
    await v.next((f) => f.t === 'robot' && f.kind === 'access_revoked', 'access_revoked');
    t.match(await v.request({ t: 'watch', robot: r2.id }), { t: 'error', code: 'RATE_LIMITED' }, 'after access_revoked the watch still counts');
    t.match(await v.request({ t: 'unwatch', robot: r1.id }), { t: 'ok' });
    t.equal((await v.request({ t: 'watch', robot: r2.id })).t, 'watching', 'unwatch frees it');

    const v2 = await lh.user(viewer);
    t.equal((await v2.request({ t: 'watch', robot: r3.id })).t, 'watching');
    t.equal((await lh.api.delete(`/api/v1/robots/${r3.id}`, { token: owner.token })).status, 204);
    await v2.next((f) => f.t === 'robot' && f.kind === 'deleted', 'deleted');
    t.match(await v2.request({ t: 'watch', robot: r2.id }), { t: 'error', code: 'RATE_LIMITED' }, 'after deleted the watch still counts');
    t.match(await v2.request({ t: 'unwatch', robot: r3.id }), { t: 'ok' });
    t.equal((await v2.request({ t: 'watch', robot: r2.id })).t, 'watching', 'unwatch frees it');
  });
});
