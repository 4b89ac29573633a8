// Robots across the nodes of a cluster, over real NATS, PostgreSQL and TLS: a robot connected to
// one node is watched, leased, commanded and stopped by users on the others; it moves to another
// node with its lease; and when its node is SIGKILLed in the middle of a command, the user on the
// surviving node is told the outcome is unknown (`lost`), never left waiting.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Hub } from '../src/hub.js';
import { Api, uniqueName } from './helpers/api.js';
import { natsUrl } from './helpers/cluster.js';
import { connectRobot, connectUser, enrollOn, leaseKept, listed, obedient, robotCluster, sharedPki } from './helpers/cluster-robots.js';
import { freshDatabase } from './helpers/db.js';
import { tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';
import { waitUntil } from './helpers/robots.js';

t.test('a robot on one node, driven from the others; it moves node and keeps its lease', async (t) => {
  const { nodes, apis, withViewer, attach, user } = await robotCluster(t, 3);
  const [a, b, c] = nodes as [Hub, Hub, Hub];
  const [apiA, , apiC] = apis as [Api, Api, Api];

  const { owner, viewer, r } = await withViewer();

  const robot = await attach(b, r);
  const seen = obedient(robot);
  await listed(apiA, r, owner);

  // Watching from A and C.
  const ua = await user(a, owner);
  const vc = await user(c, viewer);
  const wa = await ua.request({ t: 'watch', robot: r.id });
  t.match(wa, { t: 'watching', role: 'owner', online: true, lease: null }, 'A: watching, online');
  t.same(
    wa.channels.map((ch: { id: number }) => ch.id),
    [1, 2],
    'A: the channels the robot advertised on B',
  );
  t.match(await vc.request({ t: 'watch', robot: r.id }), { t: 'watching', role: 'viewer', online: true }, 'C: watching, online');
  const status = await apiC.get(`/api/v1/robots/${r.id}/status`, { token: viewer.token });
  t.match(status.body.status, { online: true, lease: null }, 'REST status through C');

  // Telemetry crosses nodes: every reliable frame in order, and the newest latest sample.
  for (let i = 0; i < 20; i++) robot.telemetry(2, { line: i });
  robot.telemetry(1, { x: 7, y: 8, theta: 0 });
  for (const w of [ua, vc]) {
    const logs = await w.take((f) => f.t === 'tm' && f.ch === 2, 20, 'twenty log lines');
    t.same(
      logs.map((f) => f.data.line),
      [...Array(20).keys()],
      'reliable telemetry arrives whole and in order on another node',
    );
    t.match(await w.next((f) => f.t === 'tm' && f.ch === 1, 'pose'), { data: { x: 7, y: 8 } }, 'latest telemetry arrives');
  }

  // A viewer is refused on its own node; the owner's lease and command go to B.
  t.match(await vc.request({ t: 'lease', robot: r.id, op: 'acquire' }), { t: 'error', code: 'FORBIDDEN' }, 'a viewer cannot take the lease');
  t.match(await vc.request({ t: 'cmd', robot: r.id, name: 'go' }), { t: 'error', code: 'FORBIDDEN' }, 'a viewer cannot command');
  const leased = await ua.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 });
  t.match(leased, { t: 'leased', lease: { holder: { id: owner.id } } }, 'A: leased through B');
  for (const w of [ua, vc]) t.match(await w.next((f) => f.t === 'lease', 'lease event'), { reason: 'acquired', lease: { holder: { id: owner.id } } });

  const q = await ua.request({ t: 'cmd', robot: r.id, name: 'grip', args: { force: 3 } });
  t.equal(q.t, 'queued', 'A: the command is queued at B');
  const stages = await ua.take((f) => f.t === 'cmd' && f.cmd === q.cmd, 3, 'three stages');
  t.same(
    stages.map((f) => f.stage),
    ['delivered', 'accepted', 'completed'],
    'every stage reaches the issuer on A',
  );
  t.same(stages[2]?.detail, { done: 'grip' }, 'with the robot detail');
  const rows = await waitUntil(
    async () => (await apiC.get(`/api/v1/robots/${r.id}/audit`, { token: owner.token })).body.commands as { id: string; outcome: string | null }[],
    (rows) => rows.some((x) => x.id === q.cmd && x.outcome === 'completed'),
    'the command audited as completed',
  );
  t.ok(
    rows.find((x) => x.id === q.cmd),
    'the audit log (read on C) has the command',
  );
  // A short deadline crosses nodes too (the home's patience margin scales with it).
  const quick = await ua.request({ t: 'cmd', robot: r.id, name: 'quick', timeoutMs: 200 });
  t.equal(quick.t, 'queued', 'a command with a 200 ms deadline is queued at B');
  await ua.next((f) => f.t === 'cmd' && f.cmd === quick.cmd && ['completed', 'timeout'].includes(f.stage), 'its final stage');

  // The owner stops it from C: the robot gets the stop; every watcher sees the lease end.
  const uc = await user(c, owner);
  const es = await uc.request({ t: 'estop', robot: r.id });
  t.equal(es.t, 'queued', 'C: e-stop queued at B');
  t.match(await uc.next((f) => f.t === 'cmd' && f.cmd === es.cmd && f.stage === 'completed', 'the stop completed'), { stage: 'completed' });
  for (const w of [ua, vc]) t.match(await w.next((f) => f.t === 'lease', 'lease end'), { reason: 'estop', lease: null });
  t.same(seen, ['grip', 'quick', 'estop'], 'the robot got the commands, then the stop');

  // The robot goes offline and comes back on C; the lease taken meanwhile moves with it.
  robot.destroy();
  for (const w of [ua, vc]) await w.next((f) => f.t === 'robot' && f.kind === 'offline', 'offline on B');
  // A stop for the offline robot is decided (and audited) once, by B, where the robot was.
  const auditRows = async () =>
    (await apiC.get(`/api/v1/robots/${r.id}/audit`, { token: owner.token })).body.commands as { command: string; outcome: string | null }[];
  t.match(await ua.request({ t: 'estop', robot: r.id }), { t: 'error', code: 'ROBOT_OFFLINE' }, 'an e-stop to the offline robot');
  const stops = await waitUntil(
    async () => (await auditRows()).filter((x) => x.command === 'estop'),
    (xs) => xs.some((x) => x.outcome === 'offline'),
    'the refused stop audited',
  );
  t.equal(stops.length, 2, 'the earlier stop and this one, recorded once');
  t.match(await ua.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 }), { t: 'leased' }, 'a lease on the offline robot, held by B');
  await ua.next((f) => f.t === 'lease' && f.reason === 'acquired', 'acquired while offline');
  const again = await attach(c, r);
  const seen2 = obedient(again);
  for (const w of [ua, vc]) {
    t.match(await w.next((f) => f.t === 'robot' && f.kind === 'online', 'online on C'), { kind: 'online' }, 'watchers hear it come back on another node');
  }
  await leaseKept(t, apiA, owner, r, owner, 'the lease moved with the robot');
  const q2 = await ua.request({ t: 'cmd', robot: r.id, name: 'wave' });
  t.equal(q2.t, 'queued', 'the lease holder commands it on its new node without asking again');
  t.match(await ua.next((f) => f.t === 'cmd' && f.cmd === q2.cmd && f.stage === 'completed', 'completed on C'), { stage: 'completed' });
  t.same(seen2, ['wave']);
});

/** Hub processes of one cluster (so one can be killed or frozen), sharing PKI, key and database. */
async function processes(t: Test) {
  const pki = await sharedPki(t);
  const dir = await tempDir(t, 'sb-robot-crash-');
  const keyFile = path.join(dir, 'jwt.pem');
  await writeFile(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  const env = {
    ...pki.env,
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: await freshDatabase(t),
    NATS_URL: natsUrl(),
    SB_CLUSTER_NAME: `r${randomBytes(6).toString('hex')}`,
    SB_JWT_KEY_FILE: keyFile,
    SB_DATA_DIR: dir,
  };
  const start = async (i: number) => {
    const p = spawnCli(t, ['serve'], { ...env, SB_NODE_ID: `node${i}` });
    const robots = await p.waitFor((l) => l.msg === 'robot endpoint listening (mutual TLS)', `node${i}'s robot endpoint`);
    const listening = await p.waitFor((l) => l.msg === 'listening', `node${i} listening`);
    return { p, url: listening.url as string, robotPort: robots.port as number };
  };
  const a = await start(1);
  const b = await start(2);
  const api = new Api(a.url);
  await waitUntil(
    async () => (await api.get('/readyz')).body.cluster?.nodes,
    (n) => n?.length === 2,
    'both nodes members',
    15_000,
  );
  return { pki, start, a, b, api };
}

t.test("the robot's node is SIGKILLed mid-command: the issuer on another node learns the outcome is unknown", async (t) => {
  const { pki, start, a, b, api } = await processes(t);
  const owner = await api.signUp(uniqueName('crash'));
  const r = await enrollOn(api, owner);
  const robot = await connectRobot(t, b.robotPort, r, pki.caPem);
  // It accepts, and is still working when its node dies.
  robot.on('command', (c) => robot.status(c.command, 'accepted'));
  await listed(api, r, owner);

  const u = await connectUser(t, a.url, owner);
  t.match(await u.request({ t: 'watch', robot: r.id }), { online: true });
  t.match(await u.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 120_000 }), { t: 'leased' });
  await u.next((f) => f.t === 'lease' && f.reason === 'acquired', 'acquired');
  const q = await u.request({ t: 'cmd', robot: r.id, name: 'drill', timeoutMs: 120_000 });
  t.equal(q.t, 'queued');
  await u.take((f) => f.t === 'cmd' && f.cmd === q.cmd, 2, 'delivered and accepted');
  const auditRow = async () =>
    (
      (await api.get(`/api/v1/robots/${r.id}/audit`, { token: owner.token })).body.commands as {
        id: string;
        outcome: string | null;
        acceptedAt: string | null;
      }[]
    ).find((x) => x.id === q.cmd);
  await waitUntil(auditRow, (row) => row?.acceptedAt != null, 'the acceptance audited');

  b.p.child.kill('SIGKILL');
  const killedAt = Date.now();
  const lost = await u.next((f) => f.t === 'cmd' && f.cmd === q.cmd, 'the final stage', 30_000);
  t.equal(lost.stage, 'lost', 'the command ends lost, long before its deadline');
  t.match(lost.detail, /unknown/, 'and says its outcome is unknown');
  t.match(await u.next((f) => f.t === 'robot', 'offline', 30_000), { kind: 'offline' }, 'the robot is shown offline');
  t.match(await u.next((f) => f.t === 'lease', 'lease gone'), { lease: null, reason: 'node_lost' }, 'its lease went with the node');
  t.comment(`outcome reported ${Date.now() - killedAt} ms after the SIGKILL (a node silent for 5 s is gone)`);
  t.match(await auditRow(), { outcome: null, acceptedAt: String }, 'the audit log shows it accepted with no outcome: the node died before writing one');
  t.match(await u.request({ t: 'cmd', robot: r.id, name: 'drill' }), { t: 'error', code: 'ROBOT_OFFLINE' }, 'a new command: the robot is offline');

  // The killed node comes back under the same id. The directory entry it left (the robot online
  // there) is its own to clear: the robot is listed offline everywhere, and another node can hold
  // its lease.
  await start(2);
  await waitUntil(
    async () => (await api.get('/readyz')).body.cluster?.nodes,
    (n) => n?.length === 2,
    'the restarted node a member again',
    15_000,
  );
  await listed(api, r, owner, false);
  t.match(await u.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 120_000 }), { t: 'leased' }, 'a lease on the offline robot, on A');

  // The robot reconnects to the surviving node and is driven again.
  const again = await connectRobot(t, a.robotPort, r, pki.caPem);
  again.on('command', (c) => again.status(c.command, 'completed'));
  await u.next((f) => f.t === 'robot' && f.kind === 'online', 'online on A');
  t.match(await u.request({ t: 'lease', robot: r.id, op: 'acquire' }), { t: 'leased' });
  const q2 = await u.request({ t: 'cmd', robot: r.id, name: 'drill' });
  t.equal(q2.t, 'queued');
  t.match(await u.next((f) => f.t === 'cmd' && f.cmd === q2.cmd && f.stage === 'completed', 'completed'), { stage: 'completed' });
});

t.test("a draining node's robot reconnects elsewhere and takes its lease along", async (t) => {
  const { nodes, apis, signUp, enroll, attach, user } = await robotCluster(t, 2);
  const [a, b] = nodes as [Hub, Hub];
  const [apiA] = apis as [Api, Api];
  const owner = await signUp('drain');
  const r = await enroll(owner);
  const robot = await attach(b, r);
  await listed(apiA, r, owner);
  const u = await user(a, owner);
  t.match(await u.request({ t: 'watch', robot: r.id }), { online: true });
  const leased = await u.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 120_000 });
  t.match(leased, { t: 'leased', lease: { holder: { id: owner.id } } });

  // Node B drains: its robot is told to go, and reconnects to A while B waits for it.
  const told = new Promise<{ code: string }>((resolve) => robot.on('hubError', (e) => resolve(e)));
  const draining = b.close();
  t.match(await told, { code: 'SHUTDOWN' }, 'the robot is told to reconnect elsewhere');
  const again = await attach(a, r);
  const seen = obedient(again);
  await draining;

  await leaseKept(t, apiA, owner, r, owner, 'same holder, same expiry', leased.lease.expiresAt);
  const q = await u.request({ t: 'cmd', robot: r.id, name: 'after-restart' });
  t.equal(q.t, 'queued', 'the holder commands it on the new node without acquiring again');
  t.match(await u.next((f) => f.t === 'cmd' && f.cmd === q.cmd && f.stage === 'completed', 'completed'), { stage: 'completed' });
  t.same(seen, ['after-restart']);
});
