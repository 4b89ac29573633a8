// Issue 16, the WebSocket protocol met the way an outside client meets it: a built hub process
// (`dist/cli.js serve`, its JSON log read line by line) with low limits, raw sockets speaking plain
// frames, and raw HTTP requests to /ws. Each test is named with the issue item it proves.

import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import type { Test } from 'tap';
import t from 'tap';
import { Api, uniqueName } from './helpers/api.js';
import { freshDatabase } from './helpers/db.js';
import { FAST, tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';
import { connect, ENCODINGS, type Frame, pack, type RawClient, SUBPROTOCOL } from './helpers/ws.js';

const MAX_FRAME = 4_096;
const MAX_VIOLATIONS = 3;
const VIOLATION_WINDOW_MS = 3_000;

const hubProc = spawnCli(t, ['serve'], {
  ...FAST,
  DATABASE_URL: await freshDatabase(t),
  PORT: '0',
  HOST: '127.0.0.1',
  SB_ROBOT_PORT: '0',
  SB_DATA_DIR: await tempDir(t),
  LOG_LEVEL: 'info',
  SB_WS_MAX_FRAME_BYTES: String(MAX_FRAME),
  SB_WS_MAX_VIOLATIONS: String(MAX_VIOLATIONS),
  SB_WS_VIOLATION_WINDOW_MS: String(VIOLATION_WINDOW_MS),
  SB_WS_PUBLISH_PER_SECOND: '2',
  SB_WS_PUBLISH_BURST: '1',
  SB_WS_REQUESTS_PER_SECOND: '1',
  SB_WS_MAX_SUBSCRIPTIONS: '1',
});
const listening = await hubProc.waitFor((l) => l.msg === 'listening', 'listening', 30_000);
const url = listening.url as string;
const api = new Api(url);

type User = Awaited<ReturnType<Api['signUp']>>;
const signUp = () => api.signUp(uniqueName('atk'));

async function open(t: Test, u: User, encoding: 'msgpack' | 'json' = 'json'): Promise<RawClient & { hello: Frame }> {
  const c = await connect(url, { encoding, token: u.token });
  t.teardown(() => c.ws.terminate());
  return c;
}

/** A raw HTTP request to /ws (optionally an upgrade): status, headers and JSON body. */
function raw(method: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/ws', url), { method, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString('utf8');
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.on('upgrade', () => reject(new Error('the upgrade was accepted')));
    req.end();
  });
}

const upgradeHeaders = (extra: Record<string, string>) => ({
  connection: 'Upgrade',
  upgrade: 'websocket',
  'sec-websocket-version': '13',
  'sec-websocket-key': randomBytes(16).toString('base64'),
  ...extra,
});

t.test('#19 hello.limits states every limit a client meets', async (t) => {
  const c = await open(t, await signUp());
  t.match(c.hello.limits, {
    maxFrameBytes: MAX_FRAME,
    publishPerSecond: 2,
    publishBurst: 1,
    requestsPerSecond: 1,
    reauthGraceMs: 30_000,
    idleTimeoutS: 120,
    maxViolations: MAX_VIOLATIONS,
    violationWindowMs: VIOLATION_WINDOW_MS,
    maxResumeMessages: 10_000,
  });
});

for (const encoding of ENCODINGS) {
  t.test(`#19 ${encoding}: an oversized frame closes with 1009 and a reason; a huge one is cut off`, async (t) => {
    const u = await signUp();
    const c = await open(t, u, encoding);
    c.send({ t: 'ping', id: 1, pad: 'x'.repeat(MAX_FRAME) });
    const closed = await c.waitClose();
    t.equal(closed.code, 1009, 'message too big');
    t.match(closed.reason, new RegExp(`the limit is ${MAX_FRAME}`), 'says the limit');
    t.equal(c.all('pong').length + c.all('error').length, 0, 'the frame was not processed');
    // Past twice the limit uWS drops the connection itself: documented as 1006.
    const d = await open(t, u, encoding);
    d.send({ t: 'ping', id: 1, pad: 'x'.repeat(2 * MAX_FRAME + 10) });
    t.equal((await d.waitClose()).code, 1006, 'past the backstop: abrupt close');
    const again = await open(t, u, encoding);
    t.match(await again.request({ t: 'ping' }), { t: 'pong' }, 'a new socket works');
  });
}

t.test('#19 RATE_LIMITED replies carry retryAfterMs, and a retry after it is accepted', async (t) => {
  const u = await signUp();
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'rate' }, { token: u.token })).body.room.id;
  const c = await open(t, u);
  t.match(await c.request({ t: 'pub', room, cid: 'a', body: 'one' }), { t: 'ack' }, 'the burst');
  const nack = await c.request({ t: 'pub', room, cid: 'b', body: 'two' });
  t.match(nack, { t: 'nack', code: 'RATE_LIMITED', cid: 'b' });
  t.ok(nack.retryAfterMs > 0 && nack.retryAfterMs <= 500, `retryAfterMs ${nack.retryAfterMs} is at most one refill (500 ms)`);
  // The wait is the behaviour under test (a refill), not synchronisation.
  await new Promise((r) => setTimeout(r, nack.retryAfterMs));
  t.match(await c.request({ t: 'pub', room, cid: 'b', body: 'two' }), { t: 'ack', cid: 'b' }, 'the retry after retryAfterMs is accepted');

  // Other requests: a burst of max(2 × 1, 1 + 10) = 11, then refused with the wait.
  const d = await open(t, u);
  for (let i = 0; i < 11; i++) d.send({ t: 'ping', id: 100 + i });
  await d.take((f) => f.t === 'pong', 11, 'the burst of pings');
  const err = await d.request({ t: 'ping' });
  t.match(err, { t: 'error', code: 'RATE_LIMITED', id: err.id });
  t.ok(err.retryAfterMs > 0 && err.retryAfterMs <= 1_000, `retryAfterMs ${err.retryAfterMs}`);
});

t.test('#19 the violation budget refills: a recurring bug is tolerated, a flood is closed with 4101', async (t) => {
  const c = await open(t, await signUp());
  for (let i = 1; i <= MAX_VIOLATIONS; i++) c.send({ t: 'nope', id: i });
  await c.take((f) => f.t === 'error' && f.code === 'UNKNOWN_TYPE', MAX_VIOLATIONS, 'the budget spent');
  await c.barrier();
  t.equal(c.closeInfo, undefined, 'still open with the budget spent');
  // Wall-clock time refilling the budget is the behaviour under test.
  await new Promise((r) => setTimeout(r, VIOLATION_WINDOW_MS));
  for (let i = 1; i <= MAX_VIOLATIONS; i++) c.send({ t: 'nope', id: 10 + i });
  c.send({ t: 'nope', id: 20 });
  const errors = await c.take((f) => f.t === 'error', MAX_VIOLATIONS + 1, 'every bad frame answered');
  t.same(
    errors.map((e) => e.id),
    [11, 12, 13, 20],
    'answered with their ids',
  );
  t.equal((await c.waitClose()).code, 4101, 'one more than the refilled budget closes');
});

t.test('#19 /ws without an upgrade: 426 for GET, 405 for other methods', async (t) => {
  const get = await raw('GET', {});
  t.equal(get.status, 426);
  t.equal(get.headers.upgrade, 'websocket');
  t.match(get.body, { error: { code: 'UPGRADE_REQUIRED', message: /WebSocket/ } });
  t.match(get.headers['x-request-id'], /./, 'with a request id');
  const post = await raw('POST', { 'content-type': 'application/json' });
  t.equal(post.status, 405);
  t.equal(post.headers.allow, 'GET');
  t.match(post.body, { error: { code: 'METHOD_NOT_ALLOWED' } });
});

t.test('#13 upgrade refusals carry X-Request-Id, also in the log line', async (t) => {
  const u = await signUp();
  const cases: [Record<string, string>, number, string][] = [
    [{ 'sec-websocket-protocol': SUBPROTOCOL.json }, 401, 'UNAUTHENTICATED'],
    [{ 'sec-websocket-protocol': 'sb.v9', authorization: `Bearer ${u.token}` }, 400, 'VALIDATION'],
    [{ 'sec-websocket-protocol': SUBPROTOCOL.json, authorization: 'Bearer not.a.jwt' }, 401, 'TOKEN_INVALID'],
  ];
  const ids = new Set<string>();
  for (const [headers, status, code] of cases) {
    const r = await raw('GET', upgradeHeaders(headers));
    t.equal(r.status, status, `${code}: ${status}`);
    t.equal(r.body.error.code, code);
    const id = r.headers['x-request-id'] as string;
    t.match(id, /^[\w-]+$/, `${code}: X-Request-Id ${id}`);
    ids.add(id);
    const line = await hubProc.waitFor((l) => l.msg === 'websocket upgrade refused' && l.reqId === id, `the log line for ${id}`, 10_000);
    t.match(line, { level: 30, status, code, ip: /./ }, `${code}: logged at info`);
  }
  t.equal(ids.size, cases.length, 'each refusal has its own id');
});

t.test('#17 connects and closes are logged with conn, user, IP and code, never the token', async (t) => {
  const u = await signUp();
  const c = await open(t, u);
  const conn = c.hello.session;
  const opened = await hubProc.waitFor((l) => l.msg === 'websocket connected' && l.conn === conn, 'connect line');
  t.match(opened, { level: 30, user: u.id, ip: '127.0.0.1', encoding: 'json' });
  await c.close();
  const closed = await hubProc.waitFor((l) => l.msg === 'websocket closed' && l.conn === conn, 'close line');
  t.match(closed, { level: 30, user: u.id, ip: '127.0.0.1', code: 1000 });
  const secret = u.token.split('.')[2] as string;
  t.notOk(
    hubProc.lines.some((l) => JSON.stringify(l).includes(secret)),
    'no log line holds the token',
  );
});

t.test('#11 cmd args nest at most 64 levels: deeper gets VALIDATION with the id, never a stack error', async (t) => {
  const c = await open(t, await signUp());
  const nest = (n: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = [v];
    return v;
  };
  // 2,000 levels as JSON text ("[[[...1]]]") fit under this hub's frame limit; the check is the same at any depth.
  const robot = randomUUID();
  c.sendRaw(`{"t":"cmd","id":7,"robot":"${robot}","name":"go","args":${'['.repeat(2_000)}1${']'.repeat(2_000)}}`);
  const deep = await c.next((f) => f.id === 7, 'reply to the deep cmd');
  t.match(deep, { t: 'error', id: 7, code: 'VALIDATION', message: /nest at most 64/ });
  t.notMatch(deep.message, /stack/i);
  const over = await c.request({ t: 'cmd', robot, name: 'go', args: nest(65) });
  t.match(over, { t: 'error', code: 'VALIDATION' }, '65 levels are refused');
  const ok = await c.request({ t: 'cmd', robot, name: 'go', args: nest(64) });
  t.not(ok.code, 'VALIDATION', `64 levels pass validation (then: ${ok.code})`);
});

t.test('#11 invalid UTF-8 in a MessagePack string is refused, not stored as U+FFFD', async (t) => {
  const u = await signUp();
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'utf8' }, { token: u.token })).body.room.id;
  const c = await open(t, u, 'msgpack');
  // A body of 3 bytes: "a", a lone continuation byte, "b" (str8 with a placeholder patched in).
  const bytes = pack({ t: 'pub', id: 5, room, cid: 'bad', body: 'aXb' });
  const at = bytes.indexOf(Buffer.from('aXb'));
  bytes[at + 1] = 0x80;
  c.sendRaw(bytes);
  const reply = await c.next((f) => f.id === 5, 'reply to the bad pub');
  t.match(reply, { t: 'error', id: 5, code: 'VALIDATION', message: /UTF-8/ });
  const hist = await c.request({ t: 'hist', room });
  t.equal(hist.messages.length, 0, 'nothing was stored');
  t.match(await c.request({ t: 'pub', room, cid: 'good', body: 'a\u00e9b' }), { t: 'ack' }, 'valid UTF-8 is accepted');
});

t.test('#19 a repeated sub with since replays without a second presence snapshot', async (t) => {
  const u = await signUp();
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'resub' }, { token: u.token })).body.room.id;
  const c = await open(t, u);
  t.match(await c.request({ t: 'pub', room, cid: 'one', body: 'hello' }), { t: 'ack', seq: 1 });
  t.match(await c.request({ t: 'sub', room }), { t: 'subscribed', seq: 1 });
  await c.next((f) => f.t === 'presence', 'the first snapshot');
  t.match(await c.request({ t: 'sub', room, since: 0 }), { t: 'subscribed', seq: 1 }, 'resumed on the live connection');
  t.match(c.all('msg'), [{ seq: 1, body: 'hello' }], 'the message was replayed');
  await c.barrier();
  t.equal(c.all('presence').length, 1, 'one snapshot only');
});

t.test('#19 cookie authentication: the Origin must match the Host in host and port', async (t) => {
  const u = await signUp();
  const { port } = new URL(url);
  const cookie = `sb_access=${u.token}`;
  const same = await connect(url, { encoding: 'json', cookie, origin: `http://127.0.0.1:${port}` });
  t.teardown(() => same.ws.terminate());
  t.equal(same.hello.user.id, u.id, 'same host and port: accepted');
  for (const origin of [`http://127.0.0.1:${Number(port) + 1}`, 'http://127.0.0.1', 'http://evil.example']) {
    const r = await raw('GET', upgradeHeaders({ 'sec-websocket-protocol': SUBPROTOCOL.json, cookie, origin }));
    t.equal(r.status, 403, `${origin}: refused`);
    t.equal(r.body.error.code, 'FORBIDDEN');
  }
});

t.test('#11 a JSON text frame with invalid UTF-8 is dropped (1006), and the hub serves on', async (t) => {
  const u = await signUp();
  const c = await open(t, u);
  c.ws.send(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false });
  const closed = await c.waitClose();
  // The WebSocket layer checks text frames itself and drops the connection (documented as 1006).
  t.equal(closed.code, 1006, 'dropped');
  const again = await open(t, u);
  t.match(await again.request({ t: 'ping' }), { t: 'pong' });
});
