// `npm run cluster` (scripts/dev-cluster.mjs): three hub nodes on a throwaway 3-server NATS
// cluster and the given PostgreSQL come up on free ports, see each other, serve one room across
// nodes, and all stop on SIGINT.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import t from 'tap';
import { natsAnswers } from '../scripts/provision.mjs';
import { Api, uniqueName } from './helpers/api.js';
import { freshDatabase } from './helpers/db.js';
import { waitUntil } from './helpers/robots.js';
import { connect } from './helpers/ws.js';

t.test('the dev cluster starts, forms one hub and stops on Ctrl-C', async (t) => {
  const child = spawn(process.execPath, ['scripts/dev-cluster.mjs', '--base-port', '0', '--duration', '120'], {
    env: { ...process.env, DATABASE_URL: await freshDatabase(t), SB_ARGON2_MEMORY_KIB: '8192', SB_ARGON2_TIME_COST: '1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = await new Promise<{ nodes: string[]; nats: string[] }>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('{')) resolve(JSON.parse(line));
    });
    exited.then((code) => reject(new Error(`dev-cluster exited (${code}) before it was ready: ${stderr}`)));
  });
  t.equal(ready.nodes.length, 3, 'three nodes');
  t.equal(ready.nats.length, 3, 'three NATS servers');
  for (const url of ready.nodes) {
    const r = await waitUntil(
      () => new Api(url).get('/readyz'),
      (res) => res.body?.cluster?.nodes?.length === 3,
      `${url} to see the cluster`,
      15_000,
    );
    t.same(r.body.cluster.nodes, ['node1', 'node2', 'node3'], `${url} sees all three nodes`);
  }
  const api = new Api(ready.nodes[0] as string);
  const u = await api.signUp(uniqueName('dev'));
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'dev' }, { token: u.token })).body.room.id as string;
  const reader = await connect(ready.nodes[2] as string, { token: u.token });
  t.teardown(() => reader.ws.terminate());
  t.equal((await reader.request({ t: 'sub', room })).t, 'subscribed');
  const writer = await connect(ready.nodes[1] as string, { token: u.token });
  t.teardown(() => writer.ws.terminate());
  t.equal((await writer.request({ t: 'pub', room, cid: 'hello', body: 'across nodes' })).t, 'ack');
  t.match(await reader.next((f) => f.t === 'msg', 'the message on node 3'), { seq: 1, body: 'across nodes' });

  child.kill('SIGINT');
  t.equal(await exited, 0, 'exits 0 on SIGINT');
  for (const url of ready.nats) t.notOk(await natsAnswers(url), `${url} stopped`);
  for (const url of ready.nodes) {
    const down = await fetch(`${url}/healthz`).then(
      () => false,
      () => true,
    );
    t.ok(down, `${url} stopped`);
  }
});
