// Cluster start-up and JetStream health, with real node processes on a throwaway NATS cluster.
// A node never exits because NATS or JetStream is not ready yet (nodes started together with a
// fresh NATS cluster used to crash on their first heartbeat): it holds its port, /readyz says
// what it waits for, and it joins when it can. And JetStream's health is one state that /readyz,
// `sb_jetstream_up` and the log all read: after a NATS server dies they agree, and the log tells
// each change once instead of every heartbeat.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { freePort, throwawayNats } from '../scripts/provision.mjs';
import { untilJoined } from '../src/cluster/join.js';
import { listenStandby } from '../src/transport/standby.js';
import { uWS } from '../src/transport/uws.js';
import { Api } from './helpers/api.js';
import { freshDatabase } from './helpers/db.js';
import { FAST, tempDir } from './helpers/hub.js';
import { type Spawned, spawnCli } from './helpers/process.js';
import { waitUntil } from './helpers/robots.js';

async function clusterEnv(t: Test): Promise<Record<string, string>> {
  const dir = await tempDir(t, 'sb-startup-');
  const keyFile = path.join(dir, 'jwt.pem');
  await writeFile(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  return {
    ...FAST,
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: await freshDatabase(t),
    SB_CLUSTER_NAME: `s${randomBytes(6).toString('hex')}`,
    SB_JWT_KEY_FILE: keyFile,
    SB_DATA_DIR: dir,
  };
}

const alive = (p: Spawned) => p.child.exitCode === null && p.child.signalCode === null;

async function stop(nodes: Spawned[]): Promise<void> {
  for (const p of nodes) if (alive(p)) p.child.kill('SIGTERM');
  await Promise.all(nodes.map((p) => p.exited));
}

t.test('#2 NATS not reachable at start: the node stays up, holds its port, /readyz says why', async (t) => {
  const e = await clusterEnv(t);
  const nowhere = `nats://127.0.0.1:${await freePort()}`;
  const p = spawnCli(t, ['serve'], { ...e, NATS_URL: nowhere, SB_NODE_ID: 'lonely' });
  const joining = await p.waitFor((l) => l.msg === 'joining the cluster; /readyz says what it waits for', 'the stand-in listening', 30_000);
  await p.waitFor((l) => l.msg === 'NATS or JetStream not ready yet; retrying', 'a failed attempt', 30_000);
  const api = new Api(joining.url as string);
  const ready = await api.get('/readyz');
  t.equal(ready.status, 503, '/readyz: not ready');
  t.equal(ready.body.status, 'unavailable');
  t.match(ready.body.reason, /^connecting to NATS: /, 'and it says what it waits for');
  t.equal((await api.get('/healthz')).status, 200, '/healthz: alive');
  const other = await api.get('/api/v1/rooms');
  t.equal(other.status, 503, 'any other request: 503');
  t.equal(other.body.error.code, 'UNAVAILABLE');
  t.ok(alive(p), 'still running');
  t.equal(p.lines.filter((l) => l.msg === 'NATS or JetStream not ready yet; retrying').length, 1, 'the same failure is logged once, not at every attempt');
  p.child.kill('SIGTERM');
  await p.exited;
});

t.test('#2 three nodes started at the same moment as a fresh 3-server NATS cluster all join', async (t) => {
  const e = await clusterEnv(t);
  const nodes: Spawned[] = [];
  const nats = await throwawayNats({
    servers: 3,
    // The nodes start while the NATS servers are still starting and JetStream has no leader yet.
    onSpawned: (urls) => {
      for (let i = 1; i <= 3; i++) nodes.push(spawnCli(t, ['serve'], { ...e, NATS_URL: urls.join(','), SB_NODE_ID: `node${i}` }));
    },
  });
  t.teardown(() => nats.stop());
  const listening = await Promise.all(nodes.map((p, i) => p.waitFor((l) => l.msg === 'listening', `node${i + 1} listening`, 90_000)));
  t.ok(nodes.every(alive), 'no node exited');
  for (const [i, l] of listening.entries()) {
    const ready = await waitUntil(
      () => new Api(l.url as string).get('/readyz'),
      (r) => r.status === 200 && r.body.cluster?.nodes?.length === 3 && r.body.cluster?.jetstream === 'ok',
      `node${i + 1} ready with all three members`,
      30_000,
    );
    t.same(ready.body.cluster.nodes, ['node1', 'node2', 'node3'], `node${i + 1} sees every member`);
  }
  const waited = nodes.flatMap((p) => p.lines.filter((l) => l.msg === 'NATS or JetStream not ready yet; retrying'));
  t.comment(`attempts that met NATS or JetStream not ready (logged once per distinct failure): ${waited.length}`);
  await stop(nodes);
  t.same(
    nodes.map((p) => p.child.exitCode),
    [0, 0, 0],
    'every node exits 0 on SIGTERM',
  );
});

const jetstreamUp = async (api: Api): Promise<number> => {
  const m = await api.request('GET', '/metrics');
  const line = m.text.split('\n').find((l) => l.startsWith('sb_jetstream_up '));
  return Number(line?.split(' ')[1]);
};

t.test('#3 one JetStream truth: after a NATS server is SIGKILLed, /readyz, sb_jetstream_up and the log agree', async (t) => {
  const nats = await throwawayNats({ servers: 3 });
  t.teardown(() => nats.stop());
  const e = await clusterEnv(t);
  const nodes = [1, 2].map((i) => spawnCli(t, ['serve'], { ...e, NATS_URL: nats.url, SB_NODE_ID: `node${i}` }));
  const apis = (await Promise.all(nodes.map((p) => p.waitFor((l) => l.msg === 'listening', 'listening', 60_000)))).map((l) => new Api(l.url as string));
  for (const api of apis)
    await waitUntil(
      () => api.get('/readyz'),
      (r) => r.body.cluster?.nodes?.length === 2,
      'both members',
      30_000,
    );

  nats.kill(0, 'SIGKILL');
  // A node that joins after the kill shows up in the survivors' membership only through complete
  // heartbeats (write and read of the bucket) made after it: each then has met the damaged NATS.
  nodes.push(spawnCli(t, ['serve'], { ...e, NATS_URL: nats.url, SB_NODE_ID: 'node3' }));
  await (nodes[2] as Spawned).waitFor((l) => l.msg === 'listening', 'node3 listening', 60_000);
  // Whatever each node went through, it settles on JetStream working (two servers of three keep a
  // quorum), and every reader of the one state says so at the same time.
  for (const [i, api] of apis.entries()) {
    const sample = await waitUntil(
      async () => {
        const [r, up] = await Promise.all([api.get('/readyz'), jetstreamUp(api)]);
        return { jetstream: r.body.cluster?.jetstream, up, nodes: r.body.cluster?.nodes?.length };
      },
      (s) => s.nodes === 3 && s.jetstream === 'ok' && s.up === 1,
      `node${i + 1}: JetStream ok with the newcomer`,
      60_000,
    );
    t.same(sample, { jetstream: 'ok', up: 1, nodes: 3 }, `node${i + 1}: /readyz and sb_jetstream_up agree, and heartbeats read the bucket`);
  }
  for (const [i, p] of nodes.slice(0, 2).entries()) {
    const changes = p.lines.flatMap((l) =>
      l.msg === 'JetStream failing: node heartbeat failed' ? ['failing'] : l.msg === 'JetStream recovered: node heartbeats succeed again' ? ['recovered'] : [],
    );
    t.ok(
      changes.every((c, k) => c === (k % 2 === 0 ? 'failing' : 'recovered')),
      `node${i + 1}: the log tells each change of state once (${changes.join(', ') || 'none'})`,
    );
    t.equal(p.lines.filter((l) => l.msg === 'node heartbeat failed').length, 0, `node${i + 1}: no heartbeat failure repeated every interval`);
  }
  await stop(nodes);
});

t.test('#2 untilJoined: retries until the step succeeds, says why meanwhile, logs each distinct failure once', async (t) => {
  const lines: Record<string, any>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const status = { reason: 'starting' };
  const failures = ['JetStreamNotEnabled', 'JetStreamNotEnabled', 'timeout'];
  const seen: string[] = [];
  const r = await untilJoined(
    'joining the membership',
    async () => {
      const f = failures.shift();
      if (f) throw new Error(f);
      seen.push(status.reason);
      return 'joined';
    },
    status,
    log,
  );
  t.equal(r, 'joined');
  t.same(seen, ['joining the membership: timeout'], 'the reason names the step and its last failure');
  t.same(
    lines.filter((l) => l.msg === 'NATS or JetStream not ready yet; retrying').map((l) => l.err.message),
    ['JetStreamNotEnabled', 'timeout'],
    'a repeated failure is logged once',
  );
  t.match(lines.at(-1), { msg: 'joined after waiting for NATS / JetStream', step: 'joining the membership', tries: 4 });
});

t.test('#2 the stand-in: /healthz 200, /readyz 503 with the reason, anything else 503 UNAVAILABLE; a taken port is refused', async (t) => {
  let reason = 'connecting to NATS: ECONNREFUSED';
  const standby = await listenStandby(uWS.App(), '127.0.0.1', 0, () => reason);
  if (!standby) throw new Error('no port');
  t.teardown(() => standby.close());
  const api = new Api(`http://127.0.0.1:${standby.port}`);
  t.same((await api.get('/healthz')).body, { status: 'ok' });
  const ready = await api.get('/readyz');
  t.equal(ready.status, 503);
  t.same(ready.body, { status: 'unavailable', reason: 'connecting to NATS: ECONNREFUSED' });
  reason = 'joining the membership: timeout';
  t.equal((await api.get('/readyz')).body.reason, 'joining the membership: timeout', 'the reason is read at each request');
  const post = await api.post('/api/v1/rooms', { name: 'x' });
  t.equal(post.status, 503);
  t.equal(post.headers.get('retry-after'), '1');
  t.equal(post.headers.get('connection'), 'close', 'the connection is not kept for after the switch');
  t.match(post.body.error, { code: 'UNAVAILABLE', message: /joining its cluster \(joining the membership: timeout\)/ });
  t.equal(await listenStandby(uWS.App(), '127.0.0.1', standby.port, () => reason), undefined, 'a taken port: no stand-in');
});
