// Membership across the nodes of a cluster (real NATS, one PostgreSQL, in-process nodes): a change
// made through one node holds on every other node by the time its reply is sent, even where the
// room is already active with its members cached. Grants: a miss in a room actor's cache re-checks
// the store before refusing. Removals: the durable write itself checks the sender's membership (the
// store is the truth), and a cluster-wide notice ends live subscriptions on the other nodes.
// And publishers of one room on two nodes contend without any UNAVAILABLE nack.

import type { Test } from 'tap';
import t from 'tap';
import { type Api, Api as ApiClient, roomWith as roomWithOn, storedMessages, uniqueName } from './helpers/api.js';
import { startCluster } from './helpers/cluster.js';
import { listed, obedient, robotCluster } from './helpers/cluster-robots.js';
import { FAST, startTestHub, UNLIMITED } from './helpers/hub.js';
import { type Frame, openFor, type RawClient, subscribe } from './helpers/ws.js';

const cluster = await startCluster(t, 2, { ...FAST, ...UNLIMITED });
const [n1, n2] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
const [api1, api2] = cluster.apis as [Api, Api];
type User = Awaited<ReturnType<Api['signUp']>>;
type Client = RawClient & { hello: Frame };

const open = (t: Test, u: User, url: string): Promise<Client> => openFor(t, url, u.token);
const signUp = () => api1.signUp(uniqueName('cm'));

let cids = 0;
const pub = (c: Client, room: string, body = 'hello') => c.request({ t: 'pub', room, cid: `c${++cids}`, body });

/** A room owned by `owner`, made active on node 1: the owner is subscribed there and has published once. */
async function activeOnNode1(t: Test, owner: User): Promise<{ room: string; ownerOn1: Client }> {
  const room = await roomWithOn(api1, owner);
  const ownerOn1 = await open(t, owner, n1.url);
  await subscribe(ownerOn1, room);
  t.equal((await pub(ownerOn1, room, 'warm')).t, 'ack', 'the room is active on node 1');
  return { room, ownerOn1 };
}

t.test('#1 join through node 2, then at once sub, pub and REST post on node 1 where the room is active', async (t) => {
  const [a, b] = await Promise.all([signUp(), signUp()]);
  const { room, ownerOn1 } = await activeOnNode1(t, a);
  const joined = await api2.post(`/api/v1/rooms/${room}/join`, undefined, { token: b.token });
  t.equal(joined.status, 200, 'joined through node 2');

  const bOn1 = await open(t, b, n1.url);
  const sub = await bOn1.request({ t: 'sub', room });
  t.equal(sub.t, 'subscribed', `sub on node 1 is accepted (${JSON.stringify(sub)})`);
  const ack = await pub(bOn1, room, 'from b over ws');
  t.equal(ack.t, 'ack', `pub on node 1 is acked (${JSON.stringify(ack)})`);
  const typing = await bOn1.request({ t: 'typing', room });
  t.equal(typing.t, 'ok', 'typing on node 1 is accepted');
  const rest = await api1.post(`/api/v1/rooms/${room}/messages`, { cid: `r${++cids}`, body: 'from b over rest' }, { token: b.token });
  t.equal(rest.status, 201, `REST post on node 1 is accepted (${rest.text})`);
  const seen = await ownerOn1.take((f) => f.t === 'msg' && f.room === room && f.from === b.id, 2, "b's messages on node 1");
  t.same(
    seen.map((f) => f.body),
    ['from b over ws', 'from b over rest'],
    "the owner on node 1 receives b's messages",
  );
  await ownerOn1.next((f) => f.t === 'event' && f.kind === 'member_joined' && f.user?.id === b.id, 'member_joined on node 1');
});

t.test('#1 leave through node 2: publishing on node 1 is refused at once and the subscription there ends', async (t) => {
  const [a, b] = await Promise.all([signUp(), signUp()]);
  const room = await roomWithOn(api1, a, b);
  const { ownerOn1 } = await (async () => {
    const ownerOn1 = await open(t, a, n1.url);
    await subscribe(ownerOn1, room);
    return { ownerOn1 };
  })();
  const bOn1 = await open(t, b, n1.url);
  await subscribe(bOn1, room);
  t.equal((await pub(bOn1, room, 'before leaving')).t, 'ack', "b publishes on node 1 (node 1's actor caches b as a member)");

  const left = await api2.post(`/api/v1/rooms/${room}/leave`, undefined, { token: b.token });
  t.equal(left.status, 204, 'left through node 2');
  const nack = await pub(bOn1, room, 'after leaving');
  t.equal(nack.t, 'nack', `a pub on node 1 after the leave returned is refused (${JSON.stringify(nack)})`);
  t.equal(nack.code, 'NOT_MEMBER');
  const rest = await api1.post(`/api/v1/rooms/${room}/messages`, { cid: `r${++cids}`, body: 'rest after leaving' }, { token: b.token });
  t.equal(rest.status, 403, 'a REST post on node 1 is refused');
  await ownerOn1.next((f) => f.t === 'event' && f.kind === 'member_left' && f.user?.id === b.id, 'member_left on node 1');
  // The notice ends b's live subscription on node 1: the owner's next message does not reach b.
  t.equal((await pub(ownerOn1, room, 'after b left')).t, 'ack');
  await ownerOn1.next((f) => f.t === 'msg' && f.body === 'after b left', 'the owner sees its message');
  await bOn1.barrier();
  t.notOk(
    bOn1.all('msg').some((f) => f.body === 'after b left'),
    'b, no longer a member, does not receive it on node 1',
  );
  const stored = await storedMessages(api1, room, a.token);
  t.notOk(
    stored.some((m) => (m as { body?: string }).body?.includes('after leaving')),
    'nothing b sent after leaving was stored',
  );
});

t.test('#1 a room deleted through node 2 is gone on node 1 where it is active', async (t) => {
  const [a, b] = await Promise.all([signUp(), signUp()]);
  const room = await roomWithOn(api1, a, b);
  const bOn1 = await open(t, b, n1.url);
  await subscribe(bOn1, room);
  t.equal((await pub(bOn1, room, 'before delete')).t, 'ack');
  const del = await api2.delete(`/api/v1/rooms/${room}`, { token: a.token });
  t.equal(del.status, 204, 'deleted through node 2');
  const nack = await pub(bOn1, room, 'after delete');
  t.equal(nack.t, 'nack', `a pub on node 1 after the delete returned is refused (${JSON.stringify(nack)})`);
  t.equal(nack.code, 'NOT_FOUND');
  await bOn1.next((f) => f.t === 'event' && f.kind === 'room_deleted' && f.room === room, 'room_deleted on node 1');
  const sub = await bOn1.request({ t: 'sub', room });
  t.equal(sub.code, 'NOT_FOUND', 'a new sub on node 1 is refused');
});

t.test('#1 failover: a client that joined through node 2 resumes on node 1 after node 2 is gone', async (t) => {
  const [a, b] = await Promise.all([signUp(), signUp()]);
  const { room, ownerOn1 } = await activeOnNode1(t, a);
  const three = await cluster.add();
  const api3 = cluster.apis[2] as Api;
  t.equal((await api3.post(`/api/v1/rooms/${room}/join`, undefined, { token: b.token })).status, 200, 'b joins through node 3');
  const bOn3 = await open(t, b, three.url);
  const subbed = await subscribe(bOn3, room);
  t.equal((await pub(bOn3, room, 'from node 3')).t, 'ack');
  await three.close();
  await bOn3.waitClose();
  const bOn1 = await open(t, b, n1.url);
  const resumed = await bOn1.request({ t: 'sub', room, since: subbed.seq });
  t.equal(resumed.t, 'subscribed', `b resumes on node 1 (${JSON.stringify(resumed)})`);
  t.equal((await pub(bOn1, room, 'from node 1')).t, 'ack', 'and publishes there');
  await ownerOn1.next((f) => f.t === 'msg' && f.body === 'from node 1', "the owner receives b's message");
});

t.test("#1 a robot grant through node 2 works at once on node 1, where the robot's actor is active", async (t) => {
  const rc = await robotCluster(t, 2);
  const [r1, r2] = rc.nodes as [(typeof rc.nodes)[0], (typeof rc.nodes)[0]];
  const [ra1, ra2] = rc.apis as [Api, Api];
  const [owner, viewer, other] = await Promise.all([rc.signUp('own'), rc.signUp('view'), rc.signUp('other')]);
  const r = await rc.enroll(owner);
  const robot = await rc.attach(r1, r);
  const obeyed = obedient(robot);
  await listed(ra1, r, owner);
  const ownerOn1 = await rc.user(r1, owner);
  t.match(
    await ownerOn1.request({ t: 'watch', robot: r.id }),
    { t: 'watching', role: 'owner' },
    "the owner watches on node 1: its actor caches the robot's grants",
  );
  const viewerOn1 = await rc.user(r1, viewer);
  t.match(await viewerOn1.request({ t: 'watch', robot: r.id }), { t: 'error', code: 'NOT_FOUND' }, 'no grant yet: the robot is hidden');
  const granted = await ra2.request('PUT', `/api/v1/robots/${r.id}/grants/${viewer.id}`, { role: 'viewer' }, { token: owner.token });
  t.equal(granted.status, 200, 'granted through node 2');
  t.match(await viewerOn1.request({ t: 'watch', robot: r.id }), { t: 'watching', role: 'viewer' }, 'the new viewer watches on node 1 at once');

  // A grant whose cluster notice never arrives (written to the store on node 2 with no announcement):
  // node 1's actor re-reads the grants on the miss instead of refusing.
  const otherOn1 = await rc.user(r1, other);
  t.equal(await r2.store.robots.grant(r.id, other.id, 'operator'), true);
  t.match(await otherOn1.request({ t: 'watch', robot: r.id }), { t: 'watching', role: 'operator' }, 'a grant whose notice was lost works on node 1 too');
  t.match(await otherOn1.request({ t: 'lease', robot: r.id, op: 'acquire', ttlMs: 60_000 }), { t: 'leased' }, 'the operator takes the lease');
  t.match(await otherOn1.request({ t: 'cmd', robot: r.id, name: 'first' }), { t: 'queued' }, 'and commands');
  // Revoked the same way: node 1's actor still caches the grant and the lease, and the audit write
  // (which checks the role in the store) refuses the command before it reaches the robot.
  t.equal(await r2.store.robots.revokeGrant(r.id, other.id), true);
  t.match(
    await otherOn1.request({ t: 'cmd', robot: r.id, name: 'after revocation' }),
    { t: 'error', code: 'FORBIDDEN' },
    'a revocation whose notice was lost: the command is refused',
  );
  await otherOn1.next((f) => f.t === 'robot' && f.kind === 'access_revoked', 'the refusal ends the watch');
  await ownerOn1.barrier();
  t.notOk(obeyed.includes('after revocation'), 'the robot never got it');
});

t.test('#1 the store is the truth when a membership notice is lost', async (t) => {
  const [a, b] = await Promise.all([signUp(), signUp()]);
  const { room, ownerOn1 } = await activeOnNode1(t, a);
  const bOn1 = await open(t, b, n1.url);
  // Written on node 2 with no notice to the cluster: node 1's cache misses and asks the store.
  t.ok(await n2.store.rooms.join(room, b), 'joined (its event written, not announced)');
  t.equal((await pub(bOn1, room, 'joined quietly')).t, 'ack', 'a join whose notice was lost: pub on node 1 is acked');
  t.equal((await bOn1.request({ t: 'sub', room })).t, 'subscribed', 'and sub is accepted');
  // Removed the same way: node 1 still caches b as a member, and the commit refuses b.
  t.ok(await n2.store.rooms.remove(room, b, b.id), 'left');
  const nack = await pub(bOn1, room, 'left quietly');
  t.match(nack, { t: 'nack', code: 'NOT_MEMBER' }, 'a leave whose notice was lost: pub on node 1 is refused');
  t.equal((await pub(ownerOn1, room, 'still open to members')).t, 'ack', 'the members still publish');
  await ownerOn1.next((f) => f.t === 'msg' && f.body === 'still open to members', 'the owner sees its message');
  await bOn1.barrier();
  t.notOk(
    bOn1.all('msg').some((f) => f.body === 'still open to members'),
    "the refusal ended b's subscription on node 1",
  );
  t.notOk(
    (await storedMessages(api1, room, a.token)).some((m) => (m as { body?: string }).body === 'left quietly'),
    'nothing b sent after leaving was stored',
  );
  // Deleted the same way: a non-member's miss finds no room, and a member's commit finds none.
  t.ok(await n2.store.rooms.delete(room));
  t.match(await bOn1.request({ t: 'sub', room }), { t: 'error', code: 'NOT_FOUND' }, 'a deletion whose notice was lost: sub on node 1 is refused');
  await ownerOn1.next((f) => f.t === 'event' && f.kind === 'room_deleted', 'room_deleted for the subscribers on node 1');
  t.match(await pub(ownerOn1, room, 'into the void'), { t: 'nack', code: 'NOT_FOUND' }, "and the owner's pub too");
});

t.test('#1 one node with the in-process bus and the embedded database: the store is the truth there too', async (t) => {
  const hub = await startTestHub(t, { embedded: true, env: { ...FAST } });
  const api = new ApiClient(hub.url);
  const [a, b] = await Promise.all([api.signUp(uniqueName('em')), api.signUp(uniqueName('em'))]);
  const room = await roomWithOn(api, a);
  const aWs = await open(t, a, hub.url);
  await subscribe(aWs, room);
  t.equal((await pub(aWs, room, 'warm')).t, 'ack', 'the room is active');
  const bWs = await open(t, b, hub.url);
  // Changes written past the service (no notice to the actor): the cache miss and the commit decide.
  t.ok(await hub.store.rooms.join(room, b), 'joined');
  t.equal((await pub(bWs, room, 'joined quietly')).t, 'ack', "a join the actor was not told of: b's pub is acked");
  t.ok(await hub.store.rooms.remove(room, b, b.id), 'left');
  t.match(await pub(bWs, room, 'left quietly'), { t: 'nack', code: 'NOT_MEMBER' }, "a leave the actor was not told of: b's pub is refused");
  t.ok(await hub.store.rooms.delete(room));
  t.match(await pub(aWs, room, 'gone'), { t: 'nack', code: 'NOT_FOUND' }, 'a deletion the actor was not told of: the pub is refused');
  await aWs.next((f) => f.t === 'event' && f.kind === 'room_deleted', 'room_deleted for the subscriber');
});

t.test('#4 publishers of one room on two nodes contend: every publish is acked, none UNAVAILABLE', async (t) => {
  // Three publishers per node, each sending its next message when the previous one is answered:
  // small batches committed from both nodes at once, all the time (the case that used to exhaust
  // the sequencer's retries and nack UNAVAILABLE).
  const people = await Promise.all(Array.from({ length: 6 }, () => signUp()));
  const room = await roomWithOn(api1, people[0] as User, ...people.slice(1));
  const clients = await Promise.all(people.map((u, i) => open(t, u, i % 2 === 0 ? n1.url : n2.url)));
  const watchers = [clients[0] as Client, clients[1] as Client];
  for (const c of watchers) await subscribe(c, room);
  const PER = 30;
  const total = clients.length * PER;
  const replies = await Promise.all(
    clients.map(async (c, i) => {
      const got: Frame[] = [];
      for (let k = 0; k < PER; k++) got.push(await c.request({ t: 'pub', room, cid: `k${i}-${k}`, body: `client ${i} #${k}` }, 20_000));
      return got;
    }),
  );
  const flat = replies.flat();
  t.same(
    flat.filter((f) => f.t !== 'ack').map((f) => f.code),
    [],
    'no nack at all (in particular no UNAVAILABLE)',
  );
  const joins = people.length - 1; // the first seqs
  const seqs = Array.from({ length: total }, (_, i) => joins + i + 1);
  t.same(
    flat.map((f) => f.seq as number).sort((x, y) => x - y),
    seqs,
    'the acks hold the N seqs after the joins, each once',
  );
  for (const [i, c] of watchers.entries()) {
    const s = await c.take((f) => f.t === 'msg' && f.room === room, total, 'every message', 20_000);
    t.same(
      s.map((f) => f.seq),
      seqs,
      `the subscriber on node ${i + 1} gets every seq once, in order`,
    );
  }
});

t.test('#1 a removal, a ban and a deleted message through node 2 reach node 1 in the room order; the ban holds there at once', async (t) => {
  const [a, b] = await Promise.all([signUp(), signUp()]);
  const { room, ownerOn1 } = await activeOnNode1(t, a);
  t.equal((await api2.post(`/api/v1/rooms/${room}/join`, undefined, { token: b.token })).status, 200);
  const bOn1 = await open(t, b, n1.url);
  await subscribe(bOn1, room);
  const posted = await pub(bOn1, room, 'about to go');
  t.equal((await api2.delete(`/api/v1/rooms/${room}/messages/${posted.seq}`, { token: a.token })).status, 204, 'deleted through node 2');
  t.equal((await api2.request('PUT', `/api/v1/rooms/${room}/bans/${b.id}`, undefined, { token: a.token })).status, 204, 'banned through node 2');
  const kinds = (await ownerOn1.take((f) => f.t === 'event' && f.seq > posted.seq, 2, 'the events on node 1')).map((f) => [f.kind, f.seq]);
  t.same(kinds, [
    ['message_deleted', posted.seq + 1],
    ['member_banned', posted.seq + 2],
  ]);
  await bOn1.next((f) => f.t === 'event' && f.kind === 'member_banned', 'b hears its ban on node 1');
  t.match(await pub(bOn1, room, 'still here?'), { t: 'nack', code: 'NOT_MEMBER' }, 'and cannot post there');
  t.equal((await api1.post(`/api/v1/rooms/${room}/join`, undefined, { token: b.token })).body.error.code, 'BANNED', 'nor rejoin through node 1');
  const late = await open(t, a, n1.url);
  await subscribe(late, room, posted.seq - 1);
  t.match(
    await late.next((f) => f.seq === posted.seq, 'the replayed tombstone'),
    { t: 'msg', body: '', deleted: true },
    'a resume on node 1 replays the tombstone',
  );
});

t.test('#1 an admin disables an account through node 2: its socket on node 1 closes with 4103, its token is refused there', async (t) => {
  const [boss, u] = await Promise.all([signUp(), signUp()]);
  await n1.store.users.makeAdmin(boss.username);
  const adminToken = (await api2.post('/api/v1/auth/login', { username: boss.username, password: boss.password })).body.accessToken;
  const onNode1 = await open(t, u, n1.url);
  t.equal((await api2.post(`/api/v1/admin/users/${u.id}/disable`, undefined, { token: adminToken })).status, 200, 'disabled through node 2');
  t.equal((await onNode1.waitClose()).code, 4103, 'the socket on node 1 closes with 4103');
  t.equal((await api1.get('/api/v1/auth/me', { token: u.token })).body.error.code, 'ACCOUNT_DISABLED', 'node 1 refuses its token');
  t.equal((await api2.post(`/api/v1/admin/users/${u.id}/enable`, undefined, { token: adminToken })).status, 200, 'enabled again');
  const again = await api1.post('/api/v1/auth/login', { username: u.username, password: u.password });
  t.equal(again.status, 200, 'it logs in through node 1');
  t.ok((await openFor(t, n1.url, again.body.accessToken)).hello, 'and connects to node 1 at once');
});

t.test('#1 a read marker moved through node 2: the other device on node 1 hears it, and node 1 counts from it', async (t) => {
  const [a, b] = await Promise.all([signUp(), signUp()]);
  const room = await roomWithOn(api1, a, b);
  for (let i = 0; i < 3; i++) await api1.post(`/api/v1/rooms/${room}/messages`, { cid: `rd${++cids}`, body: `m${i}` }, { token: a.token });
  const unread = async () =>
    ((await api1.get('/api/v1/rooms?scope=mine', { token: b.token })).body.rooms as { id: string; unread: number }[]).find((r) => r.id === room)?.unread;
  t.equal(await unread(), 3, 'three unread, seen from node 1');
  const phone = await open(t, b, n1.url);
  const moved = await api2.request('PUT', `/api/v1/rooms/${room}/read`, { seq: 3 }, { token: b.token });
  t.equal(moved.status, 200, 'read up to seq 3 through node 2');
  t.match(await phone.next((f) => f.t === 'read', 'the read frame on node 1'), { t: 'read', room, seq: 3, n: Number });
  t.equal(await unread(), 1, 'node 1 counts one unread, within one round trip');
});
