// The nginx example as an operator runs it: deploy/nginx.conf.example with only its "EDIT" lines
// substituted (ports, certificate, upstream, log and pid paths), run by Debian's nginx in the
// foreground in front of a real node. Browsers' HTTPS and WSS and a robot's mutual TLS go through
// it; /metrics must be refused and no token may reach its access log.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { watch } from 'node:fs';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import { debianBinary, debianFile, freePort } from '../scripts/provision.mjs';
import { defaultCaFiles, initCa, issueServerCert } from '../src/auth/pki.js';
import { RobotClient } from '../src/robot-kit/robot-client.js';
import { CONSOLE_CSP } from '../src/transport/console-files.js';
import { tempDir } from './helpers/hub.js';
import { CHANNELS, startRobotHub } from './helpers/robots.js';
import { RawClient, SUBPROTOCOL } from './helpers/ws.js';

const nginx = debianBinary('nginx', 'nginx');
const streamModule = debianFile('/usr/lib/nginx/modules/ngx_stream_module.so', 'libnginx-mod-stream');

/** Replaces `from` exactly `count` times: the test fails when the example drifts from what it substitutes. */
function substitute(conf: string, from: string, to: string, count = 1): string {
  const parts = conf.split(from);
  if (parts.length - 1 !== count) throw new Error(`deploy/nginx.conf.example: expected ${count} × ${JSON.stringify(from)}, found ${parts.length - 1}`);
  return parts.join(to);
}

/** Resolves once `file` exists in `dir` (nginx writes its pid file after binding its listeners). */
function appears(dir: string, file: string, proc: ChildProcess, stderr: () => string, ms = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = watch(dir);
    const done = (e?: Error) => {
      clearTimeout(timer);
      w.close();
      proc.off('exit', exited);
      e ? reject(e) : resolve();
    };
    const timer = setTimeout(() => done(new Error(`nginx did not write ${file} within ${ms} ms: ${stderr()}`)), ms);
    const exited = () => done(new Error(`nginx exited: ${stderr()}`));
    proc.once('exit', exited);
    w.on('change', (_type, name) => {
      if (name === file) done();
    });
  });
}

function get(
  port: number,
  ca: string,
  p: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: p, ca, servername: 'localhost', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${p}: no answer within 10 s`)));
    req.on('error', reject);
  });
}

/** Any request, its body as bytes: what a file upload and a ranged download need. */
function send(
  port: number,
  ca: string,
  method: string,
  p: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path: p, ca, servername: 'localhost', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${p}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

t.setTimeout(90_000);

t.test('#16 nginx example: HTTPS, WSS and robot passthrough reach the node; /metrics is refused; no token in the access log', async (t) => {
  const rh = await startRobotHub(t, { env: { SB_TRUST_PROXY: 'true' } });
  const nodePort = Number(new URL(rh.hub.url).port);
  const robotPort = rh.hub.robots?.port as number;

  // The proxy's own certificate, as an operator's would come from their CA.
  const dir = await tempDir(t, 'sb-nginx-');
  const proxyCa = await initCa(defaultCaFiles(path.join(dir, 'ca')));
  const server = await issueServerCert(proxyCa);
  await writeFile(path.join(dir, 'fullchain.pem'), server.certPem);
  await writeFile(path.join(dir, 'privkey.pem'), server.keyPem, { mode: 0o600 });
  // Debian's nginx loads modules relative to its prefix (/usr/share/nginx/modules links here).
  await symlink(path.dirname(streamModule), path.join(dir, 'modules'));

  const [httpPort, httpsPort, robotProxyPort] = [await freePort(), await freePort(), await freePort()];
  let conf = await readFile('deploy/nginx.conf.example', 'utf8');
  conf = substitute(conf, 'pid /run/nginx.pid;', `pid ${dir}/nginx.pid;`);
  conf = substitute(conf, 'error_log /var/log/nginx/error.log warn;', `error_log ${dir}/error.log warn;`);
  conf = substitute(conf, 'access_log /var/log/nginx/switchboard-access.log switchboard;', `access_log ${dir}/access.log switchboard;`);
  conf = substitute(conf, 'server 127.0.0.1:8080;', `server 127.0.0.1:${nodePort};`);
  conf = substitute(conf, 'proxy_pass 127.0.0.1:9443;', `proxy_pass 127.0.0.1:${robotPort};`);
  conf = substitute(conf, 'listen 80;', `listen 127.0.0.1:${httpPort};`);
  conf = substitute(conf, 'listen [::]:80;', `listen [::1]:${httpPort};`);
  conf = substitute(conf, 'listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`);
  conf = substitute(conf, 'listen [::]:443 ssl http2;', `listen [::1]:${httpsPort} ssl http2;`);
  conf = substitute(conf, 'listen 8443;', `listen 127.0.0.1:${robotProxyPort};`);
  conf = substitute(conf, 'listen [::]:8443;', `listen [::1]:${robotProxyPort};`);
  conf = substitute(conf, '/etc/letsencrypt/live/chat.example.com/fullchain.pem', `${dir}/fullchain.pem`);
  conf = substitute(conf, '/etc/letsencrypt/live/chat.example.com/privkey.pem', `${dir}/privkey.pem`);
  const confFile = path.join(dir, 'nginx.conf');
  await writeFile(confFile, conf);

  const check = spawnSync(nginx, ['-t', '-p', `${dir}/`, '-c', confFile], { encoding: 'utf8', timeout: 20_000 });
  t.equal(check.status, 0, `nginx -t: ${check.stderr}`);

  const proc = spawn(nginx, ['-p', `${dir}/`, '-c', confFile, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  });
  await appears(dir, 'nginx.pid', proc, () => stderr);
  const ca = proxyCa.certPem;

  // HTTPS to the node.
  const ready = await get(httpsPort, ca, '/readyz');
  t.equal(ready.status, 200, 'GET /readyz over HTTPS');
  t.equal(JSON.parse(ready.body).status, 'ready');

  // The web console, with the node's CSP and caching, through the proxy.
  const page = await get(httpsPort, ca, '/');
  t.equal(page.status, 200, 'GET / (the console) over HTTPS');
  t.equal(page.headers['content-security-policy'], CONSOLE_CSP);
  const script = /src="(\/assets\/[^"]+\.js)"/.exec(page.body)?.[1] as string;
  const asset = await get(httpsPort, ca, script, { 'accept-encoding': 'br' });
  t.equal(asset.status, 200, `GET ${script}`);
  t.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.equal(asset.headers['content-encoding'], 'br', 'the node’s Brotli copy passes through');

  // /metrics: served by the node, refused by the proxy however the path is spelled.
  t.equal((await fetch(`${rh.hub.url}/metrics`)).status, 200, 'the node itself serves /metrics (to the scraper)');
  for (const p of ['/metrics', '/metrics?format=text', '//metrics', '/%6Detrics', '/./metrics']) {
    const r = await get(httpsPort, ca, p);
    t.equal(r.status, 403, `${p} refused at the proxy`);
    t.notMatch(r.body, /sb_build_info/);
  }
  t.equal((await get(httpsPort, ca, '/metrics/')).status, 404, 'no other spelling reaches the metrics');

  // Plain HTTP is redirected.
  const plain = await fetch(`http://127.0.0.1:${httpPort}/readyz?x=1`, { redirect: 'manual' });
  t.equal(plain.status, 301);
  t.match(plain.headers.get('location'), /^https:\/\/[^/]+\/readyz\?x=1$/);

  // WSS with the token in the query string (what browsers must do) and in the header.
  const owner = await rh.signUp('owner');
  for (const how of ['query', 'header'] as const) {
    const url = `wss://127.0.0.1:${httpsPort}/ws${how === 'query' ? `?token=${owner.token}` : ''}`;
    const ws = new WebSocket(url, [SUBPROTOCOL.json], {
      ca,
      headers: how === 'header' ? { authorization: `Bearer ${owner.token}` } : {},
    });
    const c = new RawClient(ws, 'json');
    const hello = await c.next((f) => f.t === 'hello', `hello over WSS (token in the ${how})`);
    t.equal(hello.user.id, owner.id, `WSS with the token in the ${how}`);
    await c.barrier();
    t.equal((await c.close()).code, 1000);
  }

  // A file larger than the proxy's 64k body limit for JSON goes up (its own location), and comes
  // back by ranges.
  const file = randomBytes(3 * 1024 * 1024 + 17);
  const auth = { authorization: `Bearer ${owner.token}` };
  const up = await send(
    httpsPort,
    ca,
    'POST',
    '/api/v1/attachments?name=big.pdf',
    { ...auth, 'content-type': 'application/pdf', 'content-length': String(file.length) },
    file,
  );
  t.equal(up.status, 201, `a 3 MiB upload through nginx: ${up.body.toString().slice(0, 200)}`);
  const id = JSON.parse(up.body.toString()).id as string;
  const whole = await send(httpsPort, ca, 'GET', `/api/v1/attachments/${id}`, auth);
  t.ok(whole.status === 200 && whole.body.equals(file), 'downloaded whole through nginx');
  const part = await send(httpsPort, ca, 'GET', `/api/v1/attachments/${id}`, { ...auth, range: 'bytes=1048570-1048580' });
  t.equal(part.status, 206);
  t.equal(part.headers['content-range'], `bytes 1048570-1048580/${file.length}`);
  t.ok(part.body.equals(file.subarray(1048570, 1048581)), 'a range through nginx');
  const json = await send(httpsPort, ca, 'POST', '/api/v1/rooms', { ...auth, 'content-type': 'application/json' }, Buffer.alloc(70_000, 32));
  t.equal(json.status, 413, 'other bodies keep the 64k limit at the proxy');

  // A robot through the stream proxy: the node checks its client certificate end to end.
  const enrolled = await rh.enroll(owner);
  const robot = await RobotClient.connect({
    host: '127.0.0.1',
    port: robotProxyPort,
    cert: enrolled.cert,
    key: enrolled.key,
    ca: rh.caPem,
    channels: CHANNELS,
  });
  t.teardown(() => robot.destroy());
  t.ok(robot, 'the robot was welcomed through nginx');
  const seen = await rh.api.get(`/api/v1/robots/${enrolled.id}/status`, { token: owner.token });
  t.equal(seen.body.status.online, true, 'the node sees the robot online');
  // Without a client certificate the node (not nginx) refuses the handshake.
  const anonymous = { host: '127.0.0.1', port: robotProxyPort, ca: rh.caPem, channels: CHANNELS, cert: '', key: '' };
  const refused = await RobotClient.connect(anonymous).then(
    (c) => {
      c.destroy();
      return false;
    },
    () => true,
  );
  t.ok(refused, 'a robot without a certificate is refused through the proxy');

  // Foxglove opens the robot through the proxy (the token in the query, as the app must send it).
  const fox = new WebSocket(`wss://127.0.0.1:${httpsPort}/foxglove?robot=${enrolled.id}&token=${owner.token}`, ['foxglove.websocket.v1'], { ca });
  const advertised = await new Promise<string[]>((resolve, reject) => {
    fox.on('message', (d: Buffer, binary: boolean) => {
      const m = binary ? undefined : JSON.parse(d.toString('utf8'));
      if (m?.op === 'advertise') resolve(m.channels.map((c: { topic: string }) => c.topic).sort());
    });
    fox.once('error', reject);
  });
  t.same(advertised, ['/log', '/pose'], "Foxglove's protocol through nginx: the robot's channels advertised");
  // Closed before nginx stops: its access log line is written when the upgraded request ends.
  await new Promise((resolve) => {
    fox.once('close', resolve);
    fox.close();
  });

  // Stop nginx (its access log is unbuffered: every line is written when its request ends).
  robot.destroy();
  proc.kill('SIGTERM');
  await exited;
  const access = await readFile(path.join(dir, 'access.log'), 'utf8');
  t.match(access, /"GET \/readyz HTTP\/[\d.]+" 200 /, 'requests are logged');
  t.match(access, /"GET \/ws HTTP\/1\.1" 101 /, 'WebSocket upgrades are logged, path only');
  t.match(access, /"GET \/foxglove HTTP\/1\.1" 101 /, 'the Foxglove upgrade too, path only');
  t.match(access, /"GET \/metrics HTTP\/[\d.]+" 403 /);
  t.notMatch(access, owner.token, 'no access token in the access log');
  t.notMatch(access, /token=/, 'no query string in the access log');
  const errors = await readFile(path.join(dir, 'error.log'), 'utf8');
  t.notMatch(errors, owner.token, 'no access token in the error log');
});
