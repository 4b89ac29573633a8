// Robots across the nodes of a cluster, the edges: changes made over REST on one node (a grant
// revoked, the certificate revoked, the robot deleted) reach the robot's home and the watchers on
// the others; a command in flight when the robot moves node ends `lost`, never hangs, and the lease
// moves with the robot; a lease taken on a robot that never connected makes that node its home;
// and requests refused on the issuer's own node never travel to the robot's home.

import { randomUUID } from 'node:crypto';
import { Kvm } from '@nats-io/kv';
import { connect as natsConnect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import type { Hub } from '../src/hub.js';
import { unpackPlain } from '../src/protocol/codec.js';
import { RobotConnectError } from '../src/robot-kit/robot-client.js';
import type { Api } from './helpers/api.js';
import { natsUrl } from './helpers/cluster.js';
import { leaseKept, listed, obedient, robotCluster } from './helpers/cluster-robots.js';
import { waitUntil } from './helpers/robots.js';
import type { Frame, RawClient } from './helpers/ws.js';

/** Three nodes of one cluster, robots on. */
async function threeNodes(t: Test) {
  const cluster = await robotCluster(t, 3);
  const [a, b, c] = cluster.nodes as [Hub, Hub, Hub];
  const [apiA, , apiC] = cluster.apis as [Api, Api, Api];
  return { ...cluster, a, b, c, apiA, apiC };
}

/** A robot of a new owner linked to B, what the hub tells it recorded, and its owner watching on A. */
async function watchedOnA(t: Test, n: Awaited<ReturnType<typeof threeNodes>>) {
  const owner = await n.signUp('own');
  const r = await n.enroll(owner);
  const robot = await n.attach(n.b, r);
  const errors: string[] = [];
  robot.on('hubError', (e) => errors.push(e.code));
  const closed = new Promise<void>((resolve) => robot.once('close', resolve));
  await listed(n.apiA, r, owner);
  const wa = await n.user(n.a, owner);
  t.match(await wa.request({ t: 'watch', robot: r.id }), { t: 'watching', online: true }, 'watching on A');
  return { owner, r, robot, errors, closed, wa };
}

const FINAL = ['completed', 'rejected', 'failed', 'timeout', 'lost'];
const stageOf =
  (cmd: string, final = false) =>
  (f: Frame) =>
    f.t === 'cmd' && f.cmd === cmd && (!final || FINAL.includes(f.stage));
const stages = (w: RawClient, cmd: string) => w.all('cmd').flatMap((f) => (f.cmd === cmd ? [f.stage] : []));

t.test("revoking a viewer's grant on A ends that viewer's watch on C; the owner's watch on C goes on", async (t) => {
  const { b, c, apiA, apiC, withViewer, attach, user } = await threeNodes(t);
  const { owner, viewer, r } = await withViewer();
  const robot = await attach(b, r);
  await listed(apiC, r, owner);

  const oc = await user(c, owner);
  const vc = await user(c, viewer);
  t.match(await oc.request({ t: 'watch', robot: r.id }), { t: 'watching', role: 'owner', online: true }, 'the owner watches on C');
  t.match(await vc.request({ t: 'watch', robot: r.id }), { t: 'watching', role: 'viewer', online: true }, 'the viewer watches on C');
  robot.telemetry(2, { line: 0 });
  for (const w of [oc, vc]) t.match(await w.next((f) => f.t === 'tm' && f.ch === 2, 'line 0'), { data: { line: 0 } }, 'telemetry from B reaches C');

  t.equal((await apiA.delete(`/api/v1/robots/${r.id}/grants/${viewer.id}`, { token: owner.token })).status, 204, 'the grant revoked through A');
  t.match(
    await vc.next((f) => f.t === 'robot', 'the end of the watch'),
    { t: 'robot', robot: r.id, kind: 'access_revoked' },
    'the viewer on C: access_revoked',
  );

  robot.telemetry(2, { line: 1 });
  robot.telemetry(1, { x: 1, y: 2, theta: 0 });
  t.match(await oc.next((f) => f.t === 'tm' && f.ch === 2, 'line 1'), { data: { line: 1 } }, 'the owner on C still gets reliable telemetry');
  t.match(await oc.next((f) => f.t === 'tm' && f.ch === 1, 'pose'), { data: { x: 1, y: 2 } }, 'and latest telemetry');
  await vc.barrier();
  t.same(
    vc.all('tm').map((f) => f.data),
    [{ line: 0 }],
    'the viewer on C got no telemetry after access_revoked',
  );
  t.same(oc.all('robot'), [], 'the owner on C was told of no change');
  t.match(await vc.request({ t: 'watch', robot: r.id }), { t: 'error', code: 'NOT_FOUND' }, 'the viewer cannot watch again on C');
  t.equal((await apiC.get(`/api/v1/robots/${r.id}/status`, { token: viewer.token })).status, 404, 'nor read its status through C');
  t.notOk(robot.closed, "the robot's link on B is untouched");
});

t.test("revoking the robot's certificate on A closes its link on B; watchers on A see it go offline", async (t) => {
  const n = await threeNodes(t);
  const { c, apiA, attach } = n;
  const { owner, r, errors, closed, wa } = await watchedOnA(t, n);

  const res = await apiA.delete(`/api/v1/robots/${r.id}/certificate`, { token: owner.token });
  t.equal(res.status, 200, res.text);
  t.equal(res.body.revoked, 1, 'one certificate revoked, through A');
  await closed;
  t.same(errors, ['CERTIFICATE_REVOKED'], 'the link on B closed, telling the robot why');
  t.match(await wa.next((f) => f.t === 'robot', 'a robot event'), { kind: 'offline' }, 'the watcher on A sees it go offline');
  await listed(apiA, r, owner, false);
  const again = await attach(c, r).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(again instanceof RobotConnectError, 'the certificate no longer connects, on any node');
  t.match(again, { code: 'CERTIFICATE_REVOKED' });
});

t.test('deleting the robot on C: a watcher on A is told `deleted`, and its link on B closes', async (t) => {
  const n = await threeNodes(t);
  const { apiA, apiC } = n;
  const { owner, r, errors, closed, wa } = await watchedOnA(t, n);
  t.match(await wa.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 }), { t: 'leased' }, 'the lease, held at B');
  await wa.next((f) => f.t === 'lease' && f.reason === 'acquired', 'acquired');

  t.equal((await apiC.delete(`/api/v1/robots/${r.id}`, { token: owner.token })).status, 204, 'deleted through C');
  await wa.next((f) => f.t === 'robot' && f.kind === 'deleted', 'deleted');
  await closed;
  t.same(errors, ['UNKNOWN_CERTIFICATE'], 'the link on B closed, telling the robot why');
  await wa.barrier();
  t.same(
    wa.all('robot').filter((f) => f.kind !== 'offline' && f.kind !== 'deleted'),
    [],
    'the watcher on A got nothing else but offline',
  );
  t.match(await wa.request({ t: 'watch', robot: r.id }), { t: 'error', code: 'NOT_FOUND' }, 'the robot is gone on A');
  t.match(await wa.request({ t: 'cmd', robot: r.id, name: 'go' }), { t: 'error', code: 'NOT_FOUND' }, 'and its lease with it');
  t.equal((await apiA.get(`/api/v1/robots/${r.id}/status`, { token: owner.token })).status, 404, 'REST status through A: 404');
});

/** A robot on B that accepts commands and never finishes them; the owner on A holds its lease and has one in flight. */
async function commandInFlight(t: Test) {
  const nodes = await threeNodes(t);
  const { a, b, apiA, signUp, enroll, attach, user } = nodes;
  const owner = await signUp('own');
  const r = await enroll(owner);
  const robot = await attach(b, r);
  robot.on('command', (c) => robot.status(c.command, 'accepted'));
  await listed(apiA, r, owner);
  const ua = await user(a, owner);
  t.match(await ua.request({ t: 'watch', robot: r.id }), { t: 'watching', online: true });
  t.match(await ua.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 120_000 }), { t: 'leased', lease: { holder: { id: owner.id } } }, 'leased at B');
  await ua.next((f) => f.t === 'lease' && f.reason === 'acquired', 'acquired');
  const q = await ua.request({ t: 'cmd', robot: r.id, name: 'drill', timeoutMs: 120_000 });
  t.equal(q.t, 'queued', 'queued at B');
  await ua.take(stageOf(q.cmd), 2, 'delivered and accepted');
  return { ...nodes, owner, r, robot, ua, cmd: q.cmd as string };
}

/** After the move to C: the lease went along, and the holder's next command reaches the robot there. */
async function drivenOnC(t: Test, s: Awaited<ReturnType<typeof commandInFlight>>, seen: string[]) {
  const { ua, apiA, r, owner, cmd } = s;
  await leaseKept(t, apiA, owner, r, owner, 'the lease moved with the robot');
  const q2 = await ua.request({ t: 'cmd', robot: r.id, name: 'wave' });
  t.equal(q2.t, 'queued', 'the lease holder commands it on C without acquiring again');
  t.match(await ua.next(stageOf(q2.cmd, true), 'the outcome on C'), { stage: 'completed', detail: { done: 'wave' } });
  t.same(seen, ['wave'], 'the robot on C got the new command only');
  await ua.barrier();
  t.same(stages(ua, cmd), ['delivered', 'accepted', 'lost'], 'the first command ended once, lost');
  const row = await waitUntil(
    async () =>
      ((await apiA.get(`/api/v1/robots/${r.id}/audit`, { token: owner.token })).body.commands as { id: string; outcome: string | null }[]).find(
        (x) => x.id === cmd,
      ),
    (x) => x?.outcome != null,
    'the first command audited with an outcome',
  );
  t.equal(row?.outcome, 'lost', 'audited as lost');
}

t.test('a command in flight when the robot drops off B and reconnects to C ends lost; the lease moves with the robot', async (t) => {
  const s = await commandInFlight(t);
  s.robot.destroy();
  const lost = await s.ua.next(stageOf(s.cmd, true), 'the final stage');
  t.equal(lost.stage, 'lost', 'the issuer on A hears the command is lost, long before its deadline');
  t.match(lost.detail, /disconnected/, 'because the robot disconnected');
  t.match(await s.ua.next((f) => f.t === 'robot', 'offline'), { kind: 'offline' }, 'the robot is shown offline');
  t.match(await s.ua.request({ t: 'cmd', robot: s.r.id, name: 'go' }), { t: 'error', code: 'ROBOT_OFFLINE' }, 'offline: a new command is refused');

  const again = await s.attach(s.c, s.r);
  const seen = obedient(again);
  t.match(await s.ua.next((f) => f.t === 'robot', 'online'), { kind: 'online' }, 'the watcher on A hears it come back on C');
  await drivenOnC(t, s, seen);
});

t.test('a command in flight when the robot attaches to C while still linked to B ends lost; the lease moves with the robot', async (t) => {
  const s = await commandInFlight(t);
  const errors: string[] = [];
  s.robot.on('hubError', (e) => errors.push(e.code));
  const closed = new Promise<void>((resolve) => s.robot.once('close', resolve));
  const again = await s.attach(s.c, s.r);
  const seen = obedient(again);
  const lost = await s.ua.next(stageOf(s.cmd, true), 'the final stage');
  t.equal(lost.stage, 'lost', 'the issuer on A hears the command is lost, long before its deadline');
  t.match(lost.detail, /another node/, 'because the robot moved to another node');
  t.match(await s.ua.next((f) => f.t === 'robot' && f.kind === 'online', 'online'), { kind: 'online' }, 'the watcher on A hears it come online on C');
  await closed;
  t.same(errors, ['REPLACED'], 'the old link on B was replaced');
  await drivenOnC(t, s, seen);
});

t.test('a lease taken on A for a robot that never connected: A holds it, C shows it, and the robot connecting to B obeys its holder', async (t) => {
  const { a, b, c, apiC, names, withViewer, attach, user } = await threeNodes(t);
  const { owner, viewer, r } = await withViewer(apiC);
  const nc = await natsConnect({ servers: natsUrl() });
  t.teardown(() => nc.close());
  const kv = await new Kvm(nc).open(names.robotsBucket);
  const entry = async () => (await kv.get(r.id))?.json<{ node: string; online: boolean }>();
  t.equal(await entry(), undefined, 'nobody is home');

  const vc = await user(c, viewer);
  t.match(await vc.request({ t: 'watch', robot: r.id }), { t: 'watching', online: false, lease: null }, 'a watcher on C, before anyone is home');
  const ua = await user(a, owner);
  const leased = await ua.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 120_000 });
  t.match(leased, { t: 'leased', lease: { holder: { id: owner.id } } }, 'leased on A');
  t.same(await entry(), { node: a.nodeId, online: false }, 'A is now home, the robot offline');

  const status = await waitUntil(
    async () => (await apiC.get(`/api/v1/robots/${r.id}/status`, { token: viewer.token })).body.status,
    (s) => s?.lease?.holder?.id === owner.id,
    'the lease in the status through C',
  );
  t.match(
    status,
    { online: false, lease: { holder: { id: owner.id, username: owner.username }, expiresAt: new Date(leased.lease.expiresAt).toISOString() } },
    'REST status through C shows the holder',
  );
  const late = await user(c, viewer);
  t.match(await late.request({ t: 'watch', robot: r.id }), { lease: { holder: { id: owner.id } } }, 'a watch on C now shows the lease');
  // C synced with A for that status: A's lease event, sent before, has reached C's actor by now.
  await vc.barrier();
  t.match(
    vc.all('lease'),
    [{ reason: 'acquired', lease: { holder: { id: owner.id } } }],
    'the watcher on C since before anyone was home hears the lease taken on A',
  );

  const robot = await attach(b, r);
  const seen = obedient(robot);
  for (const w of [vc, late])
    t.match(await w.next((f) => f.t === 'robot' && f.kind === 'online', 'online on B'), { kind: 'online' }, 'watchers on C hear it come online on B');
  await waitUntil(entry, (e) => e?.node === b.nodeId && e.online, 'B home, online');
  await leaseKept(t, apiC, viewer, r, owner, 'the lease moved from A to B', leased.lease.expiresAt);
  const q = await ua.request({ t: 'cmd', robot: r.id, name: 'go' });
  t.equal(q.t, 'queued', 'the holder on A commands it on B without acquiring again');
  t.match(await ua.next(stageOf(q.cmd, true), 'the outcome'), { stage: 'completed', detail: { done: 'go' } });
  t.same(seen, ['go']);
});

t.test('requests refused on the issuer’s node stay there: nothing reaches the robot’s home', async (t) => {
  const { a, b, apiA, names, signUp, withViewer, attach, user } = await threeNodes(t);
  const { owner, viewer, r } = await withViewer();
  const stranger = await signUp('str');
  const robot = await attach(b, r);
  const seen = obedient(robot);
  await listed(apiA, r, owner);

  // Every request sent to the robot's home, as the home receives it.
  const nc = await natsConnect({ servers: natsUrl() });
  t.teardown(() => nc.close());
  const spied: { op: string; by?: { user: { id: string } }; name?: string }[] = [];
  nc.subscribe(names.robotRequests(r.id), {
    callback: (_e, m) => {
      spied.push(unpackPlain(m.data) as (typeof spied)[number]);
    },
  });
  await nc.flush();

  const sa = await user(a, stranger);
  const va = await user(a, viewer);
  const refused = async (w: RawClient, frame: Record<string, unknown>, code: string) => {
    const id = w.id();
    w.send({ ...frame, id });
    const reply = await w.next((f) => f.id === id, JSON.stringify(frame));
    t.match(reply, { t: 'error', id, code }, `${JSON.stringify(frame).slice(0, 80)}: ${code}, with the request id`);
    return reply;
  };
  await refused(sa, { t: 'cmd', name: 'go' }, 'VALIDATION');
  await refused(sa, { t: 'cmd', robot: '', name: 'go' }, 'VALIDATION');
  await refused(sa, { t: 'cmd', robot: 'not-a-uuid', name: 'go' }, 'VALIDATION');
  await refused(sa, { t: 'cmd', robot: r.id }, 'VALIDATION');
  const hidden = await refused(sa, { t: 'cmd', robot: r.id, name: 'go' }, 'NOT_FOUND');
  const ghost = await refused(sa, { t: 'cmd', robot: randomUUID(), name: 'go' }, 'NOT_FOUND');
  t.equal(hidden.message, ghost.message, 'a hidden robot on another node looks like a missing one');
  await refused(sa, { t: 'estop', robot: r.id }, 'NOT_FOUND');
  await refused(sa, { t: 'lease', robot: r.id, op: 'acquire' }, 'NOT_FOUND');
  await refused(sa, { t: 'watch', robot: r.id }, 'NOT_FOUND');
  await refused(va, { t: 'cmd', robot: r.id, name: 'go' }, 'FORBIDDEN');
  await refused(va, { t: 'estop', robot: r.id }, 'FORBIDDEN');
  await refused(va, { t: 'lease', robot: r.id, op: 'acquire' }, 'FORBIDDEN');

  // The owner's command without the lease is the home's to refuse: it travels (and shows the spy works).
  const oa = await user(a, owner);
  await refused(oa, { t: 'cmd', robot: r.id, name: 'control' }, 'LEASE_REQUIRED');
  await waitUntil(
    async () => spied.filter((q) => q.op === 'cmd').length,
    (n) => n >= 1,
    "the owner's command seen on its way to B",
  );
  t.same(
    spied.filter((q) => q.op !== 'sync').map((q) => [q.op, q.by?.user.id, q.name]),
    [['cmd', owner.id, 'control']],
    "only the owner's command went to B",
  );
  t.same(seen, [], 'the robot got no command');
  t.equal((await sa.request({ t: 'ping' })).t, 'pong', 'the connections stay open');
});
