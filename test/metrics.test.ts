// Metrics and access log as an operator meets them: the node's /metrics output checked by
// Prometheus's own `promtool`, the shipped alert rules and dashboard checked against that output,
// and the access log of a real process read line by line.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { debianBinary } from '../scripts/provision.mjs';
import { VERSION } from '../src/version.js';
import { Api, uniqueName } from './helpers/api.js';
import { freshDatabase } from './helpers/db.js';
import { FAST, startTestHub, tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';
import { waitUntil } from './helpers/robots.js';
import { connect } from './helpers/ws.js';

const promtool = debianBinary('promtool', 'prometheus');

/** The value of one series (`name{labels}` exactly as exposed, labels in prom-client's order). */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

/** Metric names exposed (histogram series under their base name as well). */
const exposedNames = (text: string): Set<string> => {
  const names = new Set<string>();
  for (const l of text.split('\n')) {
    const m = /^# TYPE (\S+) /.exec(l) ?? /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(l);
    if (m?.[1]) names.add(m[1]);
  }
  return names;
};

async function busyHub(t: Test) {
  const hub = await startTestHub(t, { env: FAST });
  const api = new Api(hub.url);
  const u = await api.signUp(uniqueName());
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'metrics' }, { token: u.token })).body.room.id as string;
  t.equal((await api.get(`/api/v1/rooms/${room}`, { token: u.token })).status, 200);
  t.equal((await api.get('/no/such/path/42')).status, 404);
  const c = await connect(hub.url, { token: u.token, encoding: 'json' });
  t.equal((await c.request({ t: 'sub', room })).t, 'subscribed');
  t.equal((await c.request({ t: 'pub', room, cid: 'm1', body: 'hello' })).t, 'ack');
  await c.next((f) => f.t === 'msg', 'the delivery');
  c.sendRaw('{not json');
  await c.next((f) => f.t === 'error', 'the error for a bad frame');
  await c.barrier();
  t.equal((await c.close()).code, 1000);
  return { hub, api, room };
}

t.test('#17 metrics: promtool check metrics passes on /metrics of a node that served HTTP and WebSocket traffic', async (t) => {
  const { hub } = await busyHub(t);
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, `promtool check metrics: ${r.stdout}${r.stderr}`);
  t.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no lint findings');
  // Since-start counts are counters now, and no gauge ends in _total.
  t.match(text, /^# TYPE sb_actor_messages_handled_total counter$/m);
  t.match(text, /^# TYPE sb_actor_failures_total counter$/m);
  t.notMatch(text, /^# TYPE \S+_total gauge$/m);
});

t.test('#17 metrics: build info, HTTP requests by route pattern and status class, WebSocket connections and frames', async (t) => {
  const { hub, room } = await busyHub(t);
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  t.equal(sample(text, `sb_build_info{version="${VERSION}",node="${process.version}"}`), 1, 'build info');
  t.equal(sample(text, 'sb_http_requests_total{method="GET",route="/api/v1/rooms/:id",status="2xx"}'), 1, 'a room read, by pattern');
  t.notMatch(text, new RegExp(room), 'no raw path (room id) in any label');
  t.equal(sample(text, 'sb_http_requests_total{method="GET",route="unmatched",status="4xx"}'), 1, 'unknown paths share one label');
  t.notMatch(text, /no\/such\/path/);
  t.ok((sample(text, 'sb_http_request_duration_seconds_count{method="POST",route="/api/v1/rooms"}') ?? 0) >= 1, 'durations by pattern');
  t.equal(sample(text, 'sb_ws_connections_opened_total'), 1);
  t.equal(sample(text, 'sb_ws_connections_closed_total{code="1000"}'), 1, 'closed by the client, by code');
  t.equal(sample(text, 'sb_ws_frames_received_total{type="pub"}'), 1);
  t.equal(sample(text, 'sb_ws_frames_received_total{type="invalid"}'), 1);
  t.equal(sample(text, 'sb_ws_frames_sent_total{type="hello"}'), 1);
  t.equal(sample(text, 'sb_ws_frames_sent_total{type="ack"}'), 1);
  t.equal(sample(text, 'sb_ws_frames_sent_total{type="msg"}'), 1, 'topic deliveries count per subscriber');
  t.equal(sample(text, 'sb_ws_frames_sent_total{type="error"}'), 1);
});

t.test('#17 metrics: a close code a client picks freely does not become a label value of its own', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const u = await new Api(hub.url).signUp(uniqueName());
  for (const code of [4321, 4777]) {
    const c = await connect(hub.url, { token: u.token });
    c.ws.close(code);
    await c.waitClose();
  }
  // The client can see its close completed before the hub's close handler has counted it.
  const text = await waitUntil(
    async () => (await fetch(`${hub.url}/metrics`)).text(),
    (x) => (sample(x, 'sb_ws_connections_closed_total{code="other"}') ?? 0) >= 2,
    'both closes counted',
  );
  t.equal(sample(text, 'sb_ws_connections_closed_total{code="other"}'), 2);
  t.notMatch(text, /code="4321"/);
});

t.test('#17 access log: every request at the default level, with no query string, token or body', async (t) => {
  const secret = 'sekrit-token-value-0123456789';
  // On PostgreSQL: the embedded store's start-up is slow on a loaded machine and not under test here.
  const env = { SB_DATA_DIR: await tempDir(t), PORT: '0', HOST: '127.0.0.1', DATABASE_URL: await freshDatabase(t) };
  const p = spawnCli(t, ['serve'], env);
  const listening = await p.waitFor((l) => l.msg === 'listening', 'listening', 60_000);
  const base = listening.url as string;
  const ready = await fetch(`${base}/readyz?token=${secret}`);
  t.equal(ready.status, 200);
  const reqId = ready.headers.get('x-request-id');
  const denied = await fetch(`${base}/api/v1/rooms`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: secret }),
  });
  t.equal(denied.status, 401);
  const deniedId = denied.headers.get('x-request-id');
  const line = await p.waitFor((l) => l.msg === 'request' && l.reqId === reqId, 'the access log line of /readyz');
  t.match(line, { level: 30, method: 'GET', path: '/readyz', route: '/readyz', status: 200, ip: '127.0.0.1' });
  t.type(line.ms, 'number');
  const line2 = await p.waitFor((l) => l.msg === 'request' && l.reqId === deniedId, 'the access log line of the refused POST');
  t.match(line2, { method: 'POST', path: '/api/v1/rooms', status: 401 });
  p.child.kill('SIGTERM');
  await p.exited;
  const all = p.lines.map((l) => JSON.stringify(l)).join('\n') + p.stderr();
  t.notMatch(all, secret, 'the token (query, header or body) is nowhere in the log');
});

t.test('#18 monitoring: the shipped alert rules pass promtool, and every metric they and the dashboard use is exposed', async (t) => {
  const rules = 'deploy/prometheus-alerts.yml';
  const r = spawnSync(promtool, ['check', 'rules', rules], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, `promtool check rules: ${r.stdout}${r.stderr}`);
  t.match(r.stdout, /SUCCESS: \d+ rules found/);

  // A cluster node exposes the cluster gauges too: the dashboard shows both kinds of node.
  const natsUrl = process.env.SB_TEST_NATS_URL;
  const hub = await startTestHub(t, { env: { ...FAST, ...(natsUrl ? { NATS_URL: natsUrl, SB_CLUSTER_NAME: `m${process.pid}` } : {}) } });
  const exposed = exposedNames(await (await fetch(`${hub.url}/metrics`)).text());
  const dashboard = JSON.parse(readFileSync('deploy/grafana-dashboard.json', 'utf8'));
  const exprs = [...JSON.stringify(dashboard).matchAll(/"expr":"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
  t.ok(exprs.length >= 8, `the dashboard has panels (${exprs.length} queries)`);
  const ruleText = readFileSync(rules, 'utf8');
  const used = new Set<string>();
  for (const text of [...exprs, ruleText]) for (const m of text.matchAll(/\b((?:sb|process|nodejs)_[a-z0-9_]+)/g)) used.add(m[1] as string);
  t.ok(used.size >= 8, `metrics referenced: ${[...used].join(', ')}`);
  const base = (n: string) => n.replace(/_(bucket|count|sum)$/, '');
  const missing = [...used].filter((n) => !exposed.has(n) && !exposed.has(base(n)));
  if (!natsUrl) t.comment('SB_TEST_NATS_URL unset: cluster gauges not checked');
  t.same(natsUrl ? missing : missing.filter((n) => !/^sb_(nats_up|jetstream_up|cluster_nodes)$/.test(n)), [], 'every referenced metric is exposed by the node');
});
