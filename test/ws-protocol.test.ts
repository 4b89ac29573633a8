// The sb.v1 WebSocket protocol through real sockets, with a raw client speaking plain frames (no
// SDK), in both encodings: upgrade authentication, `hello`, every request and its one reply,
// deliveries, presence and room events, every error path (answered, with the request id when the
// frame had one), the limits (message size, publish rate, subscriptions, violations, frame size),
// and a hub that keeps serving after all of it.

import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import { AccessTokens } from '../src/auth/access-tokens.js';
import { loadSigningKey } from '../src/auth/keys.js';
import { Api, uniqueName } from './helpers/api.js';
import { startTestHub, tempDir } from './helpers/hub.js';
import { type ConnectOptions, connect, ENCODINGS, type Frame, pack, type RawClient, refusedUpgrade } from './helpers/ws.js';

/** Cheap password hashing and no registration/login limits: these tests sign up many users. */
const FAST = { SB_ARGON2_MEMORY_KIB: '8192', SB_ARGON2_TIME_COST: '1', SB_REGISTER_PER_IP_PER_HOUR: '10000', SB_LOGIN_PER_IP_PER_MINUTE: '10000' };

type User = Awaited<ReturnType<Api['signUp']>>;
type Client = RawClient & { hello: Frame };

const dataDir = await tempDir(t);
const hub = await startTestHub(t, { env: FAST, dataDir });
const api = new Api(hub.url);

const users = (n: number) => Promise.all(Array.from({ length: n }, () => api.signUp(uniqueName('ws'))));
const jwtPayload = (token: string) => JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8'));

async function createGroup(owner: User, ...members: User[]): Promise<string> {
  const r = await api.post('/api/v1/rooms', { kind: 'group', name: `room ${randomUUID()}` }, { token: owner.token });
  if (r.status !== 201) throw new Error(`create room: ${r.status} ${r.text}`);
  for (const m of members) {
    const j = await api.post(`/api/v1/rooms/${r.body.room.id}/join`, undefined, { token: m.token });
    if (j.status !== 200) throw new Error(`join: ${j.status} ${j.text}`);
  }
  return r.body.room.id;
}

/** Opens a socket for the test (closed at its end) and waits for `hello`. */
async function open(t: Test, url: string, opts: ConnectOptions): Promise<Client> {
  const c = await connect(url, opts);
  t.teardown(() => c.ws.terminate());
  return c;
}

function isError(t: Test, f: Frame, code: string, id: number | null, what = code): void {
  t.same(Object.keys(f).sort(), ['code', 'id', 'message', 't'], `${what}: an error frame`);
  t.match(f, { t: 'error', code, id, message: /./ }, `${what}: ${code}, id ${id}`);
}

function isNack(t: Test, f: Frame, code: string, id: number, cid: string): void {
  // RATE_LIMITED says when a retry will be accepted.
  const keys = ['cid', 'code', 'id', 'message', ...(code === 'RATE_LIMITED' ? ['retryAfterMs'] : []), 't'];
  t.same(Object.keys(f).sort(), keys, `nack ${code}: a nack frame`);
  t.match(f, { t: 'nack', code, id, cid, message: /./ }, `nack ${code}, id ${id}, cid ${cid}`);
}

/** Sends a request; it must be answered (by id) with an error, or for `pub` a nack. */
async function fails(t: Test, c: RawClient, frame: Record<string, unknown>, code: string, what: string): Promise<void> {
  const f = await c.request(frame);
  if (frame.t === 'pub') isNack(t, f, code, f.id, frame.cid as string);
  else isError(t, f, code, f.id, what);
}

const MAX_MESSAGE_BYTES = 16_384;

for (const encoding of ENCODINGS) {
  const as = (u: User, extra: ConnectOptions = {}) => ({ encoding, token: u.token, ...extra });

  t.test(`${encoding}: upgrade authentication`, async (t) => {
    const [u] = (await users(1)) as [User];
    const refused = async (opts: ConnectOptions, status: number, code: string, what: string) => {
      const r = await refusedUpgrade(hub.url, { encoding, ...opts });
      t.equal(r.status, status, `${what}: ${status}`);
      t.equal(r.body?.error?.code, code, `${what}: ${code}`);
    };
    await refused({ token: u.token, protocols: [] }, 400, 'VALIDATION', 'no subprotocol');
    await refused({ token: u.token, protocols: ['sb.v2.msgpack'] }, 400, 'VALIDATION', 'an unknown subprotocol');
    await refused({}, 401, 'UNAUTHENTICATED', 'no token');
    await refused({ token: 'not.a.jwt' }, 401, 'TOKEN_INVALID', 'a bad token');
    await refused({ token: `${u.token.slice(0, -4)}AAAA` }, 401, 'TOKEN_INVALID', 'a token with a bad signature');
    const key = await loadSigningKey({ keyFile: undefined, dataDir });
    const expired = await new AccessTokens(key, -60).issue({ id: u.id, username: u.username, isAdmin: false }, randomUUID());
    await refused({ token: expired.token }, 401, 'TOKEN_EXPIRED', 'an expired token');
    await refused({ queryToken: expired.token }, 401, 'TOKEN_EXPIRED', 'an expired ?token=');

    const viaHeader = await open(t, hub.url, as(u));
    t.equal(viaHeader.ws.protocol, `sb.v1.${encoding}`, 'the server selects the offered subprotocol');
    t.match(viaHeader.hello.user, { id: u.id, username: u.username }, 'Authorization header');
    const both = await open(t, hub.url, { encoding, token: u.token, protocols: ['chat', `sb.v1.${encoding}`] });
    t.equal(both.ws.protocol, `sb.v1.${encoding}`, 'picked among several offered');
    const viaQuery = await open(t, hub.url, { encoding, queryToken: u.token });
    t.match(viaQuery.hello.user, { id: u.id }, '?token= query');

    const login = await api.post('/api/v1/auth/login', { username: u.username, password: u.password, cookie: true });
    t.equal(login.status, 200);
    const access = login.headers
      .getSetCookie()
      .map((c) => /^sb_access=([^;]+)/.exec(c)?.[1])
      .find(Boolean);
    t.ok(access, 'the login set sb_access');
    const cookie = `sb_access=${access}`;
    t.match((await open(t, hub.url, { encoding, cookie })).hello.user, { id: u.id }, 'sb_access cookie');
    const sameHost = await open(t, hub.url, { encoding, cookie, origin: hub.url });
    t.match(sameHost.hello.user, { id: u.id }, 'cookie socket from the same origin');
    await refused({ cookie, origin: 'https://evil.example' }, 403, 'FORBIDDEN', 'cookie socket from a foreign origin');
    const bearerForeign = await open(t, hub.url, as(u, { origin: 'https://evil.example' }));
    t.match(bearerForeign.hello.user, { id: u.id }, 'a bearer token needs no origin check (not ambient)');
  });

  t.test(`${encoding}: hello`, async (t) => {
    const [u] = (await users(1)) as [User];
    const c = await open(t, hub.url, as(u));
    const h = c.hello;
    t.same(Object.keys(h).sort(), ['exp', 'limits', 'node', 'session', 't', 'user', 'v']);
    t.equal(h.v, 'sb.v1');
    t.equal(h.node, hub.nodeId);
    t.match(h.session, /^[A-Za-z0-9_-]{8,}$/);
    t.same(h.user, { id: u.id, username: u.username });
    t.equal(h.exp, jwtPayload(u.token).exp * 1000, 'exp is the token expiry, ms');
    t.same(h.limits, {
      maxFrameBytes: 65_536,
      maxMessageBytes: MAX_MESSAGE_BYTES,
      maxSubscriptions: 200,
      publishPerSecond: 50,
      publishBurst: 100,
      maxConnectionsPerUser: 32,
      maxConnectionsPerIp: 256,
      requestsPerSecond: 50,
      reauthGraceMs: 30_000,
      maxResumeMessages: 10_000,
      idleTimeoutS: 120,
      maxViolations: 10,
      violationWindowMs: 60_000,
    });
    const other = await open(t, hub.url, as(u));
    t.not(other.hello.session, h.session, 'each connection is its own session');
    t.same(c.frames, [h], 'nothing but hello until asked');
  });

  t.test(`${encoding}: sub, pub, ack, msg, dedup, hist`, async (t) => {
    const [a, b] = (await users(2)) as [User, User];
    const room = await createGroup(a, b);
    const ca = await open(t, hub.url, as(a));
    const cb = await open(t, hub.url, as(b));

    const subA = await ca.request({ t: 'sub', room });
    t.same(subA, { t: 'subscribed', id: subA.id, room, seq: 1 }, 'subscribed at the room’s latest seq (b joining was seq 1)');
    t.same(await ca.next((f) => f.t === 'presence', 'snapshot'), { t: 'presence', room, op: 'snapshot', users: [{ id: a.id, username: a.username }] });
    await cb.request({ t: 'sub', room });

    const pub = { t: 'pub', room, cid: 'c-1', body: 'hello, world ✓' };
    const ack = await ca.request(pub);
    t.same(Object.keys(ack).sort(), ['cid', 'id', 'mid', 'seq', 't', 'ts']);
    t.match(ack, { t: 'ack', cid: 'c-1', seq: 2, mid: /^[0-9a-f-]{36}$/ });
    t.ok(Math.abs(ack.ts - Date.now()) < 60_000, 'ts is a server time in ms');
    const expected = { t: 'msg', room, seq: 2, mid: ack.mid, from: a.id, cid: 'c-1', ts: ack.ts, body: pub.body };
    t.same(await cb.next((f) => f.t === 'msg', 'msg to b'), expected, 'delivered to the other subscriber with the ack’s fields');
    t.same(await ca.next((f) => f.t === 'msg', 'msg to a'), expected, 'and to the sender’s own subscribed socket');

    const retry = await ca.request(pub);
    t.same(retry, { ...ack, id: retry.id, dup: true }, 'a retry with the same cid: the same seq, mid and ts, dup');
    const conflict = await ca.request({ ...pub, body: 'something else' });
    isNack(t, conflict, 'CONFLICT', conflict.id, 'c-1');
    const ack2 = await cb.request({ t: 'pub', room, cid: 'c-1', body: 'b may use the same cid' });
    t.match(ack2, { t: 'ack', seq: 3 }, 'cids are per sender');
    t.notOk(ack2.dup);
    await cb.next((f) => f.t === 'msg' && f.seq === 3, 'msg 3');
    await cb.barrier();
    t.same(
      cb.all('msg').map((m) => m.seq),
      [2, 3],
      'the retry and the conflict delivered nothing',
    );

    const hist = await cb.request({ t: 'hist', room });
    t.match(
      hist.messages[0],
      { seq: 1, mid: String, from: b.id, ts: Number, kind: 'member_joined', user: { id: b.id, username: b.username } },
      'the join, first',
    );
    t.same(hist, {
      t: 'history',
      id: hist.id,
      room,
      lastSeq: 3,
      messages: [
        hist.messages[0],
        { seq: 2, mid: ack.mid, from: a.id, cid: 'c-1', ts: ack.ts, body: pub.body },
        { seq: 3, mid: ack2.mid, from: b.id, cid: 'c-1', ts: ack2.ts, body: 'b may use the same cid' },
      ],
    });
    const page = await cb.request({ t: 'hist', room, after: 2, limit: 1 });
    t.same(
      page.messages.map((m: Frame) => m.seq),
      [3],
    );
    const before = await cb.request({ t: 'hist', room, before: 3 });
    t.same(
      before.messages.map((m: Frame) => m.seq),
      [1, 2],
    );

    const late = await open(t, hub.url, as(b));
    const replayId = late.id();
    late.send({ t: 'sub', id: replayId, room, since: 0 });
    const subscribed = await late.next((f) => f.t === 'subscribed', 'subscribed after replay');
    t.same(subscribed, { t: 'subscribed', id: replayId, room, seq: 3 });
    t.same(
      late.frames.slice(1, 5).map((f) => [f.t, f.seq]),
      [
        ['event', 1],
        ['msg', 2],
        ['msg', 3],
        ['subscribed', 3],
      ],
      'since: the missed events and messages first, then subscribed',
    );
    const fresh = await open(t, hub.url, as(b));
    t.match(await fresh.request({ t: 'sub', room, since: 3 }), { t: 'subscribed', seq: 3 });
    t.equal(fresh.all('msg').length, 0, 'nothing to replay when up to date');
  });

  t.test(`${encoding}: typing, unsub, auth, ping`, async (t) => {
    const [a, b, c] = (await users(3)) as [User, User, User];
    const room = await createGroup(a, b);
    const ca = await open(t, hub.url, as(a));
    const cb = await open(t, hub.url, as(b));
    await ca.request({ t: 'sub', room });
    await cb.request({ t: 'sub', room });

    const typing = await ca.request({ t: 'typing', room });
    t.same(typing, { t: 'ok', id: typing.id });
    t.same(await cb.next((f) => f.t === 'typing', 'typing notice'), { t: 'typing', room, user: { id: a.id, username: a.username } });
    t.equal(ca.all('typing').length, 0, 'the sender gets no typing notice of its own (it would precede ok)');

    const unsub = await cb.request({ t: 'unsub', room });
    t.same(unsub, { t: 'ok', id: unsub.id });
    await ca.request({ t: 'pub', room, cid: 'after-unsub', body: 'anyone?' });
    await ca.next((f) => f.t === 'msg', 'msg to a');
    await cb.barrier();
    t.equal(cb.all('msg').length, 0, 'no delivery after unsub');
    t.match(await cb.request({ t: 'unsub', room }), { t: 'ok' }, 'unsub is idempotent');

    // An unsub pipelined right behind its sub (no waiting for `subscribed`) still wins.
    const subId = cb.id();
    cb.send({ t: 'sub', id: subId, room });
    const quick = await cb.request({ t: 'unsub', room });
    t.same(quick, { t: 'ok', id: quick.id });
    await ca.request({ t: 'pub', room, cid: 'after-quick-unsub', body: 'still anyone?' });
    await ca.next((f) => f.t === 'msg' && f.cid === 'after-quick-unsub', 'msg to a');
    await cb.barrier();
    t.equal(cb.all('msg').length, 0, 'no delivery after an unsub that overtook its sub');

    const fresh = await api.post('/api/v1/auth/login', { username: a.username, password: a.password });
    const auth = await ca.request({ t: 'auth', token: fresh.body.accessToken });
    t.same(auth, { t: 'ok', id: auth.id }, 'auth with a fresh token of the same user');
    await fails(t, ca, { t: 'auth', token: c.token }, 'FORBIDDEN', "another user's token");
    await fails(t, ca, { t: 'auth', token: 'garbage' }, 'TOKEN_INVALID', 'an invalid token');
    const ping = await ca.request({ t: 'ping' });
    t.same(ping, { t: 'pong', id: ping.id });
    t.match(await ca.request({ t: 'pub', room, cid: 'still-open', body: 'x' }), { t: 'ack' }, 'still usable after failed auths');
  });

  t.test(`${encoding}: presence and room events`, async (t) => {
    const [a, b, c] = (await users(3)) as [User, User, User];
    const room = await createGroup(a, b);
    const ca = await open(t, hub.url, as(a));
    await ca.request({ t: 'sub', room });
    await ca.next((f) => f.t === 'presence' && f.op === 'snapshot', 'a snapshot');
    const cb = await open(t, hub.url, as(b));
    await cb.request({ t: 'sub', room });
    t.same(await ca.next((f) => f.t === 'presence', 'join'), { t: 'presence', room, op: 'join', users: [{ id: b.id, username: b.username }] });
    const snap = await cb.next((f) => f.t === 'presence', 'b snapshot');
    t.same(snap.users.map((x: Frame) => x.id).sort(), [a.id, b.id].sort(), 'the snapshot lists everyone present');
    t.equal(cb.all('presence').length, 1, 'the joiner gets its snapshot, not its own join');

    const cb2 = await open(t, hub.url, as(b));
    await cb2.request({ t: 'sub', room });
    await ca.barrier();
    t.equal(ca.all('presence').length, 2, "b's second connection is no new join");
    await cb2.close();
    await ca.barrier();
    t.equal(ca.all('presence').length, 2, 'b is still present on another connection');
    await cb.close();
    t.same(await ca.next((f) => f.t === 'presence', 'leave'), { t: 'presence', room, op: 'leave', users: [{ id: b.id, username: b.username }] });
    await ca.barrier();
    t.equal(ca.all('presence').length, 3, 'one leave, when b’s last connection closed');

    const join = await api.post(`/api/v1/rooms/${room}/join`, undefined, { token: c.token });
    t.equal(join.status, 200);
    const joined = await ca.next((f) => f.t === 'event', 'member_joined');
    t.same(joined, {
      t: 'event',
      room,
      seq: 2,
      mid: joined.mid,
      from: c.id,
      ts: joined.ts,
      kind: 'member_joined',
      user: { id: c.id, username: c.username },
    });
    const cc = await open(t, hub.url, as(c));
    t.match(await cc.request({ t: 'sub', room }), { t: 'subscribed' }, 'the new member may subscribe at once');

    t.equal((await api.post(`/api/v1/rooms/${room}/leave`, undefined, { token: c.token })).status, 204);
    const left = await ca.next((f) => f.t === 'event', 'member_left');
    t.same(left, { t: 'event', room, seq: 3, mid: left.mid, from: c.id, ts: left.ts, kind: 'member_left', user: { id: c.id, username: c.username } });
    t.same(await cc.next((f) => f.t === 'event', 'member_left to the leaver'), left, 'the leaver hears it too, then is unsubscribed');
    await ca.request({ t: 'pub', room, cid: 'after-leave', body: 'x' });
    await ca.next((f) => f.t === 'msg', 'msg after leave');
    await cc.barrier();
    t.equal(cc.all('msg').length, 0, 'no delivery to a former member');

    // a's only subscription is this room: the event must not be lost when the room drops it.
    t.equal((await api.delete(`/api/v1/rooms/${room}`, { token: a.token })).status, 204);
    t.same(await ca.next((f) => f.t === 'event', 'room_deleted'), { t: 'event', room, kind: 'room_deleted' });
    await fails(t, ca, { t: 'sub', room }, 'NOT_FOUND', 'subscribing to a deleted room');
    await fails(t, ca, { t: 'pub', room, cid: 'late', body: 'x' }, 'NOT_FOUND', 'publishing to a deleted room');
  });

  t.test(`${encoding}: malformed frames get an error, with the request id when there was one`, async (t) => {
    const [u] = (await users(1)) as [User];
    const room = await createGroup(u);
    // Encodes any value for this connection, frame or not.
    const raw = (v: unknown) => (encoding === 'msgpack' ? pack(v) : JSON.stringify(v));
    // Each socket gets fewer than 11 violations, so it stays open.
    const check = async (c: RawClient, data: Uint8Array | string, code: string, id: number | null, what: string) => {
      c.sendRaw(data);
      isError(t, await c.next((f) => f.t === 'error', what), code, id, what);
    };
    const c = await open(t, hub.url, as(u));
    const notEncoding =
      encoding === 'msgpack' ? [[0xc1], [0x82, 0xa1, 0x74], [0x01, 0x02]].map((b) => Buffer.from(b)) : ['not json {', '{"t":"ping","id":1', '1 2'];
    for (const data of notEncoding) await check(c, data, 'BAD_FRAME', null, `not ${encoding}: ${data.toString()}`);
    const otherKind = encoding === 'msgpack' ? JSON.stringify({ t: 'ping', id: 1 }) : pack({ t: 'ping', id: 1 });
    await check(c, otherKind, 'BAD_FRAME', null, encoding === 'msgpack' ? 'a text frame' : 'a binary frame');
    for (const v of [[{ t: 'ping', id: 1 }], 42, null, 'ping', true]) await check(c, raw(v), 'BAD_FRAME', null, `a non-map: ${JSON.stringify(v)}`);
    await c.barrier();

    const c2 = await open(t, hub.url, as(u));
    if (encoding === 'msgpack') await check(c2, pack(Buffer.from('{"t":"ping"}')), 'BAD_FRAME', null, 'a non-map: bin');
    await check(c2, raw({ t: 'shout', id: 41 }), 'UNKNOWN_TYPE', 41, 'unknown type');
    await check(c2, raw({ t: 'toString', id: 42 }), 'UNKNOWN_TYPE', 42, 'a prototype property as type');
    await check(c2, raw({ id: 43, room }), 'UNKNOWN_TYPE', 43, 'no type');
    await check(c2, raw({ t: 'sub', id: 51 }), 'VALIDATION', 51, 'missing room');
    await check(c2, raw({ t: 'ping' }), 'VALIDATION', null, 'missing id');
    await check(c2, raw({ t: 'ping', id: 52, extra: true }), 'VALIDATION', 52, 'an extra field');
    await c2.barrier();

    const c3 = await open(t, hub.url, as(u));
    await check(c3, raw({ t: 'pub', id: 53, room, cid: 7, body: 'x' }), 'VALIDATION', 53, 'cid not a string');
    await check(c3, raw({ t: 'pub', id: 54, room, cid: 'x'.repeat(65), body: 'x' }), 'VALIDATION', 54, 'cid too long');
    t.match(await c3.request({ t: 'pub', room, cid: 'ok', body: '' }), { t: 'nack', code: 'VALIDATION' }, 'empty body: a nack (a message may be files only)');
    await check(c3, raw({ t: 'sub', id: 56, room: 'not-a-uuid' }), 'VALIDATION', 56, 'room not a uuid');
    await check(c3, raw({ t: 'sub', id: 57, room, since: -1 }), 'VALIDATION', 57, 'negative since');
    await check(c3, raw({ t: 'hist', id: 58, room, limit: 'ten' }), 'VALIDATION', 58, 'limit not an integer');
    await check(c3, raw({ t: 'ping', id: 'x' }), 'VALIDATION', null, 'id not an integer');
    await check(c3, raw({ t: 'ping', id: 0 }), 'VALIDATION', null, 'id not positive');
    await c3.barrier();
    t.equal(c3.closeInfo, undefined, 'fewer than 11 violations: still open');
    t.match(await c3.request({ t: 'hist', room }), { t: 'history', lastSeq: 0 }, 'no malformed pub was stored');
  });

  t.test(`${encoding}: request errors (not violations)`, async (t) => {
    const [a, outsider] = (await users(2)) as [User, User];
    const room = await createGroup(a);
    const co = await open(t, hub.url, as(outsider));
    for (let i = 0; i < 3; i++) {
      await fails(t, co, { t: 'sub', room }, 'NOT_MEMBER', 'non-member sub');
      await fails(t, co, { t: 'pub', room, cid: `o${i}`, body: 'let me in' }, 'NOT_MEMBER', 'non-member pub');
      await fails(t, co, { t: 'hist', room }, 'NOT_MEMBER', 'non-member hist');
      await fails(t, co, { t: 'typing', room }, 'NOT_MEMBER', 'non-member typing');
      await fails(t, co, { t: 'sub', room: randomUUID() }, 'NOT_FOUND', 'unknown room: sub');
      await fails(t, co, { t: 'pub', room: randomUUID(), cid: `u${i}`, body: 'x' }, 'NOT_FOUND', 'unknown room: pub');
    }
    await co.barrier();
    t.equal(co.closeInfo, undefined, '18 request errors are no protocol violations');

    const ca = await open(t, hub.url, as(a));
    // 'é' is two bytes of UTF-8: the limit counts bytes, not characters.
    await fails(t, ca, { t: 'pub', room, cid: 'big', body: 'é'.repeat(MAX_MESSAGE_BYTES / 2 + 1) }, 'PAYLOAD_TOO_LARGE', 'over the limit');
    t.match(await ca.request({ t: 'pub', room, cid: 'limit', body: 'é'.repeat(MAX_MESSAGE_BYTES / 2) }), { t: 'ack', seq: 1 }, 'exactly the limit');
  });

  t.test(`${encoding}: more than 10 violations close the socket with 4101`, async (t) => {
    const [u] = (await users(1)) as [User];
    const c = await open(t, hub.url, as(u));
    for (let i = 1; i <= 10; i++) c.send({ t: 'nope', id: i });
    await c.take((f) => f.t === 'error', 10, 'ten errors');
    await c.barrier();
    c.send({ t: 'nope', id: 11 });
    isError(t, await c.next((f) => f.t === 'error', 'the 11th error'), 'UNKNOWN_TYPE', 11);
    t.equal((await c.waitClose()).code, 4101);
  });

  t.test(`${encoding}: a frame over SB_WS_MAX_FRAME_BYTES closes the socket`, async (t) => {
    const [u] = (await users(1)) as [User];
    const room = await createGroup(u);
    const c = await open(t, hub.url, as(u));
    c.send({ t: 'pub', id: 1, room, cid: 'huge', body: 'x'.repeat(65_536) });
    const closed = await c.waitClose();
    t.comment(`oversized frame (${encoding}): close code ${closed.code} ${JSON.stringify(closed.reason)}`);
    t.equal(closed.code, 1009, 'closed with 1009 (message too big)');
    t.match(closed.reason, /^frame of \d+ bytes; the limit is 65536$/, 'with a reason');
    t.equal(c.all('ack').length + c.all('nack').length, 0, 'the frame was not processed');
    const again = await open(t, hub.url, as(u));
    t.match(await again.request({ t: 'hist', room }), { t: 'history', lastSeq: 0 }, 'nothing was stored; a new socket works');
  });
}

t.test('limits: publish rate and subscriptions', async (t) => {
  const limited = await startTestHub(t, {
    env: { ...FAST, SB_WS_PUBLISH_PER_SECOND: '1', SB_WS_PUBLISH_BURST: '2', SB_WS_MAX_SUBSCRIPTIONS: '2' },
  });
  const lapi = new Api(limited.url);
  const u = await lapi.signUp(uniqueName('lim'));
  // The publish budget is per user (#11): each encoding's socket belongs to a user of its own.
  const other = await lapi.signUp(uniqueName('lim'));
  const rooms: string[] = [];
  for (let i = 0; i < 3; i++) rooms.push((await lapi.post('/api/v1/rooms', { kind: 'group', name: `lim ${i}` }, { token: u.token })).body.room.id);
  for (const r of rooms) await lapi.post(`/api/v1/rooms/${r}/join`, undefined, { token: other.token });
  const [r1, r2, r3] = rooms as [string, string, string];

  for (const [encoding, who] of [
    ['msgpack', u],
    ['json', other],
  ] as const) {
    const c = await open(t, limited.url, { encoding, token: who.token });
    t.match(c.hello.limits, { publishPerSecond: 1, publishBurst: 2, maxSubscriptions: 2 });
    const ids = [c.id(), c.id(), c.id()];
    for (const [i, id] of ids.entries()) c.send({ t: 'pub', id, room: r1, cid: `${encoding}-${i}`, body: `m${i}` });
    const replies = await Promise.all(ids.map((id) => c.next((f) => f.id === id, `reply #${id}`)));
    t.same(
      replies.map((f) => f.t),
      ['ack', 'ack', 'nack'],
      `${encoding}: burst 2, then a nack`,
    );
    isNack(t, replies[2] as Frame, 'RATE_LIMITED', ids[2] as number, `${encoding}-2`);

    t.match(await c.request({ t: 'sub', room: r1 }), { t: 'subscribed' });
    t.match(await c.request({ t: 'sub', room: r2 }), { t: 'subscribed' });
    await fails(t, c, { t: 'sub', room: r3 }, 'RATE_LIMITED', `${encoding}: a third subscription`);
    t.match(await c.request({ t: 'sub', room: r1 }), { t: 'subscribed' }, 'resubscribing is no new subscription');
    await c.request({ t: 'unsub', room: r2 });
    t.match(await c.request({ t: 'sub', room: r3 }), { t: 'subscribed' }, 'room again after unsub');
  }
  const hist = await lapi.get(`/api/v1/rooms/${r1}/messages`, { token: u.token });
  t.same(
    hist.body.messages.slice(1).map((m: { cid: string }) => m.cid),
    ['msgpack-0', 'msgpack-1', 'json-0', 'json-1'],
    'rate-limited publishes were not stored',
  );
});

t.test('requests other than publishes share a rate limit: a flood is refused, not served', async (t) => {
  const limited = await startTestHub(t, { env: { ...FAST, SB_WS_REQUESTS_PER_SECOND: '1', SB_WS_MAX_SUBSCRIPTIONS: '1' } });
  const u = await new Api(limited.url).signUp(uniqueName('req'));
  const c = await open(t, limited.url, { token: u.token });
  // Burst: max(2 × rate, subscriptions + 10) = 11 requests; the 12th comes too soon.
  const ids = Array.from({ length: 12 }, () => c.id());
  for (const id of ids) c.send({ t: 'ping', id });
  const replies = await Promise.all(ids.map((id) => c.next((f) => f.id === id, `reply #${id}`)));
  t.same(
    replies.map((f) => f.t),
    [...Array(11).fill('pong'), 'error'],
    '11 answered, the 12th refused',
  );
  t.match(replies[11], { t: 'error', code: 'RATE_LIMITED', id: ids[11] });
});

t.test('the hub still serves after all of this', async (t) => {
  t.equal((await api.get('/readyz')).status, 200);
  const [u] = (await users(1)) as [User];
  const c = await open(t, hub.url, { token: u.token });
  await c.barrier();
});
