// The client SDK against real hubs: both encodings, publish/ack/delivery, resume with `since`,
// history, idempotent retries across dropped connections, gapless resume while another client
// publishes, rate-limit retries, reauth and close code 4100, shutdown, close(). What a healthy hub
// does not produce on demand (a gap in a room's seqs, a failed replay, a resume too far back) is
// played by a scripted socket.

import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import t from 'tap';
import WebSocket from 'ws';
import { backoffDelay, jitter } from '../src/client/backoff.js';
import {
  type ClientEvents,
  type ClientState,
  type MessageFrame,
  SwitchboardClient,
  type SwitchboardClientOptions,
  SwitchboardError,
  type WebSocketConstructor,
} from '../src/client/index.js';
import { Api, uniqueName } from './helpers/api.js';
import { startTestHub } from './helpers/hub.js';

/** Cheap password hashing, no login limits, and publish limits out of the way unless a test sets them. */
const FAST = {
  SB_ARGON2_MEMORY_KIB: '8192',
  SB_ARGON2_TIME_COST: '1',
  SB_REGISTER_PER_IP_PER_HOUR: '10000',
  SB_LOGIN_PER_IP_PER_MINUTE: '10000',
  SB_WS_PUBLISH_PER_SECOND: '100000',
  SB_WS_PUBLISH_BURST: '100000',
};

type User = Awaited<ReturnType<Api['signUp']>>;
type Arg<K extends keyof ClientEvents> = Parameters<ClientEvents[K]>[0];

const hub = await startTestHub(t, { env: FAST });
const api = new Api(hub.url);
const wsUrl = (base: string) => `${base.replace(/^http/, 'ws')}/ws`;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function newClient(t: Test, token: SwitchboardClientOptions['token'], opts: Partial<SwitchboardClientOptions> = {}): SwitchboardClient {
  const c = new SwitchboardClient({ url: wsUrl(hub.url), token, WebSocket, requestTimeoutMs: 5_000, reconnect: { minMs: 20, maxMs: 200 }, ...opts });
  t.teardown(() => c.close());
  return c;
}

/** Everything a client emits, in order. */
function record(c: SwitchboardClient) {
  const r = { messages: [] as MessageFrame[], states: [] as ClientState[], errors: [] as SwitchboardError[], sessions: [] as string[] };
  c.on('message', (m) => r.messages.push(m));
  c.on('state', (s) => {
    r.states.push(s);
    if (s === 'open' && c.hello) r.sessions.push(c.hello.session);
  });
  c.on('error', (e) => r.errors.push(e));
  return r;
}

/** The next `event` for which `pred` holds; rejects after `ms`. Set it up before the action that causes it. */
function next<K extends keyof ClientEvents>(c: SwitchboardClient, event: K, pred: (a: Arg<K>) => boolean = () => true, ms = 15_000): Promise<Arg<K>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching ${String(event)} within ${ms} ms`));
    }, ms);
    const off = c.on(event, ((a: Arg<K>) => {
      if (!pred(a)) return;
      clearTimeout(timer);
      off();
      resolve(a);
    }) as ClientEvents[K]);
  });
}

/** Resolves once `cond()` holds, re-checking on every `event`; rejects after `ms`. */
function until<K extends keyof ClientEvents>(c: SwitchboardClient, event: K, cond: () => boolean, ms = 10_000, what = String(event)): Promise<void> {
  if (cond()) return Promise.resolve();
  return next(c, event, () => cond(), ms).then(
    () => undefined,
    () => Promise.reject(new Error(`timed out after ${ms} ms waiting for ${what}`)),
  );
}

async function rejectsWith(t: Test, p: Promise<unknown>, code: string, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected ${code}, but it succeeded`);
  } catch (e) {
    t.ok(e instanceof SwitchboardError, `${what}: a SwitchboardError`);
    t.equal((e as SwitchboardError).code, code, `${what}: ${code}`);
  }
}

async function createRoom(api: Api, owner: User, ...members: User[]): Promise<string> {
  const r = await api.post('/api/v1/rooms', { kind: 'group', name: `room ${randomUUID()}` }, { token: owner.token });
  if (r.status !== 201) throw new Error(`create room: ${r.status} ${r.text}`);
  for (const m of members) {
    const j = await api.post(`/api/v1/rooms/${r.body.room.id}/join`, undefined, { token: m.token });
    if (j.status !== 200 && j.status !== 204) throw new Error(`join: ${j.status} ${j.text}`);
  }
  return r.body.room.id;
}

const users = (n: number, a = api) => Promise.all(Array.from({ length: n }, () => a.signUp(uniqueName('cl'))));

for (const encoding of ['msgpack', 'json'] as const) {
  t.test(`${encoding}: connect, publish, ack, delivery, presence, typing, events, ping`, async (t) => {
    const [a, b, c] = (await users(3)) as [User, User, User];
    const room = await createRoom(api, a, b);
    const ca = newClient(t, a.token, { encoding });
    const cb = newClient(t, () => Promise.resolve(b.token), { encoding });
    const ra = record(ca);
    const rb = record(cb);
    t.equal(ca.state, 'idle');

    const hello = await ca.connect();
    t.match(hello, { user: { id: a.id, username: a.username }, session: String, node: String, exp: Number });
    t.ok(hello.limits.maxFrameBytes > 0 && hello.limits.maxMessageBytes > 0, 'limits');
    t.same(ra.states, ['connecting', 'open']);
    t.equal(await ca.connect(), hello, 'connect() while open resolves at once');
    await cb.connect();

    t.same(await cb.subscribe(room), { room, seq: 1 }, "b's join is seq 1");
    const joined = next(cb, 'presence', (p) => p.op === 'join');
    const snapshot = next(ca, 'presence', (p) => p.op === 'snapshot');
    await ca.subscribe(room);
    t.same((await joined).users, [{ id: a.id, username: a.username }], 'b sees a arrive');
    t.same((await snapshot).users.map((u) => u.id).sort(), [a.id, b.id].sort(), 'a gets the snapshot');

    const delivered = next(cb, 'message');
    const ack = await ca.publish(room, `hello in ${encoding}`);
    t.match(ack, { room, seq: 2, dup: false, mid: String, ts: Number });
    t.match(ack.cid, /^[0-9a-f-]{36}$/, 'a generated UUID cid');
    t.match(await delivered, { t: 'msg', room, seq: 2, from: a.id, cid: ack.cid, mid: ack.mid, body: `hello in ${encoding}` });
    await until(ca, 'message', () => ra.messages.length === 1, 5_000, 'own message');
    t.equal(ca.lastSeq(room), 2);

    const typing = next(cb, 'typing');
    await ca.typing(room);
    t.match(await typing, { room, user: { id: a.id } });

    const event = next(ca, 'event', (e) => e.kind === 'member_joined');
    const j = await api.post(`/api/v1/rooms/${room}/join`, undefined, { token: c.token });
    t.ok(j.status < 300, 'c joins over REST');
    t.match(await event, { t: 'event', room, seq: 3, from: c.id, kind: 'member_joined', user: { id: c.id } }, 'in seq order with the messages');
    t.equal(ca.lastSeq(room), 3, 'an event advances the seq a resume starts from');

    t.ok((await ca.ping()) >= 0, 'ping');
    await ca.unsubscribe(room);
    t.equal(ca.lastSeq(room), undefined, 'forgotten after unsubscribe');
    t.same(
      rb.messages.map((m) => m.seq),
      [2],
    );
    t.same([...ra.errors, ...rb.errors], [], 'no errors');
  });
}

t.test('subscribe with since replays, then live; history pages', async (t) => {
  const [a, b] = (await users(2)) as [User, User];
  const room = await createRoom(api, a, b); // b's join is seq 1
  const ca = newClient(t, a.token);
  await ca.connect();
  for (const i of range(2, 6)) t.equal((await ca.publish(room, `m${i}`)).seq, i);

  const cb = newClient(t, b.token, { encoding: 'json' });
  const rb = record(cb);
  await cb.connect();
  t.same(await cb.subscribe(room, { since: 3 }), { room, seq: 6 });
  t.same(
    rb.messages.map((m) => [m.seq, m.body]),
    [
      [4, 'm4'],
      [5, 'm5'],
      [6, 'm6'],
    ],
    'the replay arrives before subscribe() resolves',
  );

  const live = newClient(t, a.token);
  const rl = record(live);
  await live.connect();
  t.same(await live.subscribe(room), { room, seq: 6 }, 'without since: live only');
  const seventh = next(live, 'message');
  await cb.publish(room, 'm7');
  t.equal((await seventh).seq, 7);
  await until(cb, 'message', () => rb.messages.length === 4);
  t.same(
    rl.messages.map((m) => m.seq),
    [7],
  );

  const first = await cb.history(room, { after: 0, limit: 3 });
  t.same(
    first.messages.map((m) => m.seq),
    [1, 2, 3],
  );
  t.equal(first.lastSeq, 7);
  t.match(first.messages[0], { t: 'event', room, kind: 'member_joined', from: b.id, user: { id: b.id } }, 'the join, in order');
  t.match(first.messages[1], { t: 'msg', room, body: 'm2', from: a.id });
  const back = await cb.history(room, { before: 5, limit: 2 });
  t.same(
    back.messages.map((m) => m.seq),
    [3, 4],
  );
  const latest = await ca.history(room);
  t.same(
    latest.messages.map((m) => m.seq),
    range(1, 7),
  );
});

t.test('errors carry the hub’s code; oversized publishes never reach the hub', async (t) => {
  const [a, outsider] = (await users(2)) as [User, User];
  const room = await createRoom(api, a);
  const co = newClient(t, outsider.token);
  const ro = record(co);
  await co.connect();
  await rejectsWith(t, co.subscribe(room), 'NOT_MEMBER', 'subscribe as a non-member');
  t.equal(co.lastSeq(room), undefined, 'the refused room is not remembered');
  await rejectsWith(t, co.history(room), 'NOT_MEMBER', 'history as a non-member');
  await rejectsWith(t, co.publish(room, 'nope'), 'NOT_MEMBER', 'publish as a non-member');
  t.equal(co.pendingPublishes, 0, 'a refused publish is not retried');
  await rejectsWith(t, co.subscribe(randomUUID()), 'NOT_FOUND', 'subscribe to no room');

  const ca = newClient(t, a.token);
  await ca.connect();
  const session = ca.hello?.session;
  const cid = randomUUID();
  const first = await ca.publish(room, 'original', { cid });
  t.same(await ca.publish(room, 'original', { cid }), { ...first, dup: true }, 'the same cid again: the original, marked dup');
  await rejectsWith(t, ca.publish(room, 'different', { cid }), 'CONFLICT', 'the same cid for another body');
  const limits = ca.hello!.limits;
  await rejectsWith(t, ca.publish(room, 'x'.repeat(limits.maxMessageBytes + 1)), 'PAYLOAD_TOO_LARGE', 'over the message limit (the hub nacks)');
  await rejectsWith(t, ca.publish(room, 'x'.repeat(limits.maxFrameBytes + 1)), 'PAYLOAD_TOO_LARGE', 'over the frame limit (refused locally)');
  t.equal(ca.state, 'open');
  t.equal(ca.hello?.session, session, 'the connection survived');
  t.equal((await ca.history(room)).lastSeq, 1, 'one message stored');
  t.same(ro.errors, [], 'call failures are not also reported as events');
});

t.test('a publish whose ack was lost is resent with the same cid and stored once; publishes queue while disconnected', async (t) => {
  const [a] = (await users(1)) as [User];
  const room = await createRoom(api, a);
  const early = newClient(t, a.token);
  const queuedBeforeConnect = early.publish(room, 'before connect');
  await early.connect();
  t.match(await queuedBeforeConnect, { seq: 1, dup: false }, 'a publish made before connect() is sent on connect');

  const ca = newClient(t, a.token);
  const ra = record(ca);
  await ca.connect();
  await ca.subscribe(room, { since: 1 });
  const cid = randomUUID();
  const reopened = next(ca, 'state', (s) => s === 'open');
  const acked = ca.publish(room, 'exactly once', { cid });
  const page = ca.history(room, { after: 0 });
  // The frames are on the wire; the socket closes right behind them, so no reply can arrive on it.
  t.ok(ca._dropConnection(4002));
  t.equal(ca.state, 'reconnecting');
  const queued = ca.publish(room, 'made while reconnecting');
  t.equal(ca.pendingPublishes, 2);
  const ack = await acked;
  t.equal(ack.cid, cid);
  t.equal(ack.dup, true, 'the hub had stored the first send: the resend is answered as a duplicate');
  t.match(await queued, { seq: ack.seq + 1, dup: false });
  t.ok((await page).lastSeq >= 1, 'a read in flight at the drop is sent again on the new connection');
  await reopened;
  t.equal(ra.sessions.length, 2, 'a new session');
  t.not(ra.sessions[0], ra.sessions[1]);

  await until(ca, 'message', () => ra.messages.length >= 2, 5_000, 'both messages delivered');
  t.same(
    ra.messages.map((m) => [m.seq, m.body]),
    [
      [ack.seq, 'exactly once'],
      [ack.seq + 1, 'made while reconnecting'],
    ],
    'delivered once each, through the resubscription',
  );
  const stored = (await ca.history(room, { after: 0 })).messages;
  t.equal(stored.filter((m) => m.t === 'msg' && m.cid === cid).length, 1, 'stored once');
  t.equal(stored.length, 3);
  t.same(ra.errors, []);
});

t.test('resume after dropped connections delivers every seq once, in order, while another client publishes', async (t) => {
  const N = 300;
  const [a, b] = (await users(2)) as [User, User];
  const room = await createRoom(api, a, b);
  const reader = newClient(t, a.token, { encoding: 'json' });
  const writer = newClient(t, b.token);
  const rr = record(reader);
  const rw = record(writer);
  await Promise.all([reader.connect(), writer.connect()]);
  await reader.subscribe(room, { since: 0 });

  // The reader drops at these seqs (some land mid-replay after the previous drop); the writer
  // drops twice right after sending a batch, so ten publishes are in flight each time.
  const readerDrops = new Set([40, 41, 120, 200, 201, 290]);
  reader.on('message', (m) => {
    if (readerDrops.delete(m.seq)) reader._dropConnection(4001);
  });
  const acks: number[] = [];
  let dups = 0;
  for (let i = 0; i < N; i += 10) {
    const batch = range(i + 1, i + 10).map((k) => writer.publish(room, `n${k}`));
    if (i === 60 || i === 180) writer._dropConnection(4002);
    for (const ack of await Promise.all(batch)) {
      acks.push(ack.seq);
      if (ack.dup) dups++;
    }
  }
  // Seq 1 is b's join.
  t.same(
    [...acks].sort((x, y) => x - y),
    range(2, N + 1),
    'every publish acked with its own seq',
  );
  await until(reader, 'message', () => rr.messages.length >= N, 20_000, `${N} messages`);
  t.same(
    rr.messages.map((m) => m.seq),
    range(2, N + 1),
    'each seq delivered exactly once, in order',
  );
  t.same(
    rr.messages.map((m) => m.body),
    range(1, N).map((k) => `n${k}`),
    'in publish order',
  );
  t.equal(readerDrops.size, 0, 'the reader was dropped at every planned seq');
  t.ok(rr.sessions.length >= 7, `the reader reconnected (${rr.sessions.length} sessions)`);
  t.equal(rw.sessions.length, 3, 'the writer reconnected twice');
  t.ok(dups > 0, `publishes in flight at a drop were resent and answered as duplicates (${dups})`);
  t.equal((await writer.history(room)).lastSeq, N + 1, 'nothing stored twice');
  t.same([...rr.errors, ...rw.errors], []);
});

t.test('an invalid token fails the first connect; a token function gets one more chance', async (t) => {
  const [a] = (await users(1)) as [User];
  const bad = newClient(t, 'not-a-token');
  const rb = record(bad);
  await rejectsWith(t, bad.connect(), 'AUTH_FAILED', 'a fixed bad token');
  t.equal(bad.state, 'closed');
  t.same(
    rb.errors.map((e) => e.code),
    ['AUTH_FAILED'],
  );
  await rejectsWith(t, bad.publish(randomUUID(), 'x'), 'AUTH_FAILED', 'publish on a failed client');

  const tokens = ['not-a-token', a.token];
  let calls = 0;
  const second = newClient(t, () => tokens[calls++] as string);
  t.equal((await second.connect()).user.id, a.id, 'connected with the second token');
  t.equal(calls, 2);
});

t.test('a session signed out elsewhere fails the client with SESSION_ENDED; it does not reconnect', async (t) => {
  const [a] = (await users(1)) as [User];
  const c = newClient(t, a.token);
  const r = record(c);
  await c.connect();
  const failed = next(c, 'error', (e) => e.code === 'SESSION_ENDED');
  t.equal((await api.post('/api/v1/auth/logout', { refreshToken: a.refreshToken })).status, 204);
  await failed;
  t.equal(c.state, 'closed', 'closed, not reconnecting');
  t.same(
    r.errors.map((e) => e.code),
    ['SESSION_ENDED'],
  );
});

t.test('close(): pending calls reject with CLOSED, nothing reconnects, a closed port fails connect()', async (t) => {
  const [a] = (await users(1)) as [User];
  const room = await createRoom(api, a);
  const ca = newClient(t, a.token);
  const ra = record(ca);
  await ca.connect();
  const pending = ca.history(room);
  const closing = ca.close();
  t.equal(ca.close(), closing, 'idempotent');
  await rejectsWith(t, pending, 'CLOSED', 'a request in flight');
  await closing;
  t.equal(ca.state, 'closed');
  t.same(ra.states, ['connecting', 'open', 'closed']);
  await rejectsWith(t, ca.publish(room, 'late'), 'CLOSED', 'publish after close');
  await rejectsWith(t, ca.connect(), 'CLOSED', 'connect after close');
  t.same(ra.errors, [], 'close() is not an error');

  const never = newClient(t, a.token);
  const queued = never.publish(room, 'never sent');
  await never.close();
  await rejectsWith(t, queued, 'CLOSED', 'a publish queued before connect');
});

t.test('rate-limited publishes are retried; reauth keeps a connection; 4100 refreshes the token once', async (t) => {
  const authHub = await startTestHub(t, {
    env: { ...FAST, SB_ACCESS_TOKEN_TTL_S: '5', SB_REAUTH_GRACE_MS: '1000', SB_WS_PUBLISH_PER_SECOND: '20', SB_WS_PUBLISH_BURST: '2' },
  });
  const authApi = new Api(authHub.url);
  const login = async (u: User): Promise<string> => {
    const r = await authApi.post('/api/v1/auth/login', { username: u.username, password: u.password });
    if (r.status !== 200) throw new Error(`login: ${r.status} ${r.text}`);
    return r.body.accessToken;
  };
  const [a, b, c] = (await users(3, authApi)) as [User, User, User];
  const room = await createRoom(authApi, a, b, c);
  const make = (token: SwitchboardClientOptions['token']) => newClient(t, token, { url: wsUrl(authHub.url) });

  // Token functions, counted. a: always fresh. b: its first token twice (the reauth fails), then a
  // fresh one. c: always its first token. a's first token is issued first, so it expires first.
  const calls = { a: 0, b: 0, c: 0 };
  const a1 = await login(a);
  const b1 = await login(b);
  const c1 = await login(c);
  const ca = make(() => (calls.a++ === 0 ? a1 : login(a)));
  const cb = make(() => (calls.b++ < 2 ? b1 : login(b)));
  const cc = make(() => {
    calls.c++;
    return c1;
  });
  const [ra, rb, rc] = [record(ca), record(cb), record(cc)];
  await Promise.all([ca.connect(), cb.connect(), cc.connect()]);
  await cb.subscribe(room);

  await t.test('ten publishes at once against a burst of two', async (t) => {
    const acks = await Promise.all(range(1, 10).map((i) => ca.publish(room, `burst ${i}`)));
    t.same(
      acks.map((x) => x.seq).sort((x, y) => x - y),
      range(3, 12),
      'after the two joins',
    );
    t.equal((await ca.history(room)).messages.filter((m) => m.t === 'msg').length, 10, 'each stored once');
  });

  const cClosed = next(cc, 'state', (s) => s === 'closed', 15_000);
  const bReopened = until(cb, 'state', () => rb.sessions.length === 2, 15_000, 'b to reconnect');
  await cClosed;
  t.same(
    rc.errors.map((e) => e.code),
    ['TOKEN_EXPIRED', 'AUTH_FAILED'],
    'c: the reauth with the stale token is refused, then the hub closes with 4100 and no new token comes',
  );
  t.equal(calls.c, 3, 'c: connect, reauth, and one more try after 4100');
  await rejectsWith(t, cc.ping(), 'AUTH_FAILED', 'c is finished');

  await bReopened;
  t.same(rb.states, ['connecting', 'open', 'reconnecting', 'open'], 'b reconnected with a fresh token');
  t.equal(calls.b, 3);
  t.same(
    rb.errors.map((e) => e.code),
    ['TOKEN_EXPIRED'],
  );
  const resumed = next(cb, 'message', (m) => m.body === 'after 4100');
  await ca.publish(room, 'after 4100');
  t.equal((await resumed).seq, 13, 'b resumed its subscription');

  t.ok((await ca.ping()) >= 0, 'a still answers');
  t.same(ra.states, ['connecting', 'open'], 'a never reconnected: its reauth succeeded');
  t.ok(calls.a >= 2, 'a fetched a fresh token for reauth');
  t.same(ra.errors, []);
});

t.test('shutdown: reconnects after the suggested delay', async (t) => {
  const shortHub = await startTestHub(t, { env: FAST });
  const [a] = (await users(1, new Api(shortHub.url))) as [User];
  const created: number[] = [];
  let retried: () => void = () => {};
  const retry = new Promise<void>((resolve) => {
    retried = resolve;
  });
  class CountingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      if (created.push(Date.now()) === 2) retried();
    }
  }
  const ca = newClient(t, a.token, { url: wsUrl(shortHub.url), WebSocket: CountingWebSocket as WebSocketConstructor });
  const ra = record(ca);
  await ca.connect();
  const reconnecting = next(ca, 'state', (s) => s === 'reconnecting');
  const closedAt = Date.now();
  await shortHub.close();
  await reconnecting;
  await Promise.race([retry, new Promise((_, reject) => setTimeout(() => reject(new Error('no reconnect attempt within 5 s')), 5_000).unref())]);
  t.ok((created[1] as number) - closedAt >= 1_000 - 5, `the first retry waited for the hub's reconnectMs (${(created[1] as number) - closedAt} ms)`);
  t.equal(ca.state, 'reconnecting', 'still trying: the hub is gone');
  t.same(ra.errors, []);
  await ca.close();

  const gone = newClient(t, a.token, { url: wsUrl(shortHub.url) });
  await rejectsWith(t, gone.connect(), 'CONNECT_FAILED', 'nothing listening');
});

t.test('scripted hub: a gap is refilled with since, a transient sub refusal retried, a resume too far back goes live', async (t) => {
  const sockets: FakeSocket[] = [];
  /** How the scripted hub answers a client frame (on any socket). */
  let script: ((s: FakeSocket, f: Record<string, any>) => void) | undefined;
  class FakeSocket {
    binaryType = 'blob';
    onmessage: ((ev: any) => void) | null = null;
    onclose: ((ev: any) => void) | null = null;
    onerror: ((ev: any) => void) | null = null;
    readonly sent: Record<string, any>[] = [];
    constructor(readonly url: string) {
      sockets.push(this);
      queueMicrotask(() => this.deliver({ t: 'hello', v: 'sb.v1', node: 'n', session: 's', user: { id: 'u', username: 'u' }, exp: 0, limits }));
    }
    send(data: string | Uint8Array) {
      const f = JSON.parse(data as string);
      // The person's stream is caught up on every connection: answered at once, kept out of `sent`.
      if (f.t === 'feed') return queueMicrotask(() => this.deliver({ t: 'feed', id: f.id, n: 0, notices: [], unread: [] }));
      this.sent.push(f);
      // Replies come later, as from a real socket.
      const answer = script;
      if (answer) queueMicrotask(() => answer(this, f));
    }
    close(code = 1000) {
      queueMicrotask(() => this.onclose?.({ code, reason: '' }));
    }
    deliver(f: object) {
      this.onmessage?.({ data: JSON.stringify(f) });
    }
  }
  const limits = { maxFrameBytes: 65536, maxMessageBytes: 16384, maxSubscriptions: 10, publishPerSecond: 10, publishBurst: 10 };
  const room = randomUUID();
  const msg = (seq: number) => ({ t: 'msg', room, seq, mid: randomUUID(), from: 'x', cid: `c${seq}`, ts: 0, body: `b${seq}` });
  const c = newClient(t, 'token', { encoding: 'json', WebSocket: FakeSocket as unknown as WebSocketConstructor });
  const rc = record(c);
  await c.connect();
  const s = sockets[0] as FakeSocket;
  t.match(s.url, /\?token=token$/, 'the token travels as ?token=');
  script = (s, f) => s.deliver({ t: 'subscribed', id: f.id, room, seq: 0 });
  await c.subscribe(room);
  script = undefined;
  s.deliver(msg(1));
  s.deliver(msg(2));
  s.deliver(msg(4));
  t.same(s.sent.at(-1), { t: 'sub', id: 3, room, since: 2 }, 'the gap triggers a re-subscription from the last seq');
  s.deliver(msg(5)); // still in the gap, and a resubscription is in flight: no second one
  t.equal(s.sent.length, 2);
  s.deliver(msg(2)); // a duplicate
  for (const k of [3, 4, 5]) s.deliver(msg(k));
  s.deliver({ t: 'subscribed', id: 3, room, seq: 5 });
  s.deliver(msg(6));
  t.same(
    rc.messages.map((m) => m.seq),
    [1, 2, 3, 4, 5, 6],
    'contiguous, no duplicate',
  );
  t.same(rc.errors, []);

  // A transient refusal (the hub could not read the history to replay) is retried after a delay.
  const other = randomUUID();
  const refusals: string[] = [];
  script = (s, f) => {
    if (f.t !== 'sub' || f.room !== other) return;
    if (refusals.length === 0) {
      refusals.push(f.room);
      s.deliver({ t: 'error', id: f.id, code: 'UNAVAILABLE', message: 'could not read the history to resume; subscribe again' });
    } else s.deliver({ t: 'subscribed', id: f.id, room: other, seq: 9 });
  };
  t.same(await c.subscribe(other, { since: 9 }), { room: other, seq: 9 }, 'subscribed on the second try');
  t.equal(s.sent.filter((f) => f.t === 'sub' && f.room === other).length, 2);

  // After a reconnect, a room too far behind to replay stays subscribed, live, and says so.
  const gap = next(c, 'error', (e) => e.code === 'GAP');
  const reopened = next(c, 'state', (st) => st === 'open');
  const resumed = next(c, 'message', (m) => m.seq === 51);
  script = (s2, f) => {
    if (f.t !== 'sub') return;
    if (f.room === other) s2.deliver({ t: 'subscribed', id: f.id, room: other, seq: 9 });
    else if (f.since !== undefined) s2.deliver({ t: 'error', id: f.id, code: 'VALIDATION', message: 'since is more than 10000 messages back' });
    else {
      s2.deliver({ t: 'subscribed', id: f.id, room, seq: 50 });
      s2.deliver(msg(51));
    }
  };
  c._dropConnection(4001);
  await reopened;
  const s2 = sockets[1] as FakeSocket;
  t.same(
    s2.sent.slice(0, 2).map((f) => [f.room, f.since]),
    [
      [room, 6],
      [other, 9],
    ],
    'every room resubscribed from its last seq',
  );
  t.match(await gap, { room, message: /after seq 6/ });
  await resumed;
  t.same(
    s2.sent.map((f) => [f.room, f.since]),
    [
      [room, 6],
      [other, 9],
      [room, undefined],
    ],
    'then live only',
  );
  t.equal(c.lastSeq(room), 51);
  t.same(
    rc.errors.map((e) => e.code),
    ['GAP'],
  );
});

t.test('backoff stays within its bounds', async (t) => {
  const o = { minMs: 100, maxMs: 1_000 };
  t.equal(
    backoffDelay(0, o, () => 0),
    50,
  );
  t.equal(
    backoffDelay(0, o, () => 1),
    100,
  );
  t.equal(
    backoffDelay(3, o, () => 1),
    800,
  );
  t.equal(
    backoffDelay(10, o, () => 0),
    500,
    'capped at maxMs, half fixed',
  );
  t.equal(
    backoffDelay(10_000, o, () => 1),
    1_000,
  );
  t.equal(
    jitter(1_000, () => 0),
    1_000,
  );
  t.equal(
    jitter(1_000, () => 1),
    1_500,
  );
});

t.test('read markers, contact news and the end of a subscription reach the SDK', async (t) => {
  const [a, b] = (await users(2)) as [User, User];
  const room = await createRoom(api, a, b);
  const [ca, cb, phone] = [newClient(t, a.token), newClient(t, b.token), newClient(t, b.token, { encoding: 'json' })];
  await Promise.all([ca.connect(), cb.connect(), phone.connect()]);
  const ack = await ca.publish(room, 'read me');
  const read = next(phone, 'read');
  await cb.markRead(room, ack.seq);
  t.same(await read, { t: 'read', n: 2, room, seq: ack.seq }, "b's other device hears the marker move");

  const contact = next(cb, 'contact');
  await api.post('/api/v1/contacts/requests', { userId: b.id }, { token: a.token });
  t.match(await contact, { t: 'contact', kind: 'requested', user: { id: a.id } }, 'a contact request');

  await cb.subscribe(room);
  const ended = next(cb, 'error', (e) => e.code === 'NOT_MEMBER');
  const removed = next(cb, 'event', (e) => e.kind === 'member_removed');
  t.equal((await api.request('DELETE', `/api/v1/rooms/${room}/members/${b.id}`, undefined, { token: a.token })).status, 204);
  t.match(await removed, { room, user: { id: b.id }, from: a.id }, 'b hears its removal, in order');
  t.match(await ended, { code: 'NOT_MEMBER', room }, 'then the hub ends the subscription');
  t.equal(cb.lastSeq(room), undefined, 'and the SDK no longer resumes the room');
});

t.test("the SDK's own stream: notices live, a restart that catches up after noticesSince, once each and in order", async (t) => {
  const [a, b] = (await users(2)) as [User, User];
  const cb = newClient(t, b.token);
  const first = next(cb, 'feed');
  await cb.connect();
  t.match(await first, { n: 0, unread: [] }, 'a new device learns where the stream stands');
  const added = next(cb, 'notice', (n) => n.kind === 'room_added');
  const dm = (await api.post('/api/v1/rooms', { kind: 'direct', peerId: b.id }, { token: a.token })).body.room.id as string;
  t.match(await added, { n: 1, room: { id: dm, peer: { id: a.id } } });
  const message = next(cb, 'notice', (n) => n.kind === 'message');
  await api.post(`/api/v1/rooms/${dm}/messages`, { cid: 'sdk-1', body: 'psst' }, { token: a.token });
  t.match(await message, { room: dm, seq: 1, preview: 'psst', from: a.id });
  t.equal(cb.noticeSeq, 1, 'noticeSeq: the last number handed over');
  cb.close();

  // Offline: a contact request, a group b is added to by joining elsewhere, a read marker moved elsewhere.
  await api.post('/api/v1/contacts/requests', { userId: b.id }, { token: a.token });
  const g = (await api.post('/api/v1/rooms', { kind: 'group', name: 'sdk' }, { token: a.token })).body.room.id as string;
  await api.post(`/api/v1/rooms/${g}/join`, undefined, { token: b.token });
  await api.request('PUT', `/api/v1/rooms/${dm}/read`, { seq: 1 }, { token: b.token });
  await api.post(`/api/v1/rooms/${g}/messages`, { cid: 'sdk-2', body: 'unread' }, { token: a.token });

  const again = newClient(t, b.token, { noticesSince: cb.noticeSeq as number });
  const seen: unknown[] = [];
  again.on('contact', (c) => seen.push(['contact', c.n, c.kind]));
  again.on('notice', (n) => seen.push(['notice', 'n' in n ? n.n : undefined, n.kind]));
  again.on('read', (r) => seen.push(['read', r.n, r.seq]));
  const caught = next(again, 'feed');
  await again.connect();
  t.match(await caught, { n: 4, unread: [{ room: g, unread: 1 }] });
  t.same(
    seen,
    [
      ['contact', 2, 'requested'],
      ['notice', 3, 'room_added'],
      ['read', 4, 1],
    ],
    'each missed one once, in order, before the feed event',
  );
  t.equal(again.noticeSeq, 4);
});
