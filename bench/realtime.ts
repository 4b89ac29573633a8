// Realtime scenarios over real WebSockets (msgpack encoding).
//   fanout  R rooms × M members (one connection each) × P publishes/s per room for D seconds:
//           deliveries/s, publish→delivery latency (Node's HDR histogram), acked publishes/s, server
//           and client CPU; then the same load against bare uWS pub/sub (the ceiling).
//   idle    N authenticated connections that only hold open: server RSS per connection.

import { createHistogram } from 'node:perf_hooks';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { cpuSeconds, fmt, json, type Server, settledRss, spawnBaseline, startCluster, startHub } from './lib.js';
import { PERCENTILES } from './percentiles.js';

// Timestamps arrive as 64-bit integers; read them as JS numbers (they are below 2^53).
const packr = new Packr({ useRecords: false, int64AsType: 'number' });
const PASSWORD = 'correct horse battery staple';
export const hubLimits = {
  SB_WS_PUBLISH_PER_SECOND: '100000',
  SB_WS_PUBLISH_BURST: '100000',
  SB_LOGIN_PER_IP_PER_MINUTE: '100000',
  SB_REGISTER_PER_IP_PER_HOUR: '100000',
  SB_ARGON2_MEMORY_KIB: '8192',
  SB_ARGON2_TIME_COST: '1',
  // Every load connection comes from one address, and a member holds one per room.
  SB_WS_MAX_CONNECTIONS_PER_IP: '1000000',
  SB_WS_MAX_CONNECTIONS_PER_USER: '1000000',
};

export interface FanoutOptions {
  rooms: number;
  members: number;
  rate: number;
  durationS: number;
  store: 'embedded' | 'postgres';
}

export interface FanoutResult {
  deliveriesPerS: number;
  ackedPerS: number;
  p50: number;
  p99: number;
  p999: number;
  /** Latency (ms) at each of PERCENTILES. */
  latencyMs: number[];
  serverCpuPct: number;
  /** Server CPU (every server process) per delivery, µs. */
  serverUsPerDelivery: number;
  /** The database's CPU per delivery, µs (NaN without one). */
  dbUsPerDelivery: number;
  clientCpuPct: number;
  lost: number;
  deliveredFraction: number;
  /** Settled RSS growth per connection, KiB (NaN unless measured). */
  rssPerConnKiB: number;
  /** With several nodes: latency to subscribers on the publisher's node, and on the others. */
  sameNode?: { p50: number; p99: number };
  crossNode?: { p50: number; p99: number };
}

/** An authenticated `sb.v1.msgpack` WebSocket, resolved at the hub's `hello`. */
export function connect(url: string, token?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, 'sb.v1.msgpack', token ? { headers: { authorization: `Bearer ${token}` } } : {});
    ws.once('message', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** One load-client connection, speaking its server's dialect. */
export interface LoadConn {
  /** Resolves once the server confirms the subscription. */
  subscribe(room: string): Promise<void>;
  /** Calls `fn` with the body of each message delivered to this connection. */
  onDelivery(fn: (body: string) => void): void;
  /** Calls `fn` for each publish the server acknowledges. */
  onAck(fn: () => void): void;
  publish(id: number, room: string, cid: string, body: string): void;
  close(): void;
}

/** Opens a load-client connection to `url` with the access token `token` (ignored by baselines). */
export type Dialect = (url: string, token: string) => Promise<LoadConn>;

/** The hub's own protocol, `sb.v1.msgpack` frames over a plain WebSocket (bare uWS and `ws` speak it too). */
export const sbMsgpack: Dialect = async (url, token) => {
  const ws = await connect(url, token || undefined);
  return {
    subscribe: (room) =>
      new Promise<void>((resolve) => {
        const on = (d: Buffer) => {
          if (packr.unpack(d).t === 'subscribed') {
            ws.off('message', on);
            resolve();
          }
        };
        ws.on('message', on);
        ws.send(packr.pack({ t: 'sub', id: 1, room }));
      }),
    onDelivery: (fn) =>
      ws.on('message', (d: Buffer) => {
        const f = packr.unpack(d);
        if (f.t === 'msg') fn(f.body);
      }),
    onAck: (fn) => ws.on('message', (d: Buffer) => packr.unpack(d).t === 'ack' && fn()),
    publish: (id, room, cid, body) => ws.send(packr.pack({ t: 'pub', id, room, cid, body })),
    close: () => ws.terminate(),
  };
};

/** Users, rooms and tokens on the hub (the bare server ignores them, but gets the same room ids). */
async function setUp(url: string, o: FanoutOptions, hub: boolean): Promise<{ rooms: string[]; tokens: string[] }> {
  const tokens: string[] = [];
  const rooms: string[] = [];
  if (!hub)
    return {
      rooms: Array.from({ length: o.rooms }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`),
      tokens: Array(o.members + 1).fill(''),
    };
  const run = Date.now().toString(36);
  for (let i = 0; i <= o.members; i++) {
    const username = `fan${run}${i}`;
    await json(`${url}/api/v1/auth/register`, 'POST', { username, password: PASSWORD });
    tokens.push((await json(`${url}/api/v1/auth/login`, 'POST', { username, password: PASSWORD })).accessToken);
  }
  for (let r = 0; r < o.rooms; r++) {
    const id = (await json(`${url}/api/v1/rooms`, 'POST', { kind: 'group', name: `fan ${r}` }, tokens[0])).room.id as string;
    for (let i = 1; i <= o.members; i++) await json(`${url}/api/v1/rooms/${id}/join`, 'POST', undefined, tokens[i]);
    rooms.push(id);
  }
  return { rooms, tokens };
}

/** How `fanoutOnce` drives its servers. */
export interface FanoutRun {
  /** The servers are hub nodes: users, rooms and tokens are made through the API. */
  hub: boolean;
  /** The load client's protocol (default: the hub's own, `sb.v1.msgpack`). */
  dialect?: Dialect;
  /** Starts measuring the database's CPU, when the servers have one (see pgCpuMeter). */
  dbCpu?: () => Promise<() => Promise<number>>;
  /** Read the servers' settled RSS before and after connecting (they must run with GC_PROBE_ARGS). */
  memory?: boolean;
}

/**
 * Runs the fan-out load. With several servers (cluster nodes), the publishers are on the first and
 * the subscribers are spread over all of them, and latency is also kept apart for subscribers on the
 * publisher's node and on the others.
 */
export async function fanoutOnce(servers: Server[], o: FanoutOptions, run: FanoutRun): Promise<FanoutResult> {
  const server = servers[0] as Server;
  const dialect = run.dialect ?? sbMsgpack;
  const { rooms, tokens } = await setUp(server.url, o, run.hub);
  const rssAll = async () => (await Promise.all(servers.map(settledRss))).reduce((a, b) => a + b, 0);
  const rss0 = run.memory ? await rssAll() : Number.NaN;
  const subscribers: LoadConn[] = [];
  const latency = createHistogram();
  const byNode = [createHistogram(), createHistogram()]; // same node, other nodes
  let delivered = 0;
  let measuring = false;
  for (const room of rooms) {
    for (let i = 1; i <= o.members; i++) {
      const node = subscribers.length % servers.length;
      const conn = await dialect((servers[node] as Server).url, tokens[i] as string);
      await conn.subscribe(room);
      const split = byNode[node === 0 ? 0 : 1] as ReturnType<typeof createHistogram>;
      conn.onDelivery((body) => {
        if (!measuring) return;
        delivered++;
        const sent = Number(body.slice(0, body.indexOf(' ')));
        const us = Math.max(1, Math.round((performance.now() - sent) * 1000));
        latency.record(us);
        split.record(us);
      });
      subscribers.push(conn);
    }
  }
  const publishers = await Promise.all(rooms.map(() => dialect(server.url, tokens[0] as string)));
  const connections = subscribers.length + publishers.length;
  const rss1 = run.memory ? await rssAll() : Number.NaN;
  let acked = 0;
  for (const p of publishers) p.onAck(() => measuring && acked++);
  const cpuAll = () => servers.reduce((s, x) => s + cpuSeconds(x.pid), 0);
  const cpu0 = cpuAll();
  const dbMeter = await run.dbCpu?.();
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  let sent = 0;
  const padding = 'x'.repeat(64);
  // Each room publishes `rate` per second, in ticks of 10 ms.
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = (performance.now() - t0) / 1000;
      if (elapsed >= o.durationS) {
        clearInterval(timer);
        resolve();
        return;
      }
      const due = Math.floor(elapsed * o.rate) - sent / rooms.length;
      for (let k = 0; k < due; k++) {
        rooms.forEach((room, r) => {
          sent++;
          (publishers[r] as LoadConn).publish(sent, room, `b${t0}-${sent}`, `${performance.now()} ${padding}`);
        });
      }
    }, 10);
  });
  // Let in-flight deliveries land (bounded).
  const expected = sent * o.members;
  const deadline = performance.now() + 5000;
  while (delivered < expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const wall = (performance.now() - t0) / 1000;
  measuring = false;
  const client = process.cpuUsage(client0);
  const serverCpu = cpuAll() - cpu0;
  const dbCpu = dbMeter ? await dbMeter() : Number.NaN;
  const result: FanoutResult = {
    deliveriesPerS: delivered / wall,
    ackedPerS: acked / wall,
    p50: latency.percentile(50) / 1000,
    p99: latency.percentile(99) / 1000,
    p999: latency.percentile(99.9) / 1000,
    latencyMs: PERCENTILES.map((p) => latency.percentile(p) / 1000),
    serverCpuPct: (serverCpu / wall) * 100,
    serverUsPerDelivery: (serverCpu * 1e6) / delivered,
    dbUsPerDelivery: (dbCpu * 1e6) / delivered,
    clientCpuPct: ((client.user + client.system) / 1e6 / wall) * 100,
    lost: expected - delivered,
    deliveredFraction: delivered / expected,
    rssPerConnKiB: ((rss1 - rss0) * 1024) / connections,
  };
  if (servers.length > 1) {
    const [same, cross] = byNode as [ReturnType<typeof createHistogram>, ReturnType<typeof createHistogram>];
    result.sameNode = { p50: same.percentile(50) / 1000, p99: same.percentile(99) / 1000 };
    result.crossNode = { p50: cross.percentile(50) / 1000, p99: cross.percentile(99) / 1000 };
  }
  for (const c of [...subscribers, ...publishers]) c.close();
  return result;
}

export async function fanoutBaseline(o: FanoutOptions): Promise<FanoutResult> {
  const bare = await spawnBaseline('baseline-uws-pubsub.ts');
  try {
    return await fanoutOnce([bare], o, { hub: false });
  } finally {
    await bare.stop();
  }
}

export async function fanoutHub(o: FanoutOptions): Promise<FanoutResult> {
  const hub = await startHub(o.store, hubLimits);
  try {
    return await fanoutOnce([hub], o, { hub: true });
  } finally {
    await hub.stop();
  }
}

export const fanoutRow = (name: string, r: FanoutResult) =>
  `${name.padEnd(18)} ${fmt(r.deliveriesPerS, 0).padStart(8)} deliveries/s  ${fmt(r.ackedPerS, 0).padStart(6)} acks/s  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms  p999 ${fmt(r.p999, 2)} ms  server CPU ${fmt(r.serverCpuPct, 0)}%  client CPU ${fmt(r.clientCpuPct, 0)}%  lost ${r.lost}`;

export interface IdleResult {
  perConnKiB: number;
  overallKiB: number;
  n: number;
  rssBefore: number;
  rssHalf: number;
  rssAfter: number;
}

/**
 * N idle authenticated connections (on bare uWS: connections that only hold open): server RSS growth per connection. `perConnKiB` is the growth
 * over the second half alone (the marginal cost of one more connection); `overallKiB` spreads the
 * whole growth over all N, and so also counts what grows once under a burst of connections (V8's
 * young generation and malloc arenas reach their working size and keep it).
 */
export async function idle(n: number, store: 'embedded' | 'postgres' | 'bare uWS'): Promise<IdleResult> {
  // One user and one address hold them all: the per-user and per-address caps must let them in.
  const cap = String(n + 200);
  const server =
    store === 'bare uWS'
      ? await spawnBaseline('baseline-uws-pubsub.ts')
      : await startHub(store, { ...hubLimits, SB_WS_MAX_CONNECTIONS_PER_USER: cap, SB_WS_MAX_CONNECTIONS_PER_IP: cap }, { gcProbe: true });
  const sockets: WebSocket[] = [];
  try {
    let token = '';
    if (store !== 'bare uWS') {
      const username = `idle${Date.now().toString(36)}`;
      await json(`${server.url}/api/v1/auth/register`, 'POST', { username, password: PASSWORD });
      token = (await json(`${server.url}/api/v1/auth/login`, 'POST', { username, password: PASSWORD })).accessToken as string;
    }
    const open = async (count: number) => {
      for (let i = 0; i < count; i += 200)
        sockets.push(...(await Promise.all(Array.from({ length: Math.min(200, count - i) }, () => connect(server.url, token || undefined)))));
    };
    // Warm up (JIT, pools), then measure from here.
    await open(100);
    // Every reading after a full GC, once RSS has settled: garbage and freed pages are not connections.
    const rssBefore = await settledRss(server);
    const half = Math.floor(n / 2);
    await open(half);
    const rssHalf = await settledRss(server);
    await open(n - half);
    const rssAfter = await settledRss(server);
    return { perConnKiB: ((rssAfter - rssHalf) * 1024) / (n - half), overallKiB: ((rssAfter - rssBefore) * 1024) / n, n, rssBefore, rssHalf, rssAfter };
  } finally {
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
}

/**
 * The fan-out load on a cluster of `nodes` hub processes sharing one PostgreSQL (DATABASE_URL) and
 * one NATS server (`nats`), publishers on the first node and subscribers spread over all.
 */
export async function fanoutCluster(o: FanoutOptions, nodes: number, nats: string, keyFile: string): Promise<FanoutResult> {
  const hubs = await startCluster(nodes, nats, keyFile, hubLimits);
  try {
    return await fanoutOnce(hubs, o, { hub: true });
  } finally {
    for (const h of hubs) await h.stop();
  }
}
