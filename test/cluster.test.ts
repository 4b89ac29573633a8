// Three nodes as one hub over real NATS and one PostgreSQL: membership through the KV bucket, one
// total order per room whichever nodes its publishers and subscribers are on (each node sequences
// behind PostgreSQL's last_seq fence and fans out through NATS), idempotent publishing across
// nodes, and resume on another node than the one a client left.

import type { Test } from 'tap';
import t from 'tap';
import { type Api, roomWith as roomWithOn, storedMessages, uniqueName } from './helpers/api.js';
import { startCluster } from './helpers/cluster.js';
import { FAST, UNLIMITED } from './helpers/hub.js';
import { waitUntil } from './helpers/robots.js';
import { type Frame, openFor, type RawClient, subscribe } from './helpers/ws.js';

const cluster = await startCluster(t, 3, { ...FAST, ...UNLIMITED });
const [n1, n2, n3] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
const api = cluster.apis[0] as Api;
type User = Awaited<ReturnType<Api['signUp']>>;
type Client = RawClient & { hello: Frame };

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

const roomWith = (owner: User, ...members: User[]) => roomWithOn(api, owner, ...members);

const open = (t: Test, u: User, url: string): Promise<Client> => openFor(t, url, u.token);

t.test('every node sees every node in the membership bucket', async (t) => {
  for (const node of cluster.nodes) {
    const nodes = await waitUntil(
      async () => node.membership?.nodes().map((x) => x.id) ?? [],
      (ids) => ids.length === 3,
      `${node.nodeId} to see 3 nodes`,
      10_000,
    );
    t.same(nodes, ['node1', 'node2', 'node3'], `${node.nodeId} sees the whole cluster`);
  }
  const ready = await cluster.apis[1]?.get('/readyz');
  t.equal(ready?.status, 200);
  t.same(
    ready?.body.cluster,
    { name: cluster.env.SB_CLUSTER_NAME, nodes: ['node1', 'node2', 'node3'], jetstream: 'ok' },
    '/readyz names the cluster and its nodes, and JetStream takes the heartbeats',
  );
});

t.test('one order per room with publishers and subscribers spread over three nodes', async (t) => {
  const people = await Promise.all([0, 1, 2].map(() => api.signUp(uniqueName('cl'))));
  const [a, b, c] = people as [User, User, User];
  const room = await roomWith(a, b, c);
  const urls = [n1.url, n2.url, n3.url];
  const clients = await Promise.all(people.map((u, i) => open(t, u, urls[i] as string)));
  for (const cl of clients) await subscribe(cl, room);
  const PER = 40;
  // Everyone publishes at once, so the three nodes' sequencers contend for the room.
  const acks = await Promise.all(
    clients.map(async (cl, i) => {
      const ids = range(1, PER).map(() => cl.id());
      ids.forEach((id, k) => {
        cl.send({ t: 'pub', id, room, cid: `n${i}-${k}`, body: `from node ${i + 1} #${k}` });
      });
      return Promise.all(ids.map((id) => cl.next((f) => f.id === id, `ack ${id}`, 20_000)));
    }),
  );
  const flat = acks.flat();
  t.ok(
    flat.every((f) => f.t === 'ack'),
    `every publish acked (${flat.filter((f) => f.t !== 'ack').map((f) => f.code)})`,
  );
  // Seqs 1 and 2 are b's and c's joins.
  t.same(
    flat.map((f) => f.seq as number).sort((x, y) => x - y),
    range(3, 3 * PER + 2),
    'the acks hold the N seqs after the joins, each once',
  );
  const streams = await Promise.all(clients.map((cl) => cl.take((f) => f.t === 'msg' && f.room === room, 3 * PER, 'all messages', 20_000)));
  for (const [i, s] of streams.entries()) {
    t.same(
      s.map((f) => f.seq),
      range(3, 3 * PER + 2),
      `subscriber on node ${i + 1} got every seq in order`,
    );
  }
  const bySeq = (s: Frame[]) => s.map((f) => `${f.seq}:${f.cid}`);
  t.same(bySeq(streams[1] as Frame[]), bySeq(streams[0] as Frame[]), 'nodes 1 and 2 agree on the order');
  t.same(bySeq(streams[2] as Frame[]), bySeq(streams[0] as Frame[]), 'nodes 1 and 3 agree on the order');
  const ackBySeq = new Map(flat.map((f) => [f.seq as number, f.cid as string]));
  t.ok(
    (streams[0] as Frame[]).every((f) => ackBySeq.get(f.seq) === f.cid),
    'each delivery carries the cid its ack announced for that seq',
  );
  t.same(
    (await storedMessages(api, room, a.token)).map((m) => m.seq),
    range(1, 3 * PER + 2),
    'history agrees, right after the last ack',
  );
});

t.test('a retry on another node gets the first seq', async (t) => {
  const u = await api.signUp(uniqueName('cl'));
  const room = await roomWith(u);
  const c1 = await open(t, u, n1.url);
  const first = await c1.request({ t: 'pub', room, cid: 'retry-me', body: 'once' });
  t.equal(first.t, 'ack');
  const c3 = await open(t, u, n3.url);
  const again = await c3.request({ t: 'pub', room, cid: 'retry-me', body: 'once' });
  t.match(again, { t: 'ack', seq: first.seq, mid: first.mid, dup: true }, 'the duplicate is recognised on another node');
});

t.test('resume on another node than the one the client left', async (t) => {
  const [u, v] = await Promise.all([api.signUp(uniqueName('cl')), api.signUp(uniqueName('cl'))]);
  const room = await roomWith(u, v);
  const reader = await open(t, u, n1.url);
  await subscribe(reader, room);
  const writer = await open(t, v, n2.url);
  for (let i = 1; i <= 5; i++) await writer.request({ t: 'pub', room, cid: `r${i}`, body: `m${i}` });
  const seen = await reader.take((f) => f.t === 'msg', 5, 'first five');
  t.same(
    seen.map((f) => f.seq),
    range(2, 6),
    "after v's join",
  );
  reader.ws.terminate();
  for (let i = 6; i <= 12; i++) await writer.request({ t: 'pub', room, cid: `r${i}`, body: `m${i}` });
  const back = await open(t, u, n3.url);
  const sub = back.request({ t: 'sub', room, since: 6 });
  const extraId = writer.id();
  writer.send({ t: 'pub', id: extraId, room, cid: 'r13', body: 'm13' });
  t.equal((await sub).t, 'subscribed');
  await writer.next((f) => f.id === extraId, 'ack 13');
  const missed = await back.take((f) => f.t === 'msg', 8, 'the missed and the live one');
  t.same(
    missed.map((f) => f.seq),
    range(7, 14),
    'the missed messages, then the live one, once each, in order',
  );
});

t.test('presence spans the nodes: snapshot, join and leave whichever node a member is on', async (t) => {
  const [a, b, c] = await Promise.all([0, 1, 2].map(() => api.signUp(uniqueName('pr'))));
  const room = await roomWith(a as User, b as User, c as User);
  const onA = await open(t, a as User, n1.url);
  await subscribe(onA, room);
  const onB = await open(t, b as User, n2.url);
  await subscribe(onB, room);
  // b's node asks the others when its first member arrives: a is in b's snapshot or arrives as a join.
  const seen = (userId: string) => (f: Frame) =>
    f.t === 'presence' && f.room === room && f.op !== 'leave' && f.users.some((u: { id: string }) => u.id === userId);
  await onB.next(seen((a as User).id), 'a present, seen from node 2', 10_000);
  await onA.next(seen((b as User).id), 'b joined, seen from node 1', 10_000);
  const onC = await open(t, c as User, n3.url);
  await subscribe(onC, room);
  await onC.next(seen((a as User).id), 'a present, seen from node 3', 10_000);
  await onC.next(seen((b as User).id), 'b present, seen from node 3', 10_000);
  await onA.next(seen((c as User).id), 'c joined, seen from node 1', 10_000);
  onB.ws.terminate();
  const left = await onA.next((f) => f.t === 'presence' && f.op === 'leave', 'b left, seen from node 1', 10_000);
  t.same(
    left.users.map((u: { id: string }) => u.id),
    [(b as User).id],
    'the leave names b',
  );
  await onC.next((f) => f.t === 'presence' && f.op === 'leave' && f.users[0]?.id === (b as User).id, 'b left, seen from node 3', 10_000);
});

t.test('typing notices reach the members on other nodes, not the typist', async (t) => {
  const [a, b] = await Promise.all([0, 1].map(() => api.signUp(uniqueName('ty'))));
  const room = await roomWith(a as User, b as User);
  const onA = await open(t, a as User, n1.url);
  await subscribe(onA, room);
  const onB = await open(t, b as User, n2.url);
  await subscribe(onB, room);
  t.equal((await onA.request({ t: 'typing', room })).t, 'ok');
  const notice = await onB.next((f) => f.t === 'typing', 'the typing notice on node 2');
  t.match(notice, { room, user: { id: (a as User).id } }, 'names the typist');
  await onA.barrier();
  t.same(onA.all('typing'), [], 'the typist does not get its own notice');
});

t.test('/metrics of a cluster node: NATS up and the node count', async (t) => {
  const text = await (await fetch(`${n2.url}/metrics`)).text();
  t.match(text, /^sb_nats_up 1$/m, 'connected to NATS');
  t.match(text, /^sb_cluster_nodes 3$/m, 'three live nodes');
  t.match(text, /^sb_jetstream_up 1$/m, 'heartbeats reach JetStream');
});

t.test('ending a session closes its sockets on every node; a deleted account’s too', async (t) => {
  const u = await api.signUp(uniqueName('cls'));
  const other = await cluster.apis[2]?.post('/api/v1/auth/login', { username: u.username, password: u.password });
  const elsewhere = { ...u, token: other?.body.accessToken as string };
  const onTwo = await open(t, u, n2.url);
  const onThree = await open(t, elsewhere, n3.url);
  // Signed out through node 1: the socket of that session on node 2 closes, the other stays.
  const mine = (await api.get('/api/v1/auth/sessions', { token: u.token })).body.sessions.find((s: { current: boolean }) => s.current);
  t.equal((await api.delete(`/api/v1/auth/sessions/${mine.id}`, { token: elsewhere.token })).status, 204);
  t.equal((await onTwo.waitClose()).code, 4102, 'node 2 closed the socket of the ended session');
  t.equal((await onThree.request({ t: 'ping' })).t, 'pong', 'the other session’s socket on node 3 stays');
  const del = await api.request('DELETE', '/api/v1/auth/me', { password: u.password }, { token: elsewhere.token });
  t.equal(del.status, 204);
  t.equal((await onThree.waitClose()).code, 4102, 'node 3 closed the deleted account’s socket');
});

t.test('contact news and blocks reach every node', async (t) => {
  const [a, b] = await Promise.all([api.signUp(uniqueName('cn')), api.signUp(uniqueName('cn'))]);
  const dm = (await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, { token: a.token })).body.room.id as string;
  const aOnTwo = await open(t, a, n2.url);
  const bOnThree = await open(t, b, n3.url);
  // The room's actor on node 2 is live before the block.
  t.equal((await aOnTwo.request({ t: 'pub', room: dm, cid: `cn-${a.id}`, body: 'hi' })).t, 'ack');
  const heard = bOnThree.next((f) => f.t === 'contact' && f.kind === 'requested' && f.user.id === a.id, 'the request on node 3');
  t.equal((await api.post('/api/v1/contacts/requests', { userId: b.id }, { token: a.token })).status, 201, 'asked through node 1');
  await heard;
  t.equal((await api.request('PUT', `/api/v1/blocks/${a.id}`, undefined, { token: b.token })).status, 204, 'blocked through node 1');
  await aOnTwo.next((f) => f.t === 'contact' && f.kind === 'declined' && f.user.id === b.id, 'the request ends on node 2');
  const nack = await aOnTwo.request({ t: 'pub', room: dm, cid: `cn2-${a.id}`, body: 'still there?' });
  t.match(nack, { t: 'nack', code: 'FORBIDDEN' }, 'the direct room’s actor on node 2 refuses the post');
});
