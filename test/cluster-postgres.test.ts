// PostgreSQL stopped for a few seconds under load, with two nodes on a throwaway server: every
// publish is either acked — and then stored at its acked seq — or nacked with a retryable code;
// never acked and lost. The nodes recover by themselves (readiness goes 503 and back), a retry of
// every nacked publish with the same cid succeeds, and both subscribers end with every seq once,
// in order.

import t from 'tap';
import { throwawayPostgres } from '../scripts/provision.mjs';
import { type Api, storedMessages, uniqueName } from './helpers/api.js';
import { startCluster } from './helpers/cluster.js';
import { FAST, UNLIMITED } from './helpers/hub.js';
import { waitUntil } from './helpers/robots.js';
import { connect, type Frame, type RawClient } from './helpers/ws.js';

const RETRYABLE = ['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED'];

t.test('PostgreSQL down for 3 s while two nodes publish', async (t) => {
  const pg = await throwawayPostgres();
  t.teardown(() => pg.stop());
  const cluster = await startCluster(t, 2, { ...FAST, ...UNLIMITED, DATABASE_URL: pg.url });
  const api = cluster.apis[0] as Api;
  const [a, b] = await Promise.all([api.signUp(uniqueName('pg')), api.signUp(uniqueName('pg'))]);
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'pg down' }, { token: a.token })).body.room.id as string;
  await api.post(`/api/v1/rooms/${room}/join`, undefined, { token: b.token });
  const users = [a, b];
  const subs = await Promise.all(cluster.nodes.map((n, i) => connect(n.url, { token: (users[i] as typeof a).token })));
  const pubs = await Promise.all(cluster.nodes.map((n, i) => connect(n.url, { token: (users[i] as typeof a).token })));
  t.teardown(() => {
    for (const c of [...subs, ...pubs]) c.ws.terminate();
  });
  for (const s of subs) t.equal((await s.request({ t: 'sub', room })).t, 'subscribed');

  /** Publishes one at a time per client, recording each outcome, until `stop()` says so. */
  const outcomes = new Map<string, Frame>();
  let running = true;
  const publish = async (c: RawClient, name: string) => {
    for (let k = 0; running; k++) {
      const cid = `${name}-${k}`;
      outcomes.set(cid, await c.request({ t: 'pub', room, cid, body: `${name} #${k}` }, 20_000));
    }
  };
  const loops = pubs.map((c, i) => publish(c, `n${i}`));
  await waitUntil(
    async () => outcomes.size,
    (n) => n >= 60,
    'some acked traffic first',
  );
  await pg.halt();
  const down = await waitUntil(
    () => (cluster.apis[1] as Api).get('/readyz'),
    (r) => r.status === 503,
    'a node to report not ready',
  );
  t.equal(down.body.reason, 'store unreachable', 'readiness says why');
  const during = outcomes.size;
  await waitUntil(
    async () => outcomes.size,
    (n) => n >= during + 4,
    'publishes answered while PostgreSQL is down',
    15_000,
  );
  await pg.start();
  for (const node of cluster.apis) {
    await waitUntil(
      () => node.get('/readyz'),
      (r) => r.status === 200,
      'the node to be ready again by itself',
      30_000,
    );
  }
  const before = outcomes.size;
  await waitUntil(
    async () => [...outcomes.values()].slice(before).filter((f) => f.t === 'ack').length,
    (n) => n >= 20,
    'acks again after the restart',
    30_000,
  );
  running = false;
  await Promise.all(loops);

  const nacks = [...outcomes.entries()].filter(([, f]) => f.t !== 'ack');
  t.ok(nacks.length > 0, `publishes during the outage were refused (${nacks.length} of ${outcomes.size})`);
  t.same(
    [...new Set(nacks.map(([, f]) => (f.t === 'nack' ? f.code : `${f.t}:${f.code}`)))].filter((c) => !RETRYABLE.includes(c)),
    [],
    `every refusal is a nack with a retryable code (${[...new Set(nacks.map(([, f]) => f.code))]})`,
  );
  // What a client does with a retryable nack: the same publish again, same cid, with backoff (the
  // SDK's outbox does this). A retry can share the fate of an attempt still queued from the outage,
  // so it may be nacked again; every answer must be an ack or a retryable nack, and an ack must come.
  const retryCodes: string[] = [];
  for (const [cid] of nacks) {
    const [node] = cid.split('-');
    const c = pubs[node === 'n0' ? 0 : 1] as RawClient;
    let again = await c.request({ t: 'pub', room, cid, body: `${node} #${cid.split('-')[1]}` });
    for (let attempt = 1; again.t === 'nack' && RETRYABLE.includes(again.code) && attempt < 20; attempt++) {
      retryCodes.push(again.code);
      await new Promise((r) => setTimeout(r, 100 * attempt));
      again = await c.request({ t: 'pub', room, cid, body: `${node} #${cid.split('-')[1]}` });
    }
    t.equal(again.t, 'ack', `retry of ${cid} acked${again.t === 'ack' ? '' : `: ${JSON.stringify(again)}`}`);
    outcomes.set(cid, again);
  }
  if (retryCodes.length) t.comment(`retries nacked again before their ack: ${retryCodes.join(', ')}`);
  const total = outcomes.size;
  const acked = new Map([...outcomes].map(([cid, f]) => [cid, f.seq as number]));
  const range = Array.from({ length: total }, (_, i) => i + 2); // seq 1 is b's join
  t.same(
    [...acked.values()].sort((x, y) => x - y),
    range,
    'after the retries, the N seqs after the join, each acked once',
  );
  const stored = (await storedMessages(api, room, a.token)).slice(1);
  t.same(
    stored.map((m) => m.seq),
    range,
    'PostgreSQL holds them once each',
  );
  t.ok(
    stored.every((m) => acked.get(m.cid) === m.seq),
    'every message acked before, during or after the outage is stored at its acked seq',
  );
  for (const [i, s] of subs.entries()) {
    await waitUntil(
      async () => s.all('msg').length,
      (n) => n >= total,
      `subscriber ${i + 1} to catch up`,
      15_000,
    );
    t.same(
      s.all('msg').map((f) => f.seq),
      range,
      `subscriber on node ${i + 1}: every seq once, in order`,
    );
  }
});
