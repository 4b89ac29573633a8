// Outsiders meeting the REST API the way an attacker (or an unlucky client) does, through real
// sockets to a listening hub on real PostgreSQL: tokens of deleted accounts, forged cursors, uploads
// cut off mid-body, login guessing from one address and from many, publishing floods over REST and
// WebSocket together, and what the hub logs and sends in headers. Test names carry the item number
// of the hardening issue they prove.

import { randomUUID } from 'node:crypto';
import net from 'node:net';
import t, { type Test } from 'tap';
import { LoginLimits } from '../src/auth/login-limits.js';
import { PublishBudget } from '../src/chat/publish-budget.js';
import { RateLimitedError } from '../src/errors.js';
import { startHub } from '../src/hub.js';
import { Api, type ApiResponse, roomWith, uniqueName } from './helpers/api.js';
import { freshDatabase } from './helpers/db.js';
import { FAST, startTestHub, testConfig } from './helpers/hub.js';
import { capturedLog } from './helpers/log.js';
import { type Frame, openFor, refusedUpgrade } from './helpers/ws.js';

const AUTH = '/api/v1/auth';
const PW = 'correct horse battery';

function isError(t: Test, r: ApiResponse, status: number, code: string, what: string): void {
  t.equal(r.status, status, `${what}: status ${status}`);
  t.match(r.body, { error: { code, message: String } }, `${what}: JSON body with code ${code}`);
}

function isRateLimited(t: Test, r: ApiResponse, maxS: number, what: string): void {
  isError(t, r, 429, 'RATE_LIMITED', what);
  const s = Number(r.headers.get('retry-after'));
  t.ok(Number.isInteger(s) && s >= 1 && s <= maxS, `${what}: Retry-After ${s} within 1..${maxS}`);
  t.equal(r.body?.error?.retryAfterS, s, `${what}: the body repeats it`);
}

/** Resolves with `p`, or rejects once `ms` pass: a deadline on an event, never a pause. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Checks `pred` on every turn of the event loop until it holds, or rejects after `ms`. */
async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A logger whose JSON lines the test can read. */

t.test('#9 deleted account: its still-valid access token gets 401 everywhere, never a 500', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const api = new Api(hub.url);
  const [gone, peer] = [await api.signUp(uniqueName('gone')), await api.signUp(uniqueName('peer'))];
  const room = await roomWith(api, peer);
  const joined = await roomWith(api, peer, gone);
  await hub.store.db.sql`DELETE FROM users WHERE id = ${gone.id}`;

  const token = { token: gone.token };
  const attempts: [string, Promise<ApiResponse>][] = [
    ['create a group room', api.post('/api/v1/rooms', { kind: 'group', name: 'x' }, token)],
    ['open a direct room', api.post('/api/v1/rooms', { kind: 'direct', peerId: peer.id }, token)],
    ['join a room', api.post(`/api/v1/rooms/${room}/join`, undefined, token)],
    ['post a message', api.post(`/api/v1/rooms/${joined}/messages`, { cid: 'c1', body: 'hi' }, token)],
    ['enroll a robot', api.post('/api/v1/robots', { name: 'rover' }, token)],
    ['list rooms', api.get('/api/v1/rooms', token)],
    ['me', api.get(`${AUTH}/me`, token)],
  ];
  for (const [what, p] of attempts) isError(t, await p, 401, 'UNAUTHENTICATED', what);
  const ws = await refusedUpgrade(hub.url, { token: gone.token });
  t.equal(ws.status, 401, 'a WebSocket upgrade with the token is refused with 401');
  const [n] = await hub.store.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM rooms WHERE owner_id IS NULL`;
  t.equal(n?.n, 0, 'nothing was created for the vanished account');
  t.equal((await api.get(`/api/v1/rooms/${room}`, { token: peer.token })).status, 200, 'other accounts are unaffected');
});

t.test('#9 cursors the server did not issue get 400 VALIDATION on every paged route', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const api = new Api(hub.url);
  const u = await api.signUp(uniqueName('cursor'));
  const room = await roomWith(api, u);
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
  const forged = {
    'NULs (AAAA)': 'AAAA',
    'invalid UTF-8': b64(Buffer.from([0xff, 0xfe, 0x41])),
    'padded base64': `${b64('abcdef')}=`,
    'standard base64 alphabet': Buffer.from('ab?>').toString('base64'),
    'a NUL inside a name': b64('abc\0def'),
    'a uuid with extra text': b64(`${randomUUID()}x`),
    'an audit key of the wrong shape': b64(`2024-01-01T00:00:00.000Z|${randomUUID()}|x`),
  };
  const routes = [
    '/api/v1/users?q=a',
    '/api/v1/rooms',
    '/api/v1/rooms?scope=public',
    `/api/v1/rooms/${room}/members`,
    '/api/v1/robots',
    `/api/v1/robots/${randomUUID()}/audit`,
  ];
  for (const path of routes) {
    for (const [what, cursor] of Object.entries(forged)) {
      const sep = path.includes('?') ? '&' : '?';
      const r = await api.get(`${path}${sep}cursor=${encodeURIComponent(cursor)}`, { token: u.token });
      isError(t, r, 400, 'VALIDATION', `${path} with ${what}`);
      t.equal(r.body?.error?.field, 'cursor', `${path} with ${what}: names the field`);
    }
  }
  // Issued cursors still page.
  for (let i = 0; i < 3; i++) await api.signUp(uniqueName('cursorpage'));
  const first = await api.get('/api/v1/users?q=cursorpage&limit=2', { token: u.token });
  t.equal(first.status, 200);
  t.type(first.body.nextCursor, 'string', 'a full page has a cursor');
  const next = await api.get(`/api/v1/users?q=cursorpage&limit=2&cursor=${first.body.nextCursor}`, { token: u.token });
  t.equal(next.status, 200, 'the issued cursor is accepted');
  t.equal(next.body.users.length, 1, 'and yields the rest');
});

t.test('#10 an upload aborted mid-body leaves the in-flight count, and shutdown does not wait for it', async (t) => {
  const cfg = await testConfig(t, { env: { ...FAST, SB_SHUTDOWN_TIMEOUT_MS: '60000' } });
  const hub = await startHub(cfg);
  let closed = false;
  t.teardown(() => (closed ? undefined : hub.close()));
  const u = await new Api(hub.url).signUp(uniqueName('upload'));
  // Unauthenticated, and authenticated (the body is awaited after the token check).
  for (const [path, authz] of [
    [`${AUTH}/login`, ''],
    ['/api/v1/rooms', `Authorization: Bearer ${u.token}\r\n`],
  ]) {
    const sock = net.connect(hub.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(`POST ${path} HTTP/1.1\r\nHost: x\r\n${authz}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"kind":`);
    await until(() => hub.router.inFlight === 1, 10_000, `${path}: the request is in flight`);
    sock.destroy();
    await until(() => hub.router.inFlight === 0, 10_000, `${path}: the aborted request leaves the in-flight count`);
    t.equal(hub.router.inFlight, 0, `${path}: nothing in flight after the client went away`);
  }
  const api = new Api(hub.url);
  t.equal((await api.get('/healthz')).status, 200, 'the hub still serves');
  // The shutdown deadline is a minute: finishing well inside it proves nothing was waited for.
  await within(hub.close(), 15_000, 'SIGTERM-style close');
  closed = true;
  t.pass('close finished without waiting for the aborted upload');
});

t.test('#12 login limits: per username + IP, per IP per day, shared by the cluster and kept across restarts', async (t) => {
  const databaseUrl = await freshDatabase(t);
  const env = {
    ...FAST,
    DATABASE_URL: databaseUrl,
    SB_TRUST_PROXY: 'true',
    SB_LOGIN_FAILS_PER_USER_IP: '3',
    SB_LOGIN_FAILS_PER_IP_PER_DAY: '6',
    SB_LOGIN_BLOCK_S: '900',
  };
  const one = await startTestHub(t, { env });
  const two = await startTestHub(t, { env });
  const [a, b] = [new Api(one.url), new Api(two.url)];
  const victim = await a.signUp(uniqueName('Victim'));
  const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
  const login = (api: Api, username: string, password: string, ip: string) => api.post(`${AUTH}/login`, { username, password }, from(ip));

  // An attacker at 203.0.113.1 guesses; its failures are spread over both nodes.
  for (const api of [a, b, a]) isError(t, await login(api, victim.username, 'wrong password!', '203.0.113.1'), 401, 'UNAUTHENTICATED', 'a guess');
  isRateLimited(t, await login(b, victim.username, PW, '203.0.113.1'), 900, 'the attacker’s address, even with the right password, on the other node');
  isRateLimited(t, await login(a, victim.username.toUpperCase(), 'x', '203.0.113.1'), 900, 'in any case of the username');
  // The victim, elsewhere, is not locked out.
  t.equal((await login(a, victim.username, PW, '198.51.100.7')).status, 200, 'the victim logs in from its own address');
  t.equal((await login(b, victim.username, PW, '198.51.100.7')).status, 200, 'on either node');

  // A success resets the pair's count.
  for (let i = 0; i < 2; i++) await login(a, victim.username, 'wrong password!', '198.51.100.8');
  t.equal((await login(a, victim.username, PW, '198.51.100.8')).status, 200, 'success after two failures');
  for (let i = 0; i < 2; i++) isError(t, await login(b, victim.username, 'wrong password!', '198.51.100.8'), 401, 'UNAUTHENTICATED', 'count restarted');

  // One address spraying many usernames hits its daily cap (6 failures), whatever the names.
  const spray = '203.0.113.99';
  for (let i = 0; i < 6; i++) isError(t, await login(i % 2 ? a : b, uniqueName('nobody'), 'wrong password!', spray), 401, 'UNAUTHENTICATED', 'spray');
  isRateLimited(t, await login(a, victim.username, PW, spray), 86_400, 'the spraying address is refused for the day');

  // A forwarded address longer than the counters' key column is still counted, not a 500.
  const long = `2001:db8::${'f'.repeat(300)}`;
  isError(t, await login(a, victim.username, 'wrong password!', long), 401, 'UNAUTHENTICATED', 'a 300-character client address');

  // A restarted node (a fresh process on the same database) remembers.
  await one.close();
  const three = await startTestHub(t, { env });
  const c = new Api(three.url);
  isRateLimited(t, await login(c, victim.username, PW, '203.0.113.1'), 900, 'after a restart the pair is still blocked');
  t.equal((await login(c, victim.username, PW, '198.51.100.7')).status, 200, 'and the victim still gets in');
  const [rows] = await three.store.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM rate_limits`;
  t.ok((rows?.n ?? 0) > 0, 'the counters live in the shared database');
  t.equal(await three.store.rateLimits.prune(Date.now() + 2 * 86_400_000), rows?.n, 'pruning drops counters whose window ended');
});

t.test('#13 /docs may not be framed by another site', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const r = await new Api(hub.url).get('/docs');
  t.equal(r.status, 200);
  t.match(r.headers.get('content-security-policy'), /(^|;)\s*frame-ancestors 'none'(;|$)/, 'CSP frame-ancestors none');
  t.equal(r.headers.get('x-frame-options'), 'DENY', 'and X-Frame-Options for older browsers');
});

t.test('#13 #17 logout then refresh: the session ended, not token reuse; failed logins are logged without the password', async (t) => {
  const cap = capturedLog();
  const hub = await startHub(await testConfig(t, { env: { ...FAST, SB_TRUST_PROXY: 'true' } }), cap.log);
  t.teardown(() => hub.close());
  const api = new Api(hub.url);
  const u = await api.signUp(uniqueName('logout'));

  t.equal((await api.post(`${AUTH}/logout`, { refreshToken: u.refreshToken })).status, 204, 'logout');
  const r = await api.post(`${AUTH}/refresh`, { refreshToken: u.refreshToken });
  isError(t, r, 401, 'SESSION_ENDED', 'refresh after logout');
  t.match(r.body.error.message, /logged out/, 'the message says the session ended');
  t.notOk(
    cap.lines.some((l) => /reuse/.test(l.msg)),
    'no reuse warning is logged',
  );

  const secret = 'hunter2-do-not-log-me';
  const bad = await api.post(`${AUTH}/login`, { username: u.username, password: secret }, { headers: { 'x-forwarded-for': '192.0.2.44' } });
  t.equal(bad.status, 401);
  await api.post(`${AUTH}/login`, { username: 'no-such-user', password: secret }, { headers: { 'x-forwarded-for': '192.0.2.45' } });
  const failed = cap.lines.filter((l) => l.msg === 'login failed');
  t.match(
    failed,
    [
      { level: 40, username: u.username, ip: '192.0.2.44', reason: 'wrong password' },
      { level: 40, username: 'no-such-user', ip: '192.0.2.45', reason: 'unknown username' },
    ],
    'each failed login is logged with the username and IP',
  );
  t.notOk(cap.text().includes(secret), 'the password appears nowhere in the log');
});

t.test('#17 the JWKS is cacheable: exactly one Cache-Control, the intended max-age', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const api = new Api(hub.url);
  const r = await api.get('/.well-known/jwks.json');
  t.equal(r.status, 200);
  t.equal(r.headers.get('cache-control'), 'public, max-age=300', 'one header (fetch would join two with a comma)');
  t.equal((await api.get('/healthz')).headers.get('cache-control'), 'no-store', 'other JSON keeps no-store');
});

t.test('#11 one publish budget per user for REST and WebSocket together', async (t) => {
  const burst = 6;
  const hub = await startTestHub(t, { env: { ...FAST, SB_WS_PUBLISH_PER_SECOND: '1', SB_WS_PUBLISH_BURST: String(burst) } });
  const api = new Api(hub.url);
  const [u, bystander] = [await api.signUp(uniqueName('flood')), await api.signUp(uniqueName('calm'))];
  const room = await roomWith(api, u, bystander);
  const [s1, s2] = [await openFor(t, hub.url, u.token), await openFor(t, hub.url, u.token)];

  // 3 × burst publishes at once: a third over REST, a third on each of two sockets.
  const started = Date.now();
  const rest = Array.from({ length: burst }, (_, i) => api.post(`/api/v1/rooms/${room}/messages`, { cid: `rest-${i}`, body: 'x' }, { token: u.token }));
  const ws = [s1, s2].flatMap((c, k) => Array.from({ length: burst }, (_, i) => c.request({ t: 'pub', room, cid: `ws${k}-${i}`, body: 'x' }, 10_000)));
  const [restReplies, wsReplies] = await Promise.all([Promise.all(rest), Promise.all(ws)]);
  const elapsedS = (Date.now() - started) / 1000;

  const accepted = restReplies.filter((r) => r.status === 201).length + wsReplies.filter((f: Frame) => f.t === 'ack').length;
  // The bucket refills at 1/s while the requests are served: allow what refilled, nothing more.
  t.ok(
    accepted >= burst && accepted <= burst + Math.floor(elapsedS),
    `${accepted} accepted of ${3 * burst}: the burst (${burst}) plus at most ${Math.floor(elapsedS)} refilled`,
  );
  const refusedRest = restReplies.filter((r) => r.status !== 201);
  const refusedWs = wsReplies.filter((f: Frame) => f.t !== 'ack');
  t.ok(refusedRest.length > 0 && refusedWs.length > 0, 'both paths were refused once the shared budget ran out');
  for (const r of refusedRest) isRateLimited(t, r, 1, 'REST post over budget');
  for (const f of refusedWs) t.match(f, { t: 'nack', code: 'RATE_LIMITED' }, 'WebSocket pub over budget: nack RATE_LIMITED');
  const [stored] = await hub.store.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM messages WHERE room_id = ${room} AND kind = 'message'`;
  t.equal(stored?.n, accepted, 'only accepted publishes were stored');
  t.equal(
    (await api.post(`/api/v1/rooms/${room}/messages`, { cid: 'b', body: 'y' }, { token: bystander.token })).status,
    201,
    'another user has a budget of their own',
  );
});

t.test('#11 publish budget: token bucket per user under a fake clock, bounded in users', async (t) => {
  let now = 0;
  const b = new PublishBudget(2, 3, () => now, 4);
  for (let i = 0; i < 3; i++) b.take('u');
  const refused = t.throws(() => b.take('u')) as unknown;
  t.ok(refused instanceof RateLimitedError && refused.retryAfterS === 1, 'the 4th is refused with a 1 s wait');
  b.take('v');
  now += 500;
  b.take('u');
  t.throws(() => b.take('u'), 'one token per half second at 2/s');
  now += 10_000;
  for (let i = 0; i < 3; i++) b.take('u');
  t.throws(() => b.take('u'), 'refills only up to the burst');
  for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) b.take(id);
  t.ok(b.size <= 4, `at most 4 users tracked (${b.size})`);
  const slow = new PublishBudget(1, 1, () => now);
  slow.take('w');
  now += 100;
  const e = t.throws(() => slow.take('w')) as unknown;
  t.equal((e as RateLimitedError).retryAfterS, 1, 'Retry-After rounds the wait up to whole seconds');
});

t.test('#12 login limits: a failing store is an error, never a silent pass or a fake 429', async (t) => {
  const down = { query: async () => Promise.reject(Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' })) };
  const limits = new LoginLimits(down, {
    loginPerIpPerMinute: 5,
    loginFailsPerUserAndIp: 3,
    loginBlockS: 60,
    loginFailsPerIpPerDay: 10,
    registerPerIpPerHour: 5,
    codesPerAddressPerHour: 5,
    codesPerIpPerHour: 20,
  });
  await t.rejects(limits.beforeLogin('ada', '192.0.2.1'), { code: 'ECONNREFUSED' }, 'login check');
  await t.rejects(limits.register('192.0.2.1'), { code: 'ECONNREFUSED' }, 'registration check');
});

t.test('#8 over REST: a post that would wake one room too many gets 503 OVERLOADED with Retry-After, never a 500', async (t) => {
  const maxActors = 100;
  const hub = await startTestHub(t, { env: { ...FAST, SB_MAX_ACTORS: String(maxActors), SB_WS_PUBLISH_PER_SECOND: '100000', SB_WS_PUBLISH_BURST: '100000' } });
  const api = new Api(hub.url);
  const u = await api.signUp(uniqueName('busy'));
  const post = (room: string, cid: string) => api.post(`/api/v1/rooms/${room}/messages`, { cid, body: 'hi' }, { token: u.token });
  const rooms: string[] = [];
  for (let i = 0; i <= maxActors; i++) rooms.push(await roomWith(api, u));
  // Each first post wakes its room's actor, which then stays alive while idle (60 s): the node
  // holds its limit of live rooms once the first `maxActors` rooms have a message.
  for (const room of rooms.slice(0, maxActors)) {
    const r = await post(room, `c-${room}`);
    t.equal(r.status, 201, r.text);
  }
  const over = await post(rooms[maxActors] as string, 'c-over');
  isError(t, over, 503, 'OVERLOADED', 'the post to one room more');
  t.equal(over.headers.get('retry-after'), '1', 'with Retry-After');
  const stored = await api.get(`/api/v1/rooms/${rooms[maxActors]}/messages`, { token: u.token });
  t.same(stored.body.messages, [], 'and nothing was stored');
  t.equal((await post(rooms[0] as string, 'c-again')).status, 201, 'a room already awake is still served');
});
