// How the node serves the web console: the built files from memory, index.html revalidated and
// under a strict CSP, hashed assets cached for a year, compressed as the browser accepts; and the
// socket token a cookie session's page asks for.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { acceptedCodings, CONSOLE_CSP, ConsoleFiles } from '../src/transport/console-files.js';
import { Api } from './helpers/api.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { connect } from './helpers/ws.js';

/** A GET whose body is the bytes as sent (fetch would decompress them). */
function rawGet(url: string, encoding: string): Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { 'accept-encoding': encoding } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(parts) }));
      })
      .on('error', reject);
  });
}

t.test('the built console and API reference, as a browser fetches them', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const get = (p: string, encoding = 'identity') => fetch(hub.url + p, { headers: { 'accept-encoding': encoding } });

  for (const path of ['/', '/docs']) await t.test(path, (t) => servedPage(t, get, hub.url, path));
});

async function servedPage(t: Test, get: (p: string, encoding?: string) => Promise<Response>, base: string, path: string): Promise<void> {
  const page = await get(path);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.equal(page.headers.get('content-security-policy'), CONSOLE_CSP);
  t.equal(page.headers.get('cache-control'), 'no-cache', 'revalidated: a new build takes effect at once');
  t.equal(page.headers.get('x-frame-options'), 'DENY');
  t.equal(page.headers.get('content-encoding'), null);
  const html = await page.text();
  t.notMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script (the CSP allows none)');
  t.notMatch(html, /(src|href)="(https?:)?\/\//, 'nothing from another host');

  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] as string);
  t.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), 'a script and a stylesheet');
  for (const a of assets) {
    const plain = await get(a);
    const hub = { url: base };
    t.equal(plain.status, 200, a);
    t.equal(plain.headers.get('cache-control'), 'public, max-age=31536000, immutable', `${a} is cached for a year`);
    const body = Buffer.from(await plain.arrayBuffer());
    // Swagger UI's bundle names hosts in links and defaults it is not given; console-docs.test.ts
    // checks in Chromium that /docs fetches nothing from them.
    if (path === '/' && a.endsWith('.js')) t.notMatch(body.toString(), /https?:\/\/(?!www\.w3\.org\/)/, 'the script names no other host');
    if (body.length < 512) continue;
    const br = await rawGet(hub.url + a, 'gzip, deflate, br');
    t.equal(br.headers['content-encoding'], 'br');
    t.equal(br.headers.vary, 'accept-encoding');
    t.ok(br.body.length < body.length, `${a}: ${body.length} bytes, ${br.body.length} in Brotli`);
    t.same(brotliDecompressSync(br.body), body, `${a} in Brotli is the same file`);
    const gz = await rawGet(hub.url + a, 'gzip');
    t.equal(gz.headers['content-encoding'], 'gzip');
    t.same(gunzipSync(gz.body), body, `${a} in gzip is the same file`);
  }
}

t.test('files that are not assets', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  for (const p of ['/assets/nope.js', '/assets/..%2F..%2Fpackage.json', '/assets/index.html', '/assets/docs.html']) {
    const r = await fetch(hub.url + p);
    t.equal(r.status, 404, p);
    t.equal(((await r.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
  }
});

t.test('Accept-Encoding: q=0 refuses a coding', async (t) => {
  t.same([...acceptedCodings('gzip;q=0, br;q=0.5')], ['br']);
  t.same([...acceptedCodings('br;q=0.0,gzip')], ['gzip']);
  t.same([...acceptedCodings(undefined)], []);
});

t.test('a node whose console was not built says so', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sb-console-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.equal(new ConsoleFiles(dir).built, false);
  t.equal(new ConsoleFiles(dir).reply('index.html', 'br'), undefined);
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>x</title>');
  const files = new ConsoleFiles(dir);
  t.equal(files.built, true);
  t.equal(files.reply('index.html', 'br')?.headers?.['content-encoding'], undefined, 'without a compressed copy, the file as it is');
  t.equal(files.reply('docs.html', 'br'), undefined, 'a page that was not built is none');
});

t.test("a cookie session's socket token", async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const api = new Api(hub.url);
  const ada = await api.signUp('ada');
  const login = await api.post('/api/v1/auth/login', { username: 'ada', password: ada.password, cookie: true });
  t.equal(login.status, 200);
  const cookies = login.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const csrf = login.body.csrfToken as string;

  const r = await api.post('/api/v1/auth/socket-token', undefined, { headers: { cookie: cookies, 'x-csrf-token': csrf } });
  t.equal(r.status, 200);
  t.ok(Date.parse(r.body.expiresAt) > Date.now());
  // It opens a WebSocket as ada, in this session...
  const ws = await connect(hub.url, { token: r.body.token, encoding: 'json' });
  t.teardown(() => ws.close().catch(() => {}));
  t.equal(ws.hello.user.id, ada.id, 'the socket is ada’s');
  // ...and nothing else: the REST API refuses it, as a bearer token or as a cookie.
  const rest = await api.get('/api/v1/auth/me', { token: r.body.token });
  t.equal(rest.status, 401);
  t.equal(rest.body.error.code, 'TOKEN_INVALID');
  t.equal((await api.get('/api/v1/auth/me', { headers: { cookie: `sb_access=${r.body.token}` } })).status, 401);
  // It ends with the session.
  t.equal((await api.post('/api/v1/auth/logout', undefined, { headers: { cookie: cookies, 'x-csrf-token': csrf } })).status, 204);
  await t.rejects(connect(hub.url, { token: r.body.token, encoding: 'json' }), 'a socket token of an ended session opens nothing');

  const again = await api.post('/api/v1/auth/login', { username: 'ada', password: ada.password, cookie: true });
  const cookies2 = again.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const noCsrf = await api.post('/api/v1/auth/socket-token', undefined, { headers: { cookie: cookies2 } });
  t.equal(noCsrf.status, 403);
  t.equal(noCsrf.body.error.code, 'CSRF', 'another site cannot read it: it lacks the CSRF token');
  const bearer = await api.post('/api/v1/auth/socket-token', undefined, { token: ada.token });
  t.equal(bearer.status, 400, 'a bearer caller already holds its token');
  t.equal(bearer.body.error.code, 'VALIDATION');
  t.equal((await api.post('/api/v1/auth/socket-token')).status, 401);
});
