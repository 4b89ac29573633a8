// Operational behaviour over real sockets: readiness through a store outage and a schema from a
// newer build, 503 UNAVAILABLE when the store is gone, HTTPS with a configured certificate, and a
// cid raced into two rooms.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import path from 'node:path';
import t from 'tap';
import { Api, uniqueName } from './helpers/api.js';
import { startTestHub, tempDir } from './helpers/hub.js';

t.test('readiness follows the store; requests get 503 UNAVAILABLE when it is gone', async (t) => {
  const hub = await startTestHub(t);
  const api = new Api(hub.url);
  const u = await api.signUp(uniqueName());
  t.equal((await api.get('/readyz')).status, 200);

  // A newer build migrated further during a rolling upgrade: this node stays ready.
  await hub.store.db.sql`INSERT INTO schema_migrations (version, name) VALUES (999, 'from a newer build')`;
  const ahead = await api.get('/readyz');
  t.equal(ahead.status, 200);
  t.equal(ahead.body.schema, 999);

  await hub.store.close();
  const ready = await api.get('/readyz');
  t.equal(ready.status, 503);
  t.same(ready.body, { status: 'unavailable', reason: 'store unreachable' });
  const rooms = await api.get('/api/v1/rooms', { token: u.token });
  t.equal(rooms.status, 503);
  t.equal(rooms.body.error.code, 'UNAVAILABLE');
  t.equal(rooms.headers.get('retry-after'), '5');
  t.equal((await api.get('/healthz')).status, 200, 'still alive');
});

t.test('the same cid raced into two rooms: one message, the other request gets 409', async (t) => {
  const hub = await startTestHub(t);
  const api = new Api(hub.url);
  const u = await api.signUp(uniqueName());
  const ids: string[] = [];
  for (const name of ['one', 'two']) ids.push((await api.post('/api/v1/rooms', { kind: 'group', name }, { token: u.token })).body.room.id);
  for (let round = 0; round < 5; round++) {
    const cid = `race-${round}`;
    const res = await Promise.all(ids.map((id) => api.post(`/api/v1/rooms/${id}/messages`, { cid, body: 'hello' }, { token: u.token })));
    t.same(res.map((r) => r.status).sort(), [201, 409], `round ${round}: one stored, one conflict`);
    t.equal(res.find((r) => r.status === 409)?.body.error.code, 'CONFLICT');
  }
  const histories = await Promise.all(ids.map((id) => api.get(`/api/v1/rooms/${id}/messages`, { token: u.token })));
  t.equal(
    histories.reduce((n, h) => n + h.body.messages.length, 0),
    5,
    'five messages in all',
  );
  for (const h of histories)
    t.same(
      h.body.messages.map((m: { seq: number }) => m.seq),
      Array.from({ length: h.body.messages.length }, (_, i) => i + 1),
      'contiguous seqs',
    );
});

t.test('HTTPS with SB_TLS_CERT_FILE / SB_TLS_KEY_FILE', async (t) => {
  const dir = await tempDir(t);
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  const hub = await startTestHub(t, { env: { SB_TLS_CERT_FILE: cert, SB_TLS_KEY_FILE: key } });
  t.match(hub.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    request(`${hub.url}/healthz`, { ca: readFileSync(cert) }, (r) => {
      let body = '';
      r.on('data', (d) => {
        body += d;
      });
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
  t.equal(res.status, 200);
  t.same(JSON.parse(res.body), { status: 'ok' });
});
