// NATS failures under load, with two hub nodes on a throwaway 3-server NATS cluster: one NATS
// server is SIGKILLed while both nodes publish. Nothing acked is lost (acks come after the
// PostgreSQL commit), and each node's subscribers, once their node has reconnected to a surviving
// server, still see every seq once and in order (a node repairs what it missed from PostgreSQL).

import t from 'tap';
import { throwawayNats } from '../scripts/provision.mjs';
import { type Api, uniqueName } from './helpers/api.js';
import { startCluster } from './helpers/cluster.js';
import { FAST, UNLIMITED } from './helpers/hub.js';
import { waitUntil } from './helpers/robots.js';
import { connect } from './helpers/ws.js';

t.test('SIGKILL one server of a 3-server NATS cluster while two nodes publish', async (t) => {
  const nats = await throwawayNats({ servers: 3 });
  t.teardown(() => nats.stop());
  const cluster = await startCluster(t, 2, { ...FAST, ...UNLIMITED, NATS_URL: nats.url });
  const api = cluster.apis[0] as Api;
  const [a, b] = await Promise.all([api.signUp(uniqueName('nk')), api.signUp(uniqueName('nk'))]);
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'nats kill' }, { token: a.token })).body.room.id as string;
  await api.post(`/api/v1/rooms/${room}/join`, undefined, { token: b.token });
  const nodes = cluster.nodes;
  const subs = await Promise.all(nodes.map((n, i) => connect(n.url, { token: (i === 0 ? a : b).token })));
  const pubs = await Promise.all(nodes.map((n, i) => connect(n.url, { token: (i === 0 ? a : b).token })));
  t.teardown(() => {
    for (const c of [...subs, ...pubs]) c.ws.terminate();
  });
  for (const s of subs) t.equal((await s.request({ t: 'sub', room })).t, 'subscribed');

  const PER = 200;
  const acks: Promise<Record<string, any>>[] = [];
  let killed = false;
  for (let k = 0; k < PER; k++) {
    for (const [i, p] of pubs.entries()) {
      const id = p.id();
      p.send({ t: 'pub', id, room, cid: `n${i}-${k}`, body: `node ${i + 1} #${k}` });
      acks.push(p.next((f) => f.id === id, `ack ${i}/${k}`, 30_000));
    }
    if (k === PER / 4) {
      await Promise.all(acks); // some traffic has flowed through NATS
      nats.kill(0, 'SIGKILL');
      killed = true;
    }
  }
  t.ok(killed);
  const replies = await Promise.all(acks);
  t.same(
    replies.filter((f) => f.t !== 'ack').map((f) => f.code),
    [],
    'every publish acked',
  );
  const total = 2 * PER;
  const range = Array.from({ length: total }, (_, i) => i + 2); // seq 1 is b's join
  t.same(
    replies.map((f) => f.seq as number).sort((x, y) => x - y),
    range,
    'the N seqs after the join, each acked once',
  );
  for (const [i, s] of subs.entries()) {
    // A node whose NATS server died reconnects to another and repairs what it missed: the stream
    // completes once the last seq has reached it (by NATS or by the repair after reconnecting).
    await waitUntil(
      async () => s.all('msg').length,
      (n) => n >= total,
      `subscriber on node ${i + 1} to receive all ${total}`,
      30_000,
    );
    t.same(
      s.all('msg').map((f) => f.seq),
      range,
      `subscriber on node ${i + 1}: every seq once, in order`,
    );
  }
  const hist = await api.get(`/api/v1/rooms/${room}/messages?after=${total - 200}&limit=200`, { token: a.token });
  t.equal(hist.body.messages.at(-1)?.seq, total, 'history ends at the last acked seq');
});
