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
import { connect } from './helpers/ws.js';

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

t.test('/metrics: Prometheus text with what the node is doing', async (t) => {
  const hub = await startTestHub(t, { env: { SB_ARGON2_MEMORY_KIB: '8192', SB_ARGON2_TIME_COST: '1' } });
  const api = new Api(hub.url);
  const value = (text: string, name: string) => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const before = await fetch(`${hub.url}/metrics`);
  t.equal(before.status, 200);
  t.match(before.headers.get('content-type'), /^text\/plain/);
  const text0 = await before.text();
  t.equal(value(text0, 'sb_messages_published_total'), 0, 'nothing published yet');
  t.equal(value(text0, 'sb_store_up'), 1, 'the store answers');
  t.ok(value(text0, 'process_resident_memory_bytes'), 'the process metrics are there');
  t.notMatch(text0, /sb_nats_up/, 'no cluster gauges on a single node');

  const u = await api.signUp(uniqueName());
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'metrics' }, { token: u.token })).body.room.id as string;
  const c = await connect(hub.url, { token: u.token });
  t.teardown(() => c.ws.terminate());
  t.equal((await c.request({ t: 'sub', room })).t, 'subscribed');
  for (let i = 0; i < 3; i++) t.equal((await c.request({ t: 'pub', room, cid: `m${i}`, body: 'hello' })).t, 'ack');
  await c.next((f) => f.t === 'msg' && f.seq === 3, 'the third delivery');
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  t.equal(value(text, 'sb_messages_published_total'), 3, 'three messages published');
  t.ok((value(text, 'sb_deliveries_total') ?? 0) >= 3, 'delivered to the subscriber');
  t.equal(value(text, 'sb_ws_connections'), 1, 'one WebSocket');
  t.ok((value(text, 'sb_actors') ?? 0) >= 1, 'the room actor is live');
  t.ok((value(text, 'sb_commit_seconds_count') ?? 0) >= 1, 'commits were timed');
});
