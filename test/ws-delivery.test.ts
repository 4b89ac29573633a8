// The delivery guarantees of sb.v1 through real sockets with a raw client: one total order per
// room that every subscriber sees (with acks that match it), one sequence shared by REST and
// WebSocket publishes, idempotent publishing by cid under races and across reconnects, gap-free
// resume from the memory tail and from the store, durability of everything acked, and the reauth
// cycle at token expiry.

import type { Test } from 'tap';
import t from 'tap';
import { Api, roomWith as roomWithOn, uniqueName } from './helpers/api.js';
import { startTestHub } from './helpers/hub.js';
import { type ConnectOptions, type Encoding, type Frame, openFor, type RawClient, subscribe } from './helpers/ws.js';

/** Cheap password hashing and no registration/login limits: these tests sign up many users. */
const FAST = { SB_ARGON2_MEMORY_KIB: '8192', SB_ARGON2_TIME_COST: '1', SB_REGISTER_PER_IP_PER_HOUR: '10000', SB_LOGIN_PER_IP_PER_MINUTE: '10000' };
/** These tests publish in volume; the publish rate limit has its own test (ws-protocol). */
const UNLIMITED = { SB_WS_PUBLISH_PER_SECOND: '1000000', SB_WS_PUBLISH_BURST: '1000000' };

type User = Awaited<ReturnType<Api['signUp']>>;
type Client = RawClient & { hello: Frame };

const hub = await startTestHub(t, { env: { ...FAST, ...UNLIMITED } });
const api = new Api(hub.url);

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
const users = (n: number) => Promise.all(Array.from({ length: n }, () => api.signUp(uniqueName('dl'))));
const encodingOf = (i: number): Encoding => (i % 2 === 0 ? 'msgpack' : 'json');

/** A group room owned by the first user, with the others as members. */
const roomWith = (owner: User, ...members: User[]) => roomWithOn(api, owner, ...members);
const open = (t: Test, u: User, opts: ConnectOptions = {}, url = hub.url): Promise<Client> => openFor(t, url, u.token, opts);

const seqs = (fs: Frame[]) => fs.map((f) => f.seq as number);
const msgsOf = (c: RawClient) => c.all('msg');

/**
 * Durability: every acked message is in the store, read back through REST history, with the
 * seq, id, sender, cid, body and timestamp the ack (and delivery) announced.
 */
async function assertDurable(t: Test, u: User, room: string, acks: { seq: number; mid: string; cid: string; ts: number; from: string; body: string }[]) {
  const stored = new Map<number, any>();
  for (let after = 0; ; ) {
    const page = await api.get(`/api/v1/rooms/${room}/messages?after=${after}&limit=200`, { token: u.token });
    if (page.status !== 200) throw new Error(`history: ${page.status} ${page.text}`);
    if (page.body.messages.length === 0) break;
    for (const m of page.body.messages) stored.set(m.seq, m);
    after = page.body.messages.at(-1).seq;
  }
  const missing = acks.filter((a) => {
    const m = stored.get(a.seq);
    return !m || m.id !== a.mid || m.cid !== a.cid || m.senderId !== a.from || m.body !== a.body || Date.parse(m.createdAt) !== a.ts;
  });
  t.same(missing, [], `all ${acks.length} acked messages are stored as acked`);
  t.same([...stored.keys()], range(1, stored.size), 'the stored seqs are contiguous from 1');
}

t.test('ordering: 4 concurrent publishers, 3 subscribers, one order', async (t) => {
  const us = await users(7);
  const room = await roomWith(us[0] as User, ...us.slice(1));
  const pubUsers = us.slice(0, 4);
  const subs = await Promise.all(us.slice(4).map((u, i) => open(t, u, { encoding: encodingOf(i) })));
  for (const s of subs) await subscribe(s, room);
  const pubs = await Promise.all(pubUsers.map((u, i) => open(t, u, { encoding: encodingOf(i + 1) })));

  // Every publisher pipelines its 50 publishes; the four sockets interleave.
  const N = 50;
  const sent = pubs.map(() => [] as { id: number; cid: string; body: string }[]);
  for (let i = 0; i < N; i++) {
    pubs.forEach((p, k) => {
      const frame = { id: p.id(), cid: `p${k}-${i}`, body: `publisher ${k} message ${i}` };
      sent[k]?.push(frame);
      p.send({ t: 'pub', room, ...frame });
    });
  }
  const replies = await Promise.all(pubs.map((p) => p.take((f) => f.t === 'ack' || f.t === 'nack', N, `${N} replies`, 30_000)));
  const delivered = await Promise.all(subs.map((s) => s.take((f) => f.t === 'msg', 4 * N, `${4 * N} deliveries`, 30_000)));

  const reference = delivered[0] as Frame[];
  const joins = us.length - 1; // the first seqs
  t.same(seqs(reference), range(joins + 1, joins + 4 * N), 'contiguous seqs after the joins');
  for (const [i, d] of delivered.entries()) t.same(d, reference, `subscriber ${i} (${encodingOf(i)}) sees the identical order and frames`);
  for (const s of subs) await s.barrier();
  t.same(
    subs.map((s) => msgsOf(s).length),
    [4 * N, 4 * N, 4 * N],
    'no extra deliveries',
  );

  const byCid = new Map(reference.map((m) => [m.cid, m]));
  const acks: Parameters<typeof assertDurable>[3] = [];
  pubs.forEach((_, k) => {
    const rs = replies[k] as Frame[];
    t.same(
      rs.map((r) => r.t),
      Array(N).fill('ack'),
      `publisher ${k}: every publish acked`,
    );
    const mismatched = rs.filter((r) => {
      const m = byCid.get(r.cid);
      return !m || m.seq !== r.seq || m.mid !== r.mid || m.ts !== r.ts || m.from !== pubUsers[k]?.id;
    });
    t.same(mismatched, [], `publisher ${k}: every ack matches the delivered message with its cid`);
    const ordered = (sent[k] ?? []).map((s) => byCid.get(s.cid)?.seq as number);
    t.ok(
      ordered.every((s, i) => i === 0 || s > (ordered[i - 1] as number)),
      `publisher ${k}: its messages keep its send order`,
    );
    for (const r of rs) {
      const m = byCid.get(r.cid) as Frame;
      acks.push({ seq: r.seq, mid: r.mid, cid: r.cid, ts: r.ts, from: m.from, body: m.body });
    }
  });
  await assertDurable(t, us[0] as User, room, acks);
});

t.test('REST and WebSocket publishes share one sequence', async (t) => {
  const [a, b, watcher] = (await users(3)) as [User, User, User];
  const room = await roomWith(a, b, watcher);
  const w = await open(t, watcher);
  await subscribe(w, room);
  const ca = await open(t, a, { encoding: 'json' });

  const wsAcks = Promise.all(range(1, 10).map((i) => ca.request({ t: 'pub', room, cid: `ws-${i}`, body: `ws ${i}` })));
  const rest = Promise.all(range(1, 10).map((i) => api.post(`/api/v1/rooms/${room}/messages`, { cid: `rest-${i}`, body: `rest ${i}` }, { token: b.token })));
  const [acks, posted] = await Promise.all([wsAcks, rest]);
  t.same(
    posted.map((r) => r.status),
    Array(10).fill(201),
  );
  const all = [...acks.map((f) => ({ seq: f.seq, mid: f.mid })), ...posted.map((r) => ({ seq: r.body.message.seq, mid: r.body.message.id }))];
  // Seqs 1 and 2 are the joins.
  t.same(
    all.map((x) => x.seq).sort((x, y) => x - y),
    range(3, 22),
    'concurrent REST and WS publishes got seqs 3..22, each once',
  );
  const seen = await w.take((f) => f.t === 'msg', 20, '20 deliveries');
  t.same(seqs(seen), range(3, 22), 'delivered in seq order');
  t.same(
    Object.fromEntries(seen.map((m) => [m.seq, m.mid])),
    Object.fromEntries(all.map((x) => [x.seq, x.mid])),
    'REST posts are delivered over the socket too',
  );

  const one = await ca.request({ t: 'pub', room, cid: 'ws-after', body: 'x' });
  const two = await api.post(`/api/v1/rooms/${room}/messages`, { cid: 'rest-after', body: 'y' }, { token: b.token });
  const three = await ca.request({ t: 'pub', room, cid: 'ws-after-2', body: 'z' });
  t.same([one.seq, two.body.message.seq, three.seq], [23, 24, 25], 'alternating one at a time');
  const last = await w.take((f) => f.t === 'msg', 3, 'the last three');
  t.same(seqs(last), [23, 24, 25]);
  const durable = [...seen, ...last].map((m) => ({ seq: m.seq, mid: m.mid, cid: m.cid, ts: m.ts, from: m.from, body: m.body }));
  await assertDurable(t, a, room, durable);
});

t.test('idempotency: racing retries of one cid, and a retry after reconnecting', async (t) => {
  const [a, watcher] = (await users(2)) as [User, User];
  const room = await roomWith(a, watcher);
  const w = await open(t, watcher);
  await subscribe(w, room);
  const sockets = [await open(t, a), await open(t, a, { encoding: 'json' })];
  const ids: [RawClient, number][] = [];
  for (let i = 0; i < 20; i++) {
    const c = sockets[i % 2] as RawClient;
    const id = c.id();
    ids.push([c, id]);
    c.send({ t: 'pub', id, room, cid: 'the-one', body: 'exactly once' });
  }
  const replies = await Promise.all(ids.map(([c, id]) => c.next((f) => f.id === id, `reply #${id}`)));
  t.same(
    replies.map((r) => r.t),
    Array(20).fill('ack'),
    'all 20 acked',
  );
  const first = replies.find((r) => !r.dup) as Frame;
  t.equal(replies.filter((r) => !r.dup).length, 1, 'one stored it; 19 were duplicates');
  t.same(
    replies.map((r) => [r.seq, r.mid, r.ts, r.cid]),
    Array(20).fill([2, first.mid, first.ts, 'the-one']), // seq 1: the watcher's join
    'every ack carries the same seq, mid and ts',
  );
  await w.next((f) => f.t === 'msg', 'the delivery');
  await w.barrier();
  t.equal(msgsOf(w).length, 1, 'delivered once');

  for (const c of sockets) await c.close();
  const again = await open(t, a);
  const retry = await again.request({ t: 'pub', room, cid: 'the-one', body: 'exactly once' });
  t.same(retry, { t: 'ack', id: retry.id, cid: 'the-one', seq: 2, mid: first.mid, ts: first.ts, dup: true }, 'a retry after reconnecting');
  const next = await again.request({ t: 'pub', room, cid: 'the-next', body: 'new' });
  t.match(next, { t: 'ack', seq: 3 }, 'the sequence moved on by one');
  t.notOk(next.dup);
  const history = await api.get(`/api/v1/rooms/${room}/messages`, { token: a.token });
  t.same(
    history.body.messages.slice(1).map((m: { seq: number; cid: string }) => [m.seq, m.cid]),
    [
      [2, 'the-one'],
      [3, 'the-next'],
    ],
    'one stored message per cid',
  );
});

/** Publishes continuously (windows of 10 in flight) until stopped; every publish must be acked. */
function publishing(c: RawClient, room: string) {
  const acks: Frame[] = [];
  let stopped = false;
  let wake = () => {};
  const loop = (async () => {
    for (let n = 0; !stopped; ) {
      const ids = range(1, 10).map(() => c.id());
      for (const id of ids) c.send({ t: 'pub', room, id, cid: `live-${++n}`, body: `live message ${n}` });
      const replies = await c.take((f) => ids.includes(f.id), ids.length, 'a window of replies', 30_000);
      const bad = replies.find((r) => r.t !== 'ack');
      if (bad) throw new Error(`publish failed: ${JSON.stringify(bad)}`);
      acks.push(...replies);
      wake();
    }
  })();
  const lastSeq = () => acks.reduce((m, a) => Math.max(m, a.seq), 0);
  return {
    acks,
    lastSeq,
    /** Resolves once a publish with at least this seq was acked. */
    reached: (seq: number) =>
      Promise.race([
        loop.then(() => Promise.reject(new Error('publishing stopped early'))),
        new Promise<void>((resolve) => {
          wake = () => lastSeq() >= seq && resolve();
          wake();
        }),
      ]),
    stop: async () => {
      stopped = true;
      await loop;
      return lastSeq();
    },
  };
}

async function resume(t: Test, away: number) {
  const [pubUser, subUser] = (await users(2)) as [User, User];
  const room = await roomWith(pubUser, subUser);
  const first = await open(t, subUser);
  await subscribe(first, room);
  const pub = publishing(await open(t, pubUser, { encoding: 'json' }), room);

  await first.take((f) => f.t === 'msg', 30, 'some messages before going away');
  await first.close();
  const before = msgsOf(first);
  const lastSeen = before.at(-1)?.seq as number;
  // Seq 1 is subUser's join.
  t.same(seqs(before), range(2, lastSeen), `read 2..${lastSeen}, then closed`);

  await pub.reached(lastSeen + away);
  const second = await open(t, subUser, { encoding: 'json' });
  const subscribed = await subscribe(second, room, lastSeen);
  const behind = subscribed.seq - lastSeen;
  t.ok(behind >= away, `resumed ${behind} messages back`);
  if (away < 512) t.ok(behind < 512, 'inside the 512-message memory tail');
  await second.next((f) => f.t === 'msg' && f.seq > subscribed.seq + 20, 'live messages after resuming', 30_000);
  t.ok(pub.lastSeq() > subscribed.seq, 'publishing went on during the resume');
  const final = await pub.stop();
  await second.next((f) => f.t === 'msg' && f.seq === final, `the last message (${final})`, 30_000);
  await second.barrier();

  const after = msgsOf(second);
  t.same(seqs(after), range(lastSeen + 1, final), `after resuming: ${lastSeen + 1}..${final}, each once, in order`);
  const pos = second.frames.indexOf(second.all('subscribed')[0] as Frame);
  const replayed = second.frames.slice(0, pos).filter((f) => f.t === 'msg');
  t.same(seqs(replayed), range(lastSeen + 1, subscribed.seq), 'the replay precedes `subscribed`; the live ones follow it');
  t.same(seqs([...before, ...after]), range(2, final), 'both sockets together: every seq exactly once');
  const acked = new Map(pub.acks.map((a) => [a.seq, a]));
  t.equal(pub.acks.length, final - 1, 'one ack per message');
  t.same(
    after.filter((m) => acked.get(m.seq)?.mid !== m.mid || m.from !== pubUser.id),
    [],
    'replayed and live frames match the acks',
  );
  await assertDurable(
    t,
    subUser,
    room,
    [...before, ...after].map((m) => ({ seq: m.seq, mid: m.mid, cid: m.cid, ts: m.ts, from: m.from, body: m.body })),
  );
}

t.test('resume from the memory tail while publishing goes on', (t) => resume(t, 100));
t.test('resume from the store (more than 512 back) while publishing goes on', (t) => resume(t, 600));

t.test('reauth at token expiry: answered stays open, unanswered is closed with 4100', async (t) => {
  const short = await startTestHub(t, { env: { ...FAST, SB_ACCESS_TOKEN_TTL_S: '5', SB_REAUTH_GRACE_MS: '1000' } });
  const sapi = new Api(short.url);
  const u = await sapi.signUp(uniqueName('re'));
  // Both sockets use the same token: same expiry, same reauth deadline.
  const answering = await open(t, u, {}, short.url);
  const silent = await open(t, u, { encoding: 'json' }, short.url);
  const exp = answering.hello.exp as number;
  t.equal(silent.hello.exp, exp);
  t.ok(exp - Date.now() <= 5_000, 'the token expires within its 5 s TTL');

  const reauth = await answering.next((f) => f.t === 'reauth', 'reauth', 15_000);
  const at = Date.now();
  t.ok(at >= exp - 50, `reauth arrives at expiry (${at - exp} ms after)`);
  t.same(Object.keys(reauth).sort(), ['deadline', 't']);
  t.ok(reauth.deadline >= exp + 1_000 - 50 && reauth.deadline <= at + 1_000 + 50, 'deadline: the grace period after expiry');
  const login = await sapi.post('/api/v1/auth/login', { username: u.username, password: u.password });
  t.equal(login.status, 200);
  t.match(await answering.request({ t: 'auth', token: login.body.accessToken }), { t: 'ok' });

  const silentReauth = await silent.next((f) => f.t === 'reauth', 'reauth (silent)', 15_000);
  const closed = await silent.waitClose(15_000);
  const closedAt = Date.now();
  t.same(closed, { code: 4100, reason: 'access token expired' }, 'no auth: closed with 4100');
  t.ok(closedAt >= silentReauth.deadline - 50, 'not before the deadline');

  await answering.barrier();
  t.equal(answering.closeInfo, undefined, 'the answering socket is open past the deadline');
  const freshExp = JSON.parse(Buffer.from(login.body.accessToken.split('.')[1], 'base64url').toString()).exp * 1000;
  const second = await answering.next((f) => f.t === 'reauth', 'the next reauth, at the fresh token’s expiry', 15_000);
  t.ok(Date.now() >= freshExp - 50, 'the fresh token’s expiry was adopted');
  t.ok(second.deadline > reauth.deadline);
});

t.test('re-subscribing with since on a live subscription: no repeats, no interleaving', async (t) => {
  const [a, b] = (await users(2)) as [User, User];
  const room = await roomWith(a, b);
  const writer = await open(t, a);
  const reader = await open(t, b);
  for (let i = 1; i <= 50; i++) writer.send({ t: 'pub', id: writer.id(), room, cid: `pre-${i}`, body: `m${i}` });
  await writer.take((f) => f.t === 'ack', 50, 'first acks');
  await subscribe(reader, room);
  // Publishing goes on while the reader re-subscribes from seq 10 on its live subscription.
  for (let i = 51; i <= 150; i++) writer.send({ t: 'pub', id: writer.id(), room, cid: `live-${i}`, body: `m${i}` });
  await subscribe(reader, room, 10);
  await writer.take((f) => f.t === 'ack', 100, 'the other acks');
  await reader.take((f) => f.t === 'msg' && f.seq === 151, 1, 'the last message');
  const got = seqs(msgsOf(reader));
  const after = got.slice(got.indexOf(11));
  t.same(after, range(11, 151), 'from the resume point: every seq once, in order (seq 1 was b joining)');
});

t.test('a sub whose replay is cut short by unsub still gets exactly one reply', async (t) => {
  const [a, b] = (await users(2)) as [User, User];
  const room = await roomWith(a, b);
  const writer = await open(t, a);
  for (let i = 1; i <= 700; i++) writer.send({ t: 'pub', id: writer.id(), room, cid: `c-${i}`, body: `m${i} ${'x'.repeat(200)}` });
  await writer.take((f) => f.t === 'ack', 700, 'acks');
  const reader = await open(t, b);
  const subId = reader.id();
  reader.send({ t: 'sub', id: subId, room, since: 0 });
  const unsub = await reader.request({ t: 'unsub', room });
  t.same(unsub, { t: 'ok', id: unsub.id });
  const reply = await reader.next((f) => f.id === subId, 'the reply to the sub');
  t.ok(reply.t === 'subscribed' || (reply.t === 'error' && reply.code === 'CANCELLED'), `sub answered: ${reply.t} ${reply.code ?? ''}`);
  await reader.barrier();
  t.equal(reader.all('error').filter((f) => f.id === subId).length + reader.all('subscribed').length, 1, 'one reply, not two');
});

t.test('a direct room does not exist for non-members, over WebSocket as over REST', async (t) => {
  const [a, b, c] = (await users(3)) as [User, User, User];
  const direct = await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, { token: a.token });
  const stranger = await open(t, c);
  for (const frame of [
    { t: 'sub', room: direct.body.room.id },
    { t: 'typing', room: direct.body.room.id },
  ]) {
    t.match(await stranger.request(frame), { t: 'error', code: 'NOT_FOUND' }, `${frame.t} → NOT_FOUND`);
  }
  t.match(await stranger.request({ t: 'pub', room: direct.body.room.id, cid: 'x', body: 'hi' }), { t: 'nack', code: 'NOT_FOUND' });
});
