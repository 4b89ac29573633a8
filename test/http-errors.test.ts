// Malformed and hostile input end to end: a table of bad requests, each answered with the right
// status and error code in the one error shape, never a stack trace or SQL; oversized bodies by
// Content-Length and streamed chunked; Unicode edge cases; SQL metacharacters as plain data; CORS.
// After all of it the hub is still ready and nothing stored before was lost.

import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { Test } from 'tap';
import t from 'tap';
import { Api, type ApiResponse, uniqueName } from './helpers/api.js';
import { startTestHub } from './helpers/hub.js';

const FAST = { SB_ARGON2_MEMORY_KIB: '8192', SB_ARGON2_TIME_COST: '1', SB_REGISTER_PER_IP_PER_HOUR: '10000', SB_LOGIN_PER_IP_PER_MINUTE: '10000' };
const MAX_BODY = 2048;
const MAX_MESSAGE = 64;

const hub = await startTestHub(t, { env: { ...FAST, SB_MAX_BODY_BYTES: String(MAX_BODY), SB_MAX_MESSAGE_BYTES: String(MAX_MESSAGE) } });
const api = new Api(hub.url);
const user = await api.signUp(uniqueName('err'));
const auth = { token: user.token };
const PASSWORD = 'correct horse battery';

// Data stored before the table; it must come through unchanged.
const keep = (await api.post('/api/v1/rooms', { kind: 'group', name: 'keep me' }, auth)).body.room;
for (const [i, body] of ['first', 'second', 'third'].entries()) await api.post(`/api/v1/rooms/${keep.id}/messages`, { cid: `k${i}`, body }, auth);
const snapshot = async () => ({
  room: (await api.get(`/api/v1/rooms/${keep.id}`, auth)).body,
  history: (await api.get(`/api/v1/rooms/${keep.id}/messages`, auth)).body,
  mine: (await api.get('/api/v1/rooms', auth)).body,
  users: (await api.get('/api/v1/users?q=&limit=100', auth)).body,
});
const before = await snapshot();

const STACK = /\bat\s+(?:[\w$.<>[\] ]+\s+\()?(?:file:\/\/|node:|\/)[^\s)]*:\d+:\d+/;
const SQL = [
  /\bSELECT\b[^"]*\bFROM\b/i,
  /\bINSERT\s+INTO\b/i,
  /\bDELETE\s+FROM\b/i,
  /\bUPDATE\s+\w+\s+SET\b/i,
  /syntax error at or near/i,
  /violates .*constraint/i,
  /\bpostgres/i,
];

/** Every error answer: exactly `{"error":{"code","message",...}}` as JSON, leaking nothing. */
function errorShape(t: Test, r: ApiResponse): void {
  t.match(r.headers.get('content-type'), /^application\/json/, 'JSON error body');
  t.same(Object.keys(r.body ?? {}), ['error'], 'only an `error` member');
  const e = r.body?.error;
  t.ok(e !== null && typeof e === 'object' && !Array.isArray(e), 'error is an object');
  t.match(e?.code, /^[A-Z_]+$/, 'error.code is a code');
  t.ok(typeof e?.message === 'string' && e.message.length > 0, 'error.message is a string');
  noLeak(t, r);
}

function noLeak(t: Test, r: ApiResponse): void {
  t.notMatch(r.text, STACK, 'no stack frames');
  for (const re of SQL) t.notMatch(r.text, re, `no SQL (${re})`);
}

interface Row {
  name: string;
  method: string;
  path: string;
  /** JSON-encoded and sent as application/json. */
  json?: unknown;
  /** Sent as is (application/json unless headers say otherwise). */
  raw?: string;
  headers?: Record<string, string>;
  auth?: boolean;
  status: number;
  code: string;
  field?: string;
  allow?: string[];
}

const ROOM = `/api/v1/rooms/${keep.id}`;
const MSGS = `${ROOM}/messages`;
const reg = (extra: Record<string, unknown>) => ({ username: uniqueName('ok'), password: PASSWORD, ...extra });
const VALID_REG = JSON.stringify({ username: 'abcdef', password: PASSWORD });
const big = (n: number) => JSON.stringify({ username: 'x'.repeat(n), password: PASSWORD });

const rows: Row[] = [
  // Bodies that are not JSON, or not a JSON object.
  { name: 'truncated JSON', method: 'POST', path: '/api/v1/auth/register', raw: '{', status: 400, code: 'BAD_JSON' },
  { name: 'a misspelt literal', method: 'POST', path: '/api/v1/auth/register', raw: 'nul', status: 400, code: 'BAD_JSON' },
  { name: 'trailing garbage', method: 'POST', path: '/api/v1/auth/register', raw: `${VALID_REG} x`, status: 400, code: 'BAD_JSON' },
  { name: 'two objects', method: 'POST', path: '/api/v1/auth/register', raw: `${VALID_REG}{}`, status: 400, code: 'BAD_JSON' },
  { name: 'an empty body', method: 'POST', path: '/api/v1/auth/register', raw: '', status: 400, code: 'BAD_JSON' },
  { name: 'bad JSON behind auth', method: 'POST', path: '/api/v1/rooms', raw: '{"kind":', auth: true, status: 400, code: 'BAD_JSON' },
  { name: 'an array', method: 'POST', path: '/api/v1/auth/register', raw: '[]', status: 400, code: 'VALIDATION' },
  { name: 'a string', method: 'POST', path: '/api/v1/auth/register', raw: '"x"', status: 400, code: 'VALIDATION' },
  { name: 'a number', method: 'POST', path: '/api/v1/auth/login', raw: '1', status: 400, code: 'VALIDATION' },
  { name: 'null', method: 'POST', path: '/api/v1/rooms', raw: 'null', auth: true, status: 400, code: 'VALIDATION' },
  // Wrong types, unknown fields, missing fields.
  { name: 'username: 5', method: 'POST', path: '/api/v1/auth/register', json: reg({ username: 5 }), status: 400, code: 'VALIDATION', field: 'username' },
  {
    name: 'cookie: "yes"',
    method: 'POST',
    path: '/api/v1/auth/login',
    json: { username: user.username, password: PASSWORD, cookie: 'yes' },
    status: 400,
    code: 'VALIDATION',
    field: 'cookie',
  },
  { name: 'limit=abc', method: 'GET', path: '/api/v1/rooms?limit=abc', auth: true, status: 400, code: 'VALIDATION', field: 'limit' },
  { name: 'an unknown filter', method: 'GET', path: '/api/v1/users?name=ada', auth: true, status: 400, code: 'VALIDATION', field: 'name' },
  { name: 'a misspelt parameter', method: 'GET', path: '/api/v1/rooms?scop=public', auth: true, status: 400, code: 'VALIDATION', field: 'scop' },
  { name: 'a parameter where none is taken', method: 'GET', path: '/api/v1/auth/me?verbose=1', auth: true, status: 400, code: 'VALIDATION', field: 'verbose' },
  { name: 'limit=1.5', method: 'GET', path: '/api/v1/users?limit=1.5', auth: true, status: 400, code: 'VALIDATION', field: 'limit' },
  { name: 'before=abc', method: 'GET', path: `${MSGS}?before=abc`, auth: true, status: 400, code: 'VALIDATION', field: 'before' },
  { name: 'scope=everyone', method: 'GET', path: '/api/v1/rooms?scope=everyone', auth: true, status: 400, code: 'VALIDATION', field: 'scope' },
  { name: 'name: 5', method: 'POST', path: '/api/v1/rooms', json: { kind: 'group', name: 5 }, auth: true, status: 400, code: 'VALIDATION', field: 'name' },
  { name: 'kind unknown', method: 'POST', path: '/api/v1/rooms', json: { kind: 'circle' }, auth: true, status: 400, code: 'VALIDATION', field: 'kind' },
  { name: 'cid: 1', method: 'POST', path: MSGS, json: { cid: 1, body: 'x' }, auth: true, status: 400, code: 'VALIDATION', field: 'cid' },
  { name: 'empty cid', method: 'POST', path: MSGS, json: { cid: '', body: 'x' }, auth: true, status: 400, code: 'VALIDATION', field: 'cid' },
  { name: 'unknown field', method: 'POST', path: '/api/v1/auth/register', json: reg({ admin: true }), status: 400, code: 'VALIDATION', field: 'admin' },
  {
    name: 'unknown field behind auth',
    method: 'POST',
    path: MSGS,
    json: { cid: 'u1', body: 'x', seq: 1 },
    auth: true,
    status: 400,
    code: 'VALIDATION',
    field: 'seq',
  },
  { name: 'missing password', method: 'POST', path: '/api/v1/auth/register', json: { username: 'abcdef' }, status: 400, code: 'VALIDATION', field: 'password' },
  { name: 'missing username', method: 'POST', path: '/api/v1/auth/login', json: { password: PASSWORD }, status: 400, code: 'VALIDATION', field: 'username' },
  { name: 'missing kind', method: 'POST', path: '/api/v1/rooms', json: {}, auth: true, status: 400, code: 'VALIDATION', field: 'kind' },
  { name: 'missing body', method: 'POST', path: MSGS, json: { cid: 'm1' }, auth: true, status: 400, code: 'VALIDATION', field: 'body' },
  // Size and media type.
  { name: 'body over the limit (Content-Length)', method: 'POST', path: '/api/v1/auth/register', raw: big(MAX_BODY), status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'over the limit behind auth', method: 'POST', path: '/api/v1/rooms', raw: big(MAX_BODY), auth: true, status: 413, code: 'PAYLOAD_TOO_LARGE' },
  {
    name: 'text/plain',
    method: 'POST',
    path: '/api/v1/auth/register',
    raw: VALID_REG,
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'form-urlencoded',
    method: 'POST',
    path: '/api/v1/auth/register',
    raw: `username=abcdef&password=${encodeURIComponent(PASSWORD)}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'JSON with a charset parameter is parsed (then validated)',
    method: 'POST',
    path: '/api/v1/auth/register',
    raw: JSON.stringify({ username: 'a', password: PASSWORD }),
    headers: { 'content-type': 'application/json; charset=utf-8' },
    status: 400,
    code: 'VALIDATION',
    field: 'username',
  },
  // Routing.
  { name: 'unknown route', method: 'GET', path: '/api/v1/nope', status: 404, code: 'NOT_FOUND' },
  { name: 'unknown API version', method: 'GET', path: '/api/v2/rooms', auth: true, status: 404, code: 'NOT_FOUND' },
  { name: 'unknown sub-resource', method: 'POST', path: `${ROOM}/archive`, auth: true, status: 404, code: 'NOT_FOUND' },
  { name: 'trailing slash', method: 'GET', path: '/api/v1/rooms/', auth: true, status: 404, code: 'NOT_FOUND' },
  { name: 'preflight of an unknown route', method: 'OPTIONS', path: '/api/v1/nope', status: 404, code: 'NOT_FOUND' },
  { name: 'PUT on rooms', method: 'PUT', path: '/api/v1/rooms', auth: true, status: 405, code: 'METHOD_NOT_ALLOWED', allow: ['GET', 'POST'] },
  { name: 'PUT on a room', method: 'PUT', path: ROOM, auth: true, status: 405, code: 'METHOD_NOT_ALLOWED', allow: ['DELETE', 'GET', 'PATCH'] },
  { name: 'GET on login', method: 'GET', path: '/api/v1/auth/login', status: 405, code: 'METHOD_NOT_ALLOWED', allow: ['POST'] },
  { name: 'POST on healthz', method: 'POST', path: '/healthz', status: 405, code: 'METHOD_NOT_ALLOWED', allow: ['GET'] },
  { name: 'non-UUID room', method: 'GET', path: '/api/v1/rooms/not-a-uuid', auth: true, status: 404, code: 'NOT_FOUND' },
  { name: 'numeric room id', method: 'GET', path: '/api/v1/rooms/123/messages', auth: true, status: 404, code: 'NOT_FOUND' },
  { name: 'non-UUID join', method: 'POST', path: '/api/v1/rooms/xyz/join', auth: true, status: 404, code: 'NOT_FOUND' },
  { name: 'non-UUID user', method: 'GET', path: '/api/v1/users/abc', auth: true, status: 404, code: 'NOT_FOUND' },
  {
    name: 'SQL as a room id',
    method: 'DELETE',
    path: `/api/v1/rooms/${encodeURIComponent("'; DROP TABLE rooms; --")}`,
    auth: true,
    status: 404,
    code: 'NOT_FOUND',
  },
  { name: 'unknown UUID', method: 'GET', path: `/api/v1/rooms/${randomUUID()}`, auth: true, status: 404, code: 'NOT_FOUND' },
  { name: 'no token', method: 'GET', path: '/api/v1/rooms', status: 401, code: 'UNAUTHENTICATED' },
  // Unicode that cannot be stored, or is not Unicode.
  {
    name: 'NUL in a room name',
    method: 'POST',
    path: '/api/v1/rooms',
    json: { kind: 'group', name: 'a\u0000b' },
    auth: true,
    status: 400,
    code: 'VALIDATION',
    field: 'name',
  },
  { name: 'NUL in a message', method: 'POST', path: MSGS, json: { cid: 'n1', body: 'x\u0000' }, auth: true, status: 400, code: 'VALIDATION', field: 'body' },
  {
    name: 'NUL in a username',
    method: 'POST',
    path: '/api/v1/auth/register',
    json: reg({ username: 'abc\u0000def' }),
    status: 400,
    code: 'VALIDATION',
    field: 'username',
  },
  { name: 'NUL in a query', method: 'GET', path: '/api/v1/users?q=a%00', auth: true, status: 400, code: 'VALIDATION', field: 'q' },
  {
    name: 'lone surrogate in a name',
    method: 'POST',
    path: '/api/v1/rooms',
    raw: '{"kind":"group","name":"\\ud800"}',
    auth: true,
    status: 400,
    code: 'VALIDATION',
    field: 'name',
  },
  {
    name: 'lone low surrogate in a message',
    method: 'POST',
    path: MSGS,
    raw: '{"cid":"s1","body":"a\\udc00b"}',
    auth: true,
    status: 400,
    code: 'VALIDATION',
    field: 'body',
  },
  // SQL metacharacters are not valid in usernames.
  ...["'; DROP TABLE users; --", 'abc%', 'ab\\cd', '_abc', "o'brien"].map(
    (username): Row => ({
      name: `username ${username}`,
      method: 'POST',
      path: '/api/v1/auth/register',
      json: reg({ username }),
      status: 400,
      code: 'VALIDATION',
      field: 'username',
    }),
  ),
];

async function send(r: Row): Promise<ApiResponse> {
  const opts = { token: r.auth ? user.token : undefined, headers: r.headers ?? {}, ...(r.raw !== undefined ? { raw: r.raw } : {}) };
  return api.request(r.method, r.path, r.json, opts);
}

t.test('malformed input: status, code and field, in the one error shape', async (t) => {
  for (const row of rows) {
    await t.test(`${row.method} ${row.path.slice(0, 60)}: ${row.name}`, async (t) => {
      const r = await send(row);
      t.equal(r.status, row.status, `status: ${r.text.slice(0, 300)}`);
      t.equal(r.body?.error?.code, row.code, 'code');
      if (row.field !== undefined) t.equal(r.body?.error?.field, row.field, 'field');
      if (row.allow) t.same(r.headers.get('allow')?.split(/,\s*/).sort(), row.allow, 'Allow header');
      errorShape(t, r);
    });
  }
});

/** Raw HTTP/1.1 over a socket: writes `parts` one after another, resolves with the first response. */
function rawHttp(parts: string[]): Promise<{ status: number; headers: Record<string, string>; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(hub.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine = '', ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const body = buf.subarray(end + 4);
      if (body.length < Number(headers['content-length'])) return;
      done = true;
      sock.destroy();
      resolve({ status: Number(statusLine.split(' ')[1]), headers, text: body.toString('utf8') });
    });
    sock.on('error', (e) => done || reject(e));
    sock.on('close', () => done || reject(new Error(`closed before a complete response: ${buf.toString('latin1')}`)));
    const write = (i: number) => {
      if (i < parts.length) sock.write(parts[i] as string, () => write(i + 1));
    };
    write(0);
  });
}

t.test('oversized bodies are refused, declared or streamed', async (t) => {
  const head = (extra: string) => `POST /api/v1/auth/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n${extra}\r\n`;
  const check = (r: { status: number; headers: Record<string, string>; text: string }, what: string) => {
    t.equal(r.status, 413, `${what}: ${r.text}`);
    const body = JSON.parse(r.text);
    t.same(Object.keys(body), ['error']);
    t.equal(body.error.code, 'PAYLOAD_TOO_LARGE');
    t.equal(body.error.limit, MAX_BODY);
    t.equal(r.headers.connection?.toLowerCase(), 'close', `${what}: the connection is closed after the 413`);
  };
  // Refused on the declared length alone: the body is never sent, and the answer does not wait for it.
  check(await rawHttp([head(`Content-Length: ${MAX_BODY + 1}\r\n`)]), 'declared length');
  // Behind auth, with a token never seen before (so verifying it takes a while): the body fails
  // while the token is checked, and that must not take the process down.
  const fresh = (await api.post('/api/v1/auth/login', { username: user.username, password: PASSWORD })).body.accessToken;
  const authed = `POST /api/v1/rooms HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${fresh}\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY * 2}\r\n\r\n`;
  check(await rawHttp([authed]), 'declared length, authenticated');
  // Chunked: two chunks that together pass the limit, and no final chunk.
  const payload = big(MAX_BODY);
  const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  check(await rawHttp([head('Transfer-Encoding: chunked\r\n'), chunk(payload.slice(0, 1500)), chunk(payload.slice(1500))]), 'chunked');
  // A chunked body within the limit is read in full.
  const ok = JSON.stringify({ username: 'a', password: PASSWORD });
  const small = await rawHttp([head('Transfer-Encoding: chunked\r\n'), chunk(ok.slice(0, 10)), chunk(ok.slice(10)), '0\r\n\r\n']);
  t.equal(small.status, 400, 'a small chunked body reaches validation');
  t.equal(JSON.parse(small.text).error.field, 'username');
});

t.test('after the table: still ready, nothing lost or added', async (t) => {
  const ready = await api.get('/readyz');
  t.equal(ready.status, 200);
  t.equal(ready.body.status, 'ready');
  t.same(await snapshot(), before, 'the room, its history, my rooms and the user list are unchanged');
  t.same(
    before.history.messages.map((m: { body: string }) => m.body),
    ['first', 'second', 'third'],
  );
  t.equal((await api.post('/api/v1/auth/login', { username: user.username, password: PASSWORD })).status, 200, 'logging in still works');
});

t.test('Unicode round-trips intact; bytes count toward the message limit', async (t) => {
  const name = 'שלום مرحبا 👩‍👩‍👧‍👦';
  const created = await api.post('/api/v1/rooms', { kind: 'group', name }, auth);
  t.equal(created.status, 201);
  t.equal(created.body.room.name, name);
  const id = created.body.room.id;
  t.equal((await api.get(`/api/v1/rooms/${id}`, auth)).body.room.name, name, 'name read back verbatim');
  const bodies = [
    '🎉🇺🇳 👍🏽',
    'עברית ועربي mixed → RTL \u202Eevil\u202C',
    'e\u0301 vs é, Z\u0324\u0354\u0367\u0311\u0313',
    '\u200Bzero\u200Dwidth\uFEFF',
    '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  ];
  for (const [i, body] of bodies.entries()) {
    const r = await api.post(`/api/v1/rooms/${id}/messages`, { cid: `u${i}`, body }, auth);
    t.equal(r.status, 201);
    t.equal(r.body.message.body, body, `echoed verbatim: ${body}`);
  }
  const hist = await api.get(`/api/v1/rooms/${id}/messages`, auth);
  t.same(
    hist.body.messages.map((m: { body: string }) => m.body),
    bodies,
    'history returns every string exactly, normalisation untouched',
  );

  const emoji = '😀';
  const fits = await api.post(`/api/v1/rooms/${id}/messages`, { cid: 'e16', body: emoji.repeat(MAX_MESSAGE / 4) }, auth);
  t.equal(fits.status, 201, `${MAX_MESSAGE / 4} four-byte emoji fill the limit exactly`);
  const over = await api.post(`/api/v1/rooms/${id}/messages`, { cid: 'e17', body: emoji.repeat(MAX_MESSAGE / 4 + 1) }, auth);
  t.equal(over.status, 413, 'one more emoji (only 34 UTF-16 units) is over it');
  t.equal(over.body.error.code, 'PAYLOAD_TOO_LARGE');
  t.equal(over.body.error.field, 'body');
  errorShape(t, over);
});

t.test('SQL metacharacters are plain data', async (t) => {
  const names = ["'; DROP TABLE users; --", '100% sure', 'snake_case', 'back\\slash'];
  const ids: Record<string, string> = {};
  for (const [i, name] of names.entries()) {
    const r = await api.post('/api/v1/rooms', { kind: 'group', name }, auth);
    t.equal(r.status, 201, name);
    t.equal(r.body.room.name, name, 'stored verbatim');
    ids[name] = r.body.room.id;
    const m = await api.post(`/api/v1/rooms/${r.body.room.id}/messages`, { cid: `sql${i}`, body: `${name} ' " \\ % _ ;--` }, auth);
    t.equal(m.status, 201);
    const h = await api.get(`/api/v1/rooms/${r.body.room.id}/messages`, auth);
    t.equal(h.body.messages[0]?.body, `${name} ' " \\ % _ ;--`, 'message returned verbatim');
  }
  const search = async (q: string) => {
    const r = await api.get(`/api/v1/rooms?scope=public&limit=200&q=${encodeURIComponent(q)}`, auth);
    t.equal(r.status, 200, `q=${q}`);
    noLeak(t, r);
    return r.body.rooms.map((x: { name: string }) => x.name);
  };
  t.same(await search('%'), ['100% sure'], '% matches only itself');
  t.same(await search('0% s'), ['100% sure']);
  t.same(await search('_'), ['snake_case'], '_ matches only itself');
  t.same(await search('e_c'), ['snake_case']);
  t.same(await search('\\'), ['back\\slash'], 'a backslash matches only itself');
  t.same(await search("'; drop table"), ["'; DROP TABLE users; --"]);
  t.same(await search("'"), ["'; DROP TABLE users; --"]);
  for (const q of ["'; DROP TABLE users; --", '%', '_', '\\', "' OR '1'='1"]) {
    const r = await api.get(`/api/v1/users?q=${encodeURIComponent(q)}`, auth);
    t.equal(r.status, 200, `user search q=${q}`);
    t.same(r.body.users, [], 'matches no username');
  }
  t.equal((await api.get('/readyz')).status, 200, 'the tables are all still there');
  t.equal((await api.get(`/api/v1/rooms/${ids['100% sure']}`, auth)).status, 200);
});

t.test('CORS', async (t) => {
  const corsHub = await startTestHub(t, { env: { ...FAST, SB_CORS_ORIGINS: 'https://app.example' } });
  const capi = new Api(corsHub.url);
  const preflight = (origin: string) =>
    capi.request('OPTIONS', '/api/v1/rooms', undefined, {
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });

  const ok = await preflight('https://app.example');
  t.equal(ok.status, 204);
  t.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
  t.same(ok.headers.get('access-control-allow-methods')?.split(/,\s*/).sort(), ['GET', 'OPTIONS', 'POST']);
  t.same(ok.headers.get('access-control-allow-headers')?.split(/,\s*/).sort(), ['authorization', 'content-type', 'x-csrf-token']);
  t.equal(ok.headers.get('access-control-allow-credentials'), 'true');
  t.match(ok.headers.get('vary'), /Origin/);

  const evil = await preflight('https://evil.example');
  t.equal(evil.headers.get('access-control-allow-origin'), null, 'no allow-origin for another origin');
  t.equal(evil.headers.get('access-control-allow-methods'), null);
  t.equal(evil.headers.get('access-control-allow-headers'), null);

  const u = await capi.signUp(uniqueName('cors'));
  const fromApp = await capi.get('/api/v1/rooms', { token: u.token, headers: { origin: 'https://app.example' } });
  t.equal(fromApp.status, 200);
  t.equal(fromApp.headers.get('access-control-allow-origin'), 'https://app.example');
  t.match(fromApp.headers.get('access-control-expose-headers'), /x-request-id/);
  const fromEvil = await capi.get('/api/v1/rooms', { token: u.token, headers: { origin: 'https://evil.example' } });
  t.equal(fromEvil.headers.get('access-control-allow-origin'), null, 'a request from another origin gets no allow-origin');
  const noOrigin = await capi.get('/healthz');
  t.equal(noOrigin.headers.get('access-control-allow-origin'), null);

  const plain = await api.request('OPTIONS', '/api/v1/rooms', undefined, {
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
  });
  t.equal(plain.status, 204);
  t.equal(plain.headers.get('access-control-allow-origin'), null, 'a hub without SB_CORS_ORIGINS allows no origin');
  t.same(plain.headers.get('allow')?.split(/,\s*/).sort(), ['GET', 'OPTIONS', 'POST']);
});
