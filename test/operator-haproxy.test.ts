// The operator's cluster, as an outsider meets it: a fresh 3-server NATS cluster and three node
// processes started at the same moment, real HAProxy in front running deploy/haproxy.cfg.example
// as shipped (only addresses, ports and the certificate path substituted, as an operator would),
// users joining through different nodes, then a node and a NATS server SIGKILLed under publishing.
// Through the proxy: every acked message is delivered to every subscriber once and in order and
// stored once, and the clients of the dead node are back within 3 s. Prints the failover time and
// the acked-lost count:
//   npm run -s build && SB_TEST_ADMIN_URL=postgres://postgres@127.0.0.1:5432/test \
//     npx tap --disable-coverage -j1 test/operator-haproxy.test.ts

import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { debianBinary, freePort, throwawayNats } from '../scripts/provision.mjs';
import { initCa, issueServerCert } from '../src/auth/pki.js';
import { Api, type ApiResponse, type RequestOptions, storedMessages, uniqueName } from './helpers/api.js';
import { freshDatabase } from './helpers/db.js';
import { FAST, tempDir, UNLIMITED } from './helpers/hub.js';
import { type Spawned, spawnCli } from './helpers/process.js';
import { waitUntil } from './helpers/robots.js';
import { connect, type Frame, type RawClient } from './helpers/ws.js';

interface NodePorts {
  http: number;
  robot: number;
}

/** The shipped example, adapted the way an operator does: addresses, ports and the certificate path; nothing else. */
function adaptHaproxyExample(shipped: string, o: { publicPort: number; robotPort: number; certFile: string; nodes: NodePorts[] }): string {
  const swap = (s: string, from: string, to: string) => {
    if (!s.includes(from)) throw new Error(`the shipped haproxy.cfg.example no longer contains "${from}"`);
    return s.replace(from, to);
  };
  let s = swap(shipped, 'bind :443 ssl crt /etc/haproxy/switchboard.pem', `bind 127.0.0.1:${o.publicPort} ssl crt ${o.certFile}`);
  s = swap(s, 'bind :8443', `bind 127.0.0.1:${o.robotPort}`);
  for (const [i, n] of o.nodes.entries()) {
    s = swap(s, `10.0.0.1${i + 1}:8080`, `127.0.0.1:${n.http}`);
    s = swap(s, `10.0.0.1${i + 1}:8443 check port 8080`, `127.0.0.1:${n.robot} check port ${n.http}`);
  }
  if (s.includes('10.0.0.')) throw new Error('an address of the example was left unsubstituted');
  return s;
}

/** The REST client over HTTPS, trusting the proxy's throwaway CA (Node's fetch takes no CA). */
class HttpsApi extends Api {
  constructor(
    base: string,
    private readonly ca: string,
  ) {
    super(base);
  }
  override request<T = any>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) headers['content-type'] = 'application/json';
    return new Promise((resolve, reject) => {
      const req = httpsRequest(this.base + path, { method, headers, ca: this.ca }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
          resolve({ status: res.statusCode ?? 0, headers: h, body: parsed as T, text });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }
}

/** `show stat` on HAProxy's stats socket: one record per proxy/server. */
function showStat(socket: string): Promise<Record<string, string>[]> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(socket);
    let text = '';
    c.on('error', reject);
    c.on('data', (d) => {
      text += d;
    });
    c.on('end', () => {
      const [head, ...rows] = text.trim().split('\n');
      const cols = (head ?? '').replace(/^# /, '').split(',');
      resolve(rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i] ?? String(i), v]))));
    });
    c.end('show stat\n');
  });
}

/** A client through the proxy that reconnects (through the proxy) whenever its socket closes. */
abstract class ProxyClient {
  client!: RawClient;
  /** Outages: when the socket closed and when the client was back (see `back`). */
  readonly outages: { closedAt: number; backAt?: number }[] = [];
  stopped = false;
  constructor(
    protected readonly url: string,
    protected readonly ca: string,
    protected readonly token: string,
  ) {}
  async start(): Promise<void> {
    const c = await connect(this.url, { token: this.token, ca: this.ca }, 5_000);
    this.client = c;
    c.ws.on('message', () => {
      for (const f of c.frames.splice(0)) this.onFrame(f);
    });
    c.closed.then(() => {
      if (!this.stopped) void this.reconnect();
    });
    this.opened();
  }
  /** What a real client does: connect again, with a short pause after a refusal (HAProxy's 503 while it has not yet seen the node die). */
  private async reconnect(): Promise<void> {
    this.outages.push({ closedAt: Date.now() });
    for (;;) {
      try {
        return await this.start();
      } catch {
        if (this.stopped) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  protected back(): void {
    const o = this.outages.at(-1);
    if (o && o.backAt === undefined) o.backAt = Date.now();
  }
  protected abstract opened(): void;
  protected abstract onFrame(f: Frame): void;
}

class Follower extends ProxyClient {
  readonly seqs: number[] = [];
  subscribed = false;
  constructor(
    url: string,
    ca: string,
    token: string,
    private readonly room: string,
  ) {
    super(url, ca, token);
  }
  protected opened(): void {
    this.subscribed = false;
    const last = this.seqs.at(-1);
    this.client.send({ t: 'sub', id: this.client.id(), room: this.room, ...(last === undefined ? {} : { since: last }) });
  }
  protected onFrame(f: Frame): void {
    if (f.t === 'msg') this.seqs.push(f.seq);
    else if (f.t === 'subscribed') {
      this.subscribed = true;
      this.back();
    } else if (f.t === 'error') throw new Error(`follower: ${JSON.stringify(f)}`);
  }
}

class Publisher extends ProxyClient {
  readonly acked = new Map<string, number>();
  private readonly unacked = new Map<number, { cid: string; body: string }>();
  private next = 0;
  constructor(
    url: string,
    ca: string,
    token: string,
    private readonly room: string,
    private readonly name: string,
    private readonly total: number,
  ) {
    super(url, ca, token);
  }
  get done(): boolean {
    return this.acked.size === this.total;
  }
  protected opened(): void {
    // What was in flight on the old connection is sent again with the same cid.
    const pending = [...this.unacked.values()];
    this.unacked.clear();
    for (const p of pending) this.send(p.cid, p.body);
    this.fill();
  }
  protected onFrame(f: Frame): void {
    const p = this.unacked.get(f.id);
    if (!p) return;
    this.unacked.delete(f.id);
    if (f.t === 'ack') {
      this.acked.set(p.cid, f.seq);
      this.back();
    } else if (f.t === 'nack' && ['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED'].includes(f.code)) this.send(p.cid, p.body);
    else throw new Error(`publisher: ${JSON.stringify(f)}`);
    this.fill();
  }
  private fill(): void {
    while (this.unacked.size < 10 && this.next < this.total) {
      const n = this.next++;
      this.send(`${this.name}-${n}`, `${this.name} #${n}`);
    }
  }
  private send(cid: string, body: string): void {
    const id = this.client.id();
    this.unacked.set(id, { cid, body });
    if (!this.client.closeInfo) this.client.send({ t: 'pub', id, room: this.room, cid, body });
  }
}

function until(cond: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const check = () => (cond() ? resolve() : Date.now() > deadline ? reject(new Error(`timed out waiting for ${what}`)) : setTimeout(check, 5));
    check();
  });
}

async function startHaproxy(t: Test, dir: string, cfg: string): Promise<{ proc: ChildProcess; socket: string; stderr: () => string }> {
  const bin = debianBinary('haproxy', 'haproxy');
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, cfg);
  // The test's own addition, in a second file: a stats socket to read the health checks' verdicts.
  const socket = path.join(dir, 'haproxy.sock');
  const extra = path.join(dir, 'test-stats.cfg');
  await writeFile(extra, `global\n    stats socket ${socket} mode 600 level user\n`);
  const proc = spawn(bin, ['-db', '-f', file, '-f', extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (d) => {
    err = (err + d).slice(-8192);
  });
  proc.stdout?.on('data', (d) => {
    err = (err + d).slice(-8192);
  });
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
  });
  await waitUntil(
    () =>
      showStat(socket).then(
        () => true,
        () => proc.exitCode !== null,
      ),
    (ok) => ok,
    'HAProxy answering on its stats socket',
    15_000,
  );
  if (proc.exitCode !== null) throw new Error(`haproxy exited (${proc.exitCode}): ${err}`);
  return { proc, socket, stderr: () => err };
}

t.test('#14 #16 operator, cluster: NATS, nodes and HAProxy (example as shipped) start together; a node and a NATS server die under publishing', async (t) => {
  const dir = await tempDir(t, 'sb-operator-');
  const ca = await initCa({ certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key') });
  const server = await issueServerCert(ca, { hostnames: ['127.0.0.1', 'localhost'] });
  const certFile = path.join(dir, 'switchboard.pem');
  await writeFile(certFile, `${server.certPem.trim()}\n${server.keyPem.trim()}\n`, { mode: 0o600 });

  const nodePorts: NodePorts[] = [];
  for (let i = 0; i < 3; i++) nodePorts.push({ http: await freePort(), robot: await freePort() });
  const publicPort = await freePort();
  const shipped = await readFile('deploy/haproxy.cfg.example', 'utf8');
  const cfg = adaptHaproxyExample(shipped, { publicPort, robotPort: await freePort(), certFile, nodes: nodePorts });
  const haproxy = await startHaproxy(t, dir, cfg);

  const keyFile = path.join(dir, 'jwt.pem');
  await writeFile(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  const env = {
    ...FAST,
    ...UNLIMITED,
    HOST: '127.0.0.1',
    DATABASE_URL: await freshDatabase(t),
    SB_CLUSTER_NAME: `o${randomBytes(6).toString('hex')}`,
    SB_JWT_KEY_FILE: keyFile,
    SB_DATA_DIR: dir,
    SB_TRUST_PROXY: 'true',
  };
  const nodes: Spawned[] = [];
  const nats = await throwawayNats({
    servers: 3,
    onSpawned: (urls) => {
      for (const [i, p] of nodePorts.entries())
        nodes.push(
          spawnCli(t, ['serve'], { ...env, NATS_URL: urls.join(','), PORT: String(p.http), SB_ROBOT_PORT: String(p.robot), SB_NODE_ID: `node${i + 1}` }),
        );
    },
  });
  t.teardown(() => nats.stop());
  const listening = await Promise.all(nodes.map((p, i) => p.waitFor((l) => l.msg === 'listening', `node${i + 1} listening`, 90_000)));
  t.ok(
    nodes.every((p) => p.child.exitCode === null),
    'no node exited while NATS started',
  );

  // Item 14: every backend's health check passes at layer 7 (the shipped check used to mark them all DOWN).
  const stats = await waitUntil(
    () => showStat(haproxy.socket),
    (rows) => rows.filter((r) => /^node\d$/.test(r.svname ?? '') && r.status === 'UP' && r.check_status === 'L7OK').length === 6,
    'every server UP with a passing layer-7 check',
    30_000,
  );
  t.same(
    stats.filter((r) => /^node\d$/.test(r.svname ?? '')).map((r) => `${r.pxname}/${r.svname} ${r.status} ${r.check_status}`),
    ['hub', 'robot_nodes'].flatMap((b) => [1, 2, 3].map((i) => `${b}/node${i} UP L7OK`)),
    'HAProxy health checks pass on every node (HTTP and robot backends)',
  );

  const proxyUrl = `https://127.0.0.1:${publicPort}`;
  // REST and WebSocket clients trust the proxy's throwaway CA.
  const proxy = new HttpsApi(proxyUrl, ca.certPem);
  t.equal((await proxy.get('/readyz')).status, 200, '/readyz through the proxy');
  // Item 16: /metrics is not public through the proxy (each node still serves it on its own port).
  t.equal((await proxy.get('/metrics')).status, 404, '/metrics denied at the proxy');
  t.equal((await proxy.get('/metrics?x=1')).status, 404, '/metrics with a query denied too');
  t.equal((await new Api(listening[0]?.url as string).get('/metrics')).status, 200, 'and served on the node itself');

  // Users register through the proxy and join the room through different nodes.
  const direct = listening.map((l) => new Api(l.url as string));
  const people = await Promise.all([0, 1, 2].map(() => proxy.signUp(uniqueName('op'))));
  const room = (await (direct[0] as Api).post('/api/v1/rooms', { kind: 'group', name: 'operator' }, { token: people[0]?.token })).body.room.id as string;
  for (const i of [1, 2]) {
    const joined = await (direct[i] as Api).post(`/api/v1/rooms/${room}/join`, undefined, { token: people[i]?.token });
    t.equal(joined.status, 200, `user ${i + 1} joined through node${i + 1}`);
  }
  const JOINS = 2;

  const PER = 150;
  const total = 3 * PER;
  const followers = people.map((u) => new Follower(proxyUrl, ca.certPem, u.token, room));
  const publishers = people.map((u, i) => new Publisher(proxyUrl, ca.certPem, u.token, room, `p${i}`, PER));
  t.teardown(() => {
    for (const c of [...followers, ...publishers]) {
      c.stopped = true;
      c.client?.ws.terminate();
    }
  });
  await Promise.all(followers.map((f) => f.start()));
  await until(() => followers.every((f) => f.subscribed), 'every follower subscribed', 15_000);
  await Promise.all(publishers.map((p) => p.start()));
  const acked = () => publishers.reduce((n, p) => n + p.acked.size, 0);

  await until(() => acked() >= total / 3, 'a third acked', 60_000);
  const killedAt = Date.now();
  (nodes[1] as Spawned).child.kill('SIGKILL');
  nats.kill(0, 'SIGKILL');

  await until(() => publishers.every((p) => p.done), 'every message acked', 120_000);
  await until(() => followers.every((f) => (f.seqs.at(-1) ?? 0) >= JOINS + total), 'every follower at the last seq', 60_000);
  const cut = [...followers, ...publishers].filter((c) => c.outages.length > 0);
  t.ok(cut.length > 0, `the dead node had clients (${cut.length} of 6 were cut off)`);
  const failoverMs = Math.max(...cut.map((c) => (c.outages[0]?.backAt ?? Number.POSITIVE_INFINITY) - killedAt));
  t.comment(`failover through HAProxy: the dead node's clients were back (subscribed / publishing) ${failoverMs} ms after the SIGKILL`);
  t.ok(failoverMs <= 3_000, `clients back within 3 s (${failoverMs} ms)`);

  // The joins took the first seqs; the messages follow them.
  const range = Array.from({ length: total }, (_, i) => JOINS + i + 1);
  for (const [i, f] of followers.entries()) t.same(f.seqs, range, `follower ${i + 1} saw every seq once, in order`);
  const ackedSeqs = new Map<string, number>();
  for (const p of publishers) for (const [cid, seq] of p.acked) ackedSeqs.set(cid, seq);
  t.same(
    [...ackedSeqs.values()].sort((a, b) => a - b),
    range,
    'the acks announce the N seqs after the joins, each once',
  );
  const stored = (await storedMessages(proxy, room, people[0]?.token as string)).slice(JOINS);
  const lost = [...ackedSeqs.keys()].filter((cid) => !stored.some((m) => m.cid === cid)).length;
  t.comment(`acked-lost through HAProxy: ${lost} of ${ackedSeqs.size} acked messages`);
  t.equal(lost, 0, 'no acked message lost');
  t.same(
    stored.map((m) => m.seq),
    range,
    'stored once each, at those seqs (read through the proxy)',
  );
  t.ok(
    stored.every((m) => ackedSeqs.get(m.cid) === m.seq),
    'each stored at the seq its ack announced',
  );

  for (const c of [...followers, ...publishers]) {
    c.stopped = true;
    c.client.ws.terminate();
  }
  for (const p of nodes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  await Promise.all(nodes.map((p) => p.exited));
});
