// The hub as a process, the way `npm start` runs it: starts on an empty data dir with no database
// server and no configuration, keeps its data across restarts, and shuts down cleanly on SIGTERM
// after finishing the requests in flight.

import { request } from 'node:http';
import t from 'tap';
import { Api } from './helpers/api.js';
import { tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';

const serve = async (t: Parameters<typeof spawnCli>[0], dataDir: string) => {
  const p = spawnCli(t, ['serve'], { SB_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' });
  const listening = await p.waitFor((l) => l.msg === 'listening', 'listening', 60_000);
  return { p, api: new Api(listening.url as string), port: listening.port as number };
};

t.test('embedded default: ready, persistent across restarts, clean SIGTERM', async (t) => {
  const dataDir = await tempDir(t);
  const first = await serve(t, dataDir);
  const ready = await first.api.get('/readyz');
  t.equal(ready.status, 200);
  t.equal(ready.body.status, 'ready');
  t.equal(first.p.lines.find((l) => l.msg === 'listening')?.store, 'embedded');

  const alice = await first.api.signUp('alice');
  const room = await first.api.post('/api/v1/rooms', { kind: 'group', name: 'persisted' }, { token: alice.token });
  t.equal(room.status, 201);
  const posted = await first.api.post(`/api/v1/rooms/${room.body.room.id}/messages`, { cid: 'p1', body: 'survives restarts' }, { token: alice.token });
  t.equal(posted.status, 201);

  first.p.child.kill('SIGTERM');
  t.same(await first.p.exited, { code: 0, signal: null }, 'exits 0 on SIGTERM');
  t.ok(first.p.lines.some((l) => l.msg === 'shut down'));

  const second = await serve(t, dataDir);
  const login = await second.api.post('/api/v1/auth/login', { username: 'alice', password: alice.password });
  t.equal(login.status, 200, 'the user is still there');
  const history = await second.api.get(`/api/v1/rooms/${room.body.room.id}/messages`, { token: login.body.accessToken });
  t.same(
    history.body.messages.map((m: { body: string; seq: number }) => [m.seq, m.body]),
    [[1, 'survives restarts']],
    'rooms and messages are still there',
  );
  t.equal(
    second.p.lines.find((l) => l.msg === 'generated a new JWT signing key in the data dir'),
    undefined,
    'the signing key is reused',
  );
  second.p.child.kill('SIGTERM');
  t.equal((await second.p.exited).code, 0);
});

t.test('SIGTERM finishes a request in flight before exiting', async (t) => {
  const dataDir = await tempDir(t);
  const { p, port } = await serve(t, dataDir);
  // A registration whose body is still arriving when SIGTERM lands: the hub must answer it.
  const body = JSON.stringify({ username: 'late', password: 'correct horse battery' });
  let headSent!: () => void;
  const sent = new Promise<void>((r) => {
    headSent = r;
  });
  const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/v1/auth/register',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.write(body.slice(0, 10), () => headSent());
    p.waitFor((l) => l.msg === 'shutting down: no new connections', 'shutdown start').then(
      () => req.end(body.slice(10)),
      (e) => reject(e),
    );
  });
  // The half-sent request went out first; once a later request on another connection has been
  // answered, the hub's single event loop has read the first one's headers too.
  await sent;
  const healthz = await new Api(`http://127.0.0.1:${port}`).get('/healthz');
  t.equal(healthz.status, 200);
  p.child.kill('SIGTERM');
  const shutting = await p.waitFor((l) => l.msg === 'shutting down: no new connections', 'shutdown start');
  t.equal(shutting.inFlight, 1, 'one request was in flight at SIGTERM');
  const res = await response;
  t.equal(res.status, 201, `in-flight request completed: ${res.text}`);
  t.equal((await p.exited).code, 0);
});

t.test('a bad configuration value stops the process with a message naming it', async (t) => {
  const p = spawnCli(t, ['serve'], { PORT: 'eighty', SB_DATA_DIR: await tempDir(t) });
  t.equal((await p.exited).code, 2);
  t.match(p.stderr(), /PORT: expected an integer from 0 to 65535, got "eighty"/);
  const tls = spawnCli(t, ['serve'], {
    SB_TLS_CERT_FILE: '/nonexistent/cert.pem',
    SB_TLS_KEY_FILE: '/nonexistent/key.pem',
    PORT: '0',
    SB_DATA_DIR: await tempDir(t),
  });
  t.equal((await tls.exited).code, 2);
  t.match(tls.stderr(), /^switchboard: SB_TLS_CERT_FILE: cannot read \/nonexistent\/cert.pem \(ENOENT\)/);
});

t.test('one process per embedded data dir', async (t) => {
  const dataDir = await tempDir(t);
  const { p } = await serve(t, dataDir);
  const second = spawnCli(t, ['user', 'create', 'intruder'], { SB_DATA_DIR: dataDir });
  second.child.stdin?.end();
  t.equal((await second.exited).code, 2);
  t.match(second.stderr(), new RegExp(`SB_DATA_DIR: .* is in use by process ${p.child.pid}`));
  p.child.kill('SIGKILL');
  await p.exited;
  // A crash leaves the pid file behind; the next start finds its owner dead and takes over.
  const again = await serve(t, dataDir);
  t.equal((await again.api.get('/readyz')).status, 200);
  again.p.child.kill('SIGTERM');
  t.equal((await again.p.exited).code, 0);
});
