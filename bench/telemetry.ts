// The telemetry scenario: R robots × H Hz × W watchers per robot.
//   hub       The hub in its own process (pki initialised in its data dir, the robot endpoint on a
//             free port); one user owns every robot (registered over REST). The robots run in a
//             separate load-generator process (bench/robot-load.ts: RobotClient + the simulator),
//             each publishing `pose` (latest) at H Hz and a `log` line (reliable) per second; this
//             process holds W watcher WebSockets per robot (msgpack) and, on the first watcher of
//             each robot, the control lease and one `cmd` per second that the simulator completes
//             at once. Reported: deliveries/s offered (robot frames × W) and delivered,
//             robot→watcher latency (the pose payload carries CLOCK_MONOTONIC µs from the robot's
//             process: the same clock here), command round trip (sending `cmd` → the `completed`
//             stage), hub CPU and RSS, and RSS per robot link and per watcher.
//   cluster   (--nodes N) The hub run on N nodes sharing PostgreSQL, NATS, the JWT key and one robot
//             CA and server certificate: the robots on node 1, watcher k of each robot on node
//             k mod N + 1 (so the lease holder and the commands stay on node 1). Also reported apart:
//             deliveries and latency for watchers on node 1 (same node) and on the others (cross
//             node: robot → node 1 → NATS → node → watcher), and CPU and RSS per node.
//   baselines (not with --nodes) The same load generator, robot count and rate against two bare ingest servers
//             (bench/baseline-robot-ingest.ts): Node `tls` with requestCert and uWS SSLApp
//             WebSockets, both decoding every frame. Reported: server CPU per 10k frames/s and
//             robot→server latency for each, and their ratio: what the Node TLS listener costs
//             against a uWS listener for the same load. --ingest-rate HZ drives the baselines
//             harder than the hub run, where the per-frame cost is lost in fixed costs.
// Memory per robot link (hub and baselines) comes from a separate step with 200 idle links (fewer
// drown in RSS noise), memory per watcher from the R × W watchers; both are RSS deltas taken after
// a forced full GC (bench/gc-probe.mjs) once RSS has settled. BENCH_DEBUG_MEM=1 prints the readings.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { initCa, issueRobotCert, issueServerCert, writePemPair } from '../src/auth/pki.js';
import { FoxgloveWatcher } from './foxglove-watcher.js';
import { cpuSeconds, fmt, GC_PROBE_ARGS, json, jsonLines, rssMiB, type Server, settledRss, spawnServer, startCluster, startHub } from './lib.js';
import type { LoadConfig } from './robot-load.js';

const packr = new Packr({ useRecords: false, int64AsType: 'number' });
const PASSWORD = 'correct horse battery staple';
const hubEnv = {
  SB_ROBOT_PORT: '0',
  // One user watches every robot: robots × watchers sockets from one user and one IP.
  SB_WS_MAX_CONNECTIONS_PER_USER: '100000',
  SB_WS_MAX_CONNECTIONS_PER_IP: '100000',
  SB_LOGIN_PER_IP_PER_MINUTE: '100000',
  SB_REGISTER_PER_IP_PER_HOUR: '100000',
  SB_ARGON2_MEMORY_KIB: '8192',
  SB_ARGON2_TIME_COST: '1',
};
const execFileP = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const monoMicros = (): number => Number(process.hrtime.bigint() / 1000n);
const ms = (h: RecordableHistogram, p: number) => (h.count ? h.percentile(p) / 1000 : Number.NaN);

export interface TelemetryOptions {
  robots: number;
  rate: number;
  watchers: number;
  durationS: number;
  store: 'embedded' | 'postgres';
  /** Samples per second per robot for the bare ingest baselines (default: `rate`, the hub's load). */
  ingestRate?: number;
  /** Idle links opened to measure memory per robot link (default 200: fewer drown in RSS noise). */
  memLinks?: number;
  /** One Foxglove watcher (/foxglove, every channel subscribed) per robot beside the /ws watchers (one node only). */
  foxglove?: boolean;
}

const memLinksOf = (o: TelemetryOptions) => o.memLinks ?? 200;

/** Deliveries and latency of every watcher (TelemetrySplit), and the rest of a run's figures. */
export interface HubTelemetryResult extends TelemetrySplit {
  /** Telemetry frames the robots sent per second. */
  robotFramesPerS: number;
  cmdPerS: number;
  cmdP50: number;
  cmdP99: number;
  cmdFailed: number;
  serverCpuPct: number;
  cpuPer10k: number;
  serverRssMiB: number;
  robotLinkKiB: number;
  watcherKiB: number;
  loadCpuPct: number;
  clientCpuPct: number;
  /** With several nodes: watchers on the robots' node (node 1), and on the others. */
  sameNode?: TelemetrySplit;
  crossNode?: TelemetrySplit;
  /** With several nodes: each node's CPU and RSS (serverCpuPct and serverRssMiB are their sums). */
  nodes?: { cpuPct: number; rssMiB: number }[];
  /** With `foxglove`: the Foxglove watchers' deliveries and latency. */
  foxglove?: TelemetrySplit;
}

/** Deliveries and robot→watcher latency of one group of watchers. */
export interface TelemetrySplit {
  offeredPerS: number;
  deliveredPerS: number;
  deliveredPct: number;
  p50: number;
  p99: number;
  p999: number;
}

export interface IngestResult {
  framesPerS: number;
  serverCpuPct: number;
  cpuPer10k: number;
  p50: number;
  p99: number;
  p999: number;
  perConnKiB: number;
  loadCpuPct: number;
}

interface LoadGen {
  pid: number;
  go(): void;
  waitForLine: ReturnType<typeof jsonLines>['waitForLine'];
  stop(): Promise<void>;
}

/** Starts bench/robot-load.ts (its own process) and waits until every robot is connected. */
async function startLoad(cfg: LoadConfig): Promise<LoadGen> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.resolve('bench/robot-load.ts'), JSON.stringify(cfg)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const out = jsonLines(child);
  await out.waitForLine((l) => l.msg === 'connected', `${cfg.robots} robots connected (${cfg.mode})`, 60_000);
  return {
    pid: child.pid as number,
    go: () => child.stdin?.write('go\n'),
    waitForLine: out.waitForLine,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return out.closed;
    },
  };
}

/**
 * RSS per robot link (KiB): `n` idle links (HELLO, then nothing) from a load generator of their
 * own, settled RSS after a full GC before and after; the links close again afterwards.
 */
async function memoryPerLink(server: Server, cfg: Omit<LoadConfig, 'hold' | 'durationS' | 'rate'>): Promise<number> {
  const before = await settledRss(server);
  const idle = await startLoad({ ...cfg, rate: 1, durationS: 1, hold: true });
  try {
    const after = await settledRss(server);
    if (process.env.BENCH_DEBUG_MEM)
      console.error(
        `memory step (${cfg.mode}, ${cfg.robots} links): ${before.toFixed(1)} → ${after.toFixed(1)} MiB; last probe ${JSON.stringify(server.lines.filter((l) => l.msg === 'gc-probe').at(-1))}`,
      );
    return ((after - before) * 1024) / cfg.robots;
  } finally {
    idle.go();
    await idle.stop();
  }
}

/** One watcher WebSocket: counts and times telemetry, and runs commands when it holds the lease. */
class Watcher {
  delivered = 0;
  private lastId = 0;
  private readonly replies = new Map<number, (f: any) => void>();
  private readonly commands = new Map<string, (f: any) => void>();
  /** Stage frames of a command whose `queued` reply has not been handled yet. */
  private readonly early = new Map<string, any[]>();

  /** `latency`: the histograms each robot→watcher latency goes to; `node`: the index of the hub it is on. */
  constructor(
    readonly ws: WebSocket,
    latency: RecordableHistogram[],
    measuring: () => boolean,
    readonly node = 0,
  ) {
    ws.on('message', (d: Buffer) => {
      const f = packr.unpack(d);
      if (f.t === 'tm') {
        if (!measuring()) return;
        this.delivered++;
        if (typeof f.data?.mono === 'number') {
          const us = Math.max(1, monoMicros() - f.data.mono);
          for (const h of latency) h.record(us);
        }
      } else if (f.t === 'cmd') {
        const handler = this.commands.get(f.cmd);
        if (handler) handler(f);
        else this.early.set(f.cmd, [...(this.early.get(f.cmd) ?? []), f]);
      } else if (typeof f.id === 'number') {
        const reply = this.replies.get(f.id);
        this.replies.delete(f.id);
        reply?.(f);
      }
    });
  }

  static open(url: string, token: string): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, 'sb.v1.msgpack', {
        headers: { authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      });
      ws.once('message', () => resolve(ws)); // hello
      ws.once('error', reject);
    });
  }

  request(frame: Record<string, unknown>): Promise<any> {
    const id = ++this.lastId;
    return new Promise((resolve) => {
      this.replies.set(id, resolve);
      this.ws.send(packr.pack({ ...frame, id }));
    });
  }

  /** Sends a command; resolves with its round trip (ms) at `completed`, or null for another final stage. */
  async command(robot: string): Promise<number | null> {
    const t0 = performance.now();
    let final: (ok: boolean) => void = () => {};
    const finished = new Promise<boolean>((resolve) => {
      final = resolve;
    });
    const q = await this.request({ t: 'cmd', robot, name: 'noop', timeoutMs: 10_000 });
    if (q.t !== 'queued') return null;
    // Stages may have arrived with the reply already; they are keyed by command id from here on.
    const onStage = (f: any) => {
      if (f.stage === 'completed') final(true);
      else if (f.stage !== 'delivered' && f.stage !== 'accepted') final(false);
    };
    this.commands.set(q.cmd, onStage);
    for (const f of this.early.get(q.cmd) ?? []) onStage(f);
    this.early.delete(q.cmd);
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([finished, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 15_000)))]);
    clearTimeout(timer);
    this.commands.delete(q.cmd);
    return ok ? performance.now() - t0 : null;
  }
}

/** One node: the hub with `pki init` run in its data dir. */
export async function telemetryHub(o: TelemetryOptions): Promise<HubTelemetryResult> {
  const hub = await startHub(o.store, hubEnv, {
    gcProbe: true,
    prepare: async (dataDir) => {
      await execFileP(process.execPath, [path.resolve('dist/cli.js'), 'pki', 'init'], { env: { ...process.env, SB_DATA_DIR: dataDir } });
    },
  });
  try {
    return await telemetryOnce([hub], o, path.join(hub.dataDir, 'pki', 'robot-ca.crt'));
  } finally {
    await hub.stop();
  }
}

/**
 * A cluster of `nodes` hubs on PostgreSQL (DATABASE_URL) and the NATS server at `nats`, sharing the
 * JWT key and one robot CA and server certificate (`pki`, as a cluster's nodes do): the robots on
 * node 1, each robot's watchers round-robin over the nodes (watcher k on node k mod N + 1).
 */
export async function telemetryCluster(o: TelemetryOptions, nodes: number, nats: string, keyFile: string, pki: IngestPki): Promise<HubTelemetryResult> {
  const hubs = await startCluster(
    nodes,
    nats,
    keyFile,
    { ...hubEnv, SB_ROBOT_CA_CERT_FILE: pki.ca, SB_ROBOT_CA_KEY_FILE: pki.caKey, SB_ROBOT_TLS_CERT_FILE: pki.cert, SB_ROBOT_TLS_KEY_FILE: pki.key },
    { gcProbe: true },
  );
  try {
    return await telemetryOnce(hubs, o, pki.ca);
  } finally {
    for (const h of hubs) await h.stop();
  }
}

/** Watchers per robot on node 1 (the robots' node) and on the other nodes, placed round-robin. */
export const watcherSplit = (watchers: number, nodes: number): { same: number; cross: number } => {
  const same = Math.ceil(watchers / nodes);
  return { same, cross: watchers - same };
};

/**
 * The hub run: users, robots, the load generator, watchers, commands. The robots connect to the
 * first hub; with several (cluster nodes), each robot's watchers are spread over all of them and
 * deliveries and latency are also kept apart for watchers on the robots' node and on the others.
 * The lease holder (and so every command) is the first watcher of each robot, on the robots' node.
 */
async function telemetryOnce(hubs: (Server & { dataDir: string })[], o: TelemetryOptions, caFile: string): Promise<HubTelemetryResult> {
  const hub = hubs[0] as Server & { dataDir: string };
  let load: LoadGen | undefined;
  const sockets: WebSocket[] = [];
  try {
    const robotPort = (await hub.waitForLine((l) => l.msg === 'robot endpoint listening (mutual TLS)', 'the robot endpoint')).port as number;
    const username = `tm${Date.now().toString(36)}`;
    await json(`${hub.url}/api/v1/auth/register`, 'POST', { username, password: PASSWORD });
    const token = (await json(`${hub.url}/api/v1/auth/login`, 'POST', { username, password: PASSWORD })).accessToken as string;
    const certs = path.join(hub.dataDir, 'robots');
    await mkdir(certs);
    const robots: string[] = [];
    for (let i = 0; i < Math.max(o.robots, memLinksOf(o)); i++) {
      const r = await json(`${hub.url}/api/v1/robots`, 'POST', { name: `bench-${i}` }, token);
      robots.push(r.robot.id);
      await writePemPair(
        { certFile: path.join(certs, `${r.robot.id}.crt`), keyFile: path.join(certs, `${r.robot.id}.key`) },
        r.certificatePem,
        r.privateKeyPem,
      );
    }
    robots.sort(); // the load generator takes pairs in name order
    robots.length = o.robots;
    const link = { mode: 'hub', host: '127.0.0.1', port: robotPort, caFile, certs } as const;
    const robotLinkKiB = await memoryPerLink(hub, { ...link, robots: memLinksOf(o) });

    load = await startLoad({ ...link, robots: o.robots, rate: o.rate, durationS: o.durationS });
    // The other nodes know the robots are online (their home is node 1) before anyone watches there.
    for (const other of hubs.slice(1)) await waitOnline(other.url, token, robots);
    const settledAll = async () => {
      let sum = 0;
      for (const h of hubs) sum += await settledRss(h);
      return sum;
    };
    const rss1 = await settledAll();

    const latency = createHistogram();
    const byNode = [createHistogram(), createHistogram()]; // the robots' node, the others
    let measuring = false;
    const watchers: Watcher[][] = [];
    for (let r = 0; r < robots.length; r++) {
      const row = await Promise.all(
        Array.from({ length: o.watchers }, async (_, k) => {
          const node = k % hubs.length;
          const ws = await Watcher.open((hubs[node] as Server).url, token);
          sockets.push(ws);
          const w = new Watcher(ws, [latency, byNode[node === 0 ? 0 : 1] as RecordableHistogram], () => measuring, node);
          const reply = await w.request({ t: 'watch', robot: robots[r] });
          if (reply.t !== 'watching') throw new Error(`watch: ${JSON.stringify(reply)}`);
          return w;
        }),
      );
      watchers.push(row);
    }
    const holders = watchers.map((row) => row[0] as Watcher);
    for (const [r, holder] of holders.entries()) {
      const reply = await holder.request({ t: 'lease', robot: robots[r], op: 'acquire', ttlMs: 300_000 });
      if (reply.t !== 'leased') throw new Error(`lease: ${JSON.stringify(reply)}`);
    }
    const rss2 = await settledAll();
    // After the memory reading: the per-watcher figure is the /ws watchers'.
    const foxLatency = createHistogram();
    const foxes: FoxgloveWatcher[] = [];
    for (const robot of o.foxglove && hubs.length === 1 ? robots : []) {
      const f = await FoxgloveWatcher.open(hub.url, token, robot, foxLatency, () => measuring);
      sockets.push(f.ws);
      foxes.push(f);
    }

    const cmdRtt = createHistogram();
    let cmdOk = 0;
    let cmdFailed = 0;
    const cpuEach = () => hubs.map((h) => cpuSeconds(h.pid));
    const cpu0 = cpuEach();
    const load0 = cpuSeconds(load.pid);
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    measuring = true;
    load.go();
    // One command per second per robot, on the lease holder's socket, phases spread over the second.
    const commandLoops = robots.map(async (robot, r) => {
      const w = holders[r] as Watcher;
      await sleep((r / robots.length) * 1000);
      for (let k = 0; performance.now() - t0 < o.durationS * 1000 - 500; k++) {
        const rtt = await w.command(robot);
        if (rtt === null) cmdFailed++;
        else {
          cmdOk++;
          cmdRtt.record(Math.max(1, Math.round(rtt * 1000)));
        }
        await sleep(Math.max(0, t0 + (r / robots.length) * 1000 + (k + 1) * 1000 - performance.now()));
      }
    });
    const done = await load.waitForLine((l) => l.msg === 'done', 'the load generator to finish', (o.durationS + 60) * 1000);
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = cpuEach();
    const load1 = cpuSeconds(load.pid);
    const client = process.cpuUsage(client0);
    await Promise.all(commandLoops);
    // Let in-flight deliveries land: until none arrives for 300 ms (at most 5 s).
    const total = (pred: (w: Watcher) => boolean = () => true) =>
      watchers
        .flat()
        .filter(pred)
        .reduce((a, w) => a + w.delivered, 0);
    for (let last = -1, until = performance.now() + 5000; total() !== last && performance.now() < until; ) {
      last = total();
      await sleep(300);
    }
    measuring = false;
    if (done.closedEarly || done.hubErrors)
      console.error(`warning: ${done.closedEarly} robot links closed early, ${done.hubErrors} hub errors (${JSON.stringify(done.lastHubError)})`);
    const delivered = total();
    const foxDelivered = foxes.reduce((a, f) => a + f.delivered, 0);
    const offered = done.sent * o.watchers;
    const windowS = o.durationS;
    const nodeCpuPct = cpu1.map((c, i) => ((c - (cpu0[i] as number)) / wall) * 100);
    const nodeRssMiB = hubs.map((h) => rssMiB(h.pid));
    const serverCpuPct = nodeCpuPct.reduce((a, c) => a + c, 0);
    const result: HubTelemetryResult = {
      robotFramesPerS: done.sent / windowS,
      offeredPerS: offered / windowS,
      deliveredPerS: delivered / windowS,
      deliveredPct: (delivered / offered) * 100,
      p50: ms(latency, 50),
      p99: ms(latency, 99),
      p999: ms(latency, 99.9),
      cmdPerS: cmdOk / windowS,
      cmdP50: ms(cmdRtt, 50),
      cmdP99: ms(cmdRtt, 99),
      cmdFailed,
      serverCpuPct,
      cpuPer10k: serverCpuPct / (done.sent / wall / 10_000),
      serverRssMiB: nodeRssMiB.reduce((a, m) => a + m, 0),
      robotLinkKiB,
      watcherKiB: ((rss2 - rss1) * 1024) / (o.robots * o.watchers),
      loadCpuPct: ((load1 - load0) / wall) * 100,
      clientCpuPct: ((client.user + client.system) / 1e6 / wall) * 100,
    };
    if (foxes.length) {
      result.foxglove = {
        offeredPerS: done.sent / windowS,
        deliveredPerS: foxDelivered / windowS,
        deliveredPct: (foxDelivered / done.sent) * 100,
        p50: ms(foxLatency, 50),
        p99: ms(foxLatency, 99),
        p999: ms(foxLatency, 99.9),
      };
    }
    if (hubs.length > 1) {
      const split = watcherSplit(o.watchers, hubs.length);
      const part = (h: RecordableHistogram, n: number, perRobot: number): TelemetrySplit => ({
        offeredPerS: (done.sent * perRobot) / windowS,
        deliveredPerS: n / windowS,
        deliveredPct: (n / (done.sent * perRobot)) * 100,
        p50: ms(h, 50),
        p99: ms(h, 99),
        p999: ms(h, 99.9),
      });
      const [same, cross] = byNode as [RecordableHistogram, RecordableHistogram];
      result.sameNode = part(
        same,
        total((w) => w.node === 0),
        split.same,
      );
      result.crossNode = part(
        cross,
        total((w) => w.node !== 0),
        split.cross,
      );
      result.nodes = hubs.map((_, i) => ({ cpuPct: nodeCpuPct[i] as number, rssMiB: nodeRssMiB[i] as number }));
    }
    return result;
  } finally {
    for (const ws of sockets) ws.terminate();
    await load?.stop();
  }
}

/** Waits (at most 30 s) until the hub at `url` lists every one of `robots` online. */
async function waitOnline(url: string, token: string, robots: string[]): Promise<void> {
  const want = new Set(robots);
  for (const until = performance.now() + 30_000; ; await sleep(100)) {
    const online = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await json(`${url}/api/v1/robots?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, 'GET', undefined, token);
      for (const r of page.robots as { id: string; online: boolean }[]) if (r.online) online.add(r.id);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    if ([...want].every((id) => online.has(id))) return;
    if (performance.now() > until) throw new Error(`${url} does not list every robot online within 30 s`);
  }
}

export interface IngestPki {
  dir: string;
  /** The server certificate and key. */
  cert: string;
  key: string;
  /** The CA certificate and key. */
  ca: string;
  caKey: string;
  /** <id>.crt + <id>.key robot pairs. */
  certs: string;
  remove(): Promise<void>;
}

/** A CA, a server certificate and R robot certificates for the bare ingest servers (and a cluster's nodes). */
export async function ingestPki(links: number): Promise<IngestPki> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sb-bench-ingest-'));
  const ca = await initCa({ certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key') });
  const server = await issueServerCert(ca);
  await writePemPair({ certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key') }, server.certPem, server.keyPem);
  const certs = path.join(dir, 'robots');
  await mkdir(certs);
  for (let i = 0; i < links; i++) {
    const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const c = await issueRobotCert(ca, id);
    await writeFile(path.join(certs, `${id}.crt`), c.certPem);
    await writeFile(path.join(certs, `${id}.key`), c.keyPem, { mode: 0o600 });
  }
  return {
    dir,
    cert: path.join(dir, 'server.crt'),
    key: path.join(dir, 'server.key'),
    ca: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    certs,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** One bare ingest server (tls or uws) under the same load as the hub's robot endpoint. */
export async function ingestBaseline(mode: 'tls' | 'uws', o: TelemetryOptions, pki: IngestPki): Promise<IngestResult> {
  const server: Server = await spawnServer(
    [...GC_PROBE_ARGS, '--import', 'tsx', path.resolve('bench/baseline-robot-ingest.ts'), mode, pki.cert, pki.key, pki.ca],
    {},
  );
  let load: LoadGen | undefined;
  try {
    const port = Number(new URL(server.url).port);
    const link = { mode, host: '127.0.0.1', port, caFile: pki.ca, certs: pki.certs } as const;
    const perConnKiB = await memoryPerLink(server, { ...link, robots: memLinksOf(o) });
    load = await startLoad({ ...link, robots: o.robots, rate: o.ingestRate ?? o.rate, durationS: o.durationS });
    const cpu0 = cpuSeconds(server.pid);
    const load0 = cpuSeconds(load.pid);
    const t0 = performance.now();
    load.go();
    await load.waitForLine((l) => l.msg === 'done', 'the load generator to finish', (o.durationS + 60) * 1000);
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds(server.pid);
    const load1 = cpuSeconds(load.pid);
    await sleep(100); // the last frames in flight
    await server.stop();
    const stats = server.lines.find((l) => l.msg === 'stats');
    if (!stats) throw new Error(`the ${mode} baseline printed no stats`);
    const serverCpuPct = ((cpu1 - cpu0) / wall) * 100;
    return {
      framesPerS: stats.frames / o.durationS,
      serverCpuPct,
      cpuPer10k: serverCpuPct / (stats.frames / wall / 10_000),
      p50: stats.p50,
      p99: stats.p99,
      p999: stats.p999,
      perConnKiB,
      loadCpuPct: ((load1 - load0) / wall) * 100,
    };
  } finally {
    await load?.stop();
    await server.stop();
  }
}

const deliveries = (r: TelemetrySplit) =>
  `${fmt(r.deliveredPerS, 0).padStart(7)} of ${fmt(r.offeredPerS, 0)} deliveries/s (${fmt(r.deliveredPct, 1)}%)  robot→watcher p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms  p999 ${fmt(r.p999, 2)} ms`;

export const hubTelemetryRows = (name: string, r: HubTelemetryResult): string[] => [
  `${name.padEnd(18)} ${deliveries(r)}`,
  ...(r.foxglove
    ? [
        `${'  Foxglove'.padEnd(18)} ${deliveries(r.foxglove)}  (1 per robot, every channel; p50 ${fmt(r.foxglove.p50 / r.p50, 2)}× and p99 ${fmt(r.foxglove.p99 / r.p99, 2)}× the /ws watchers')`,
      ]
    : []),
  ...(r.sameNode && r.crossNode ? [`${''.padEnd(18)} same node  ${deliveries(r.sameNode)}`, `${''.padEnd(18)} cross node ${deliveries(r.crossNode)}`] : []),
  `${''.padEnd(18)} commands ${fmt(r.cmdPerS, 1)}/s  round trip p50 ${fmt(r.cmdP50, 2)} ms  p99 ${fmt(r.cmdP99, 2)} ms  failed ${r.cmdFailed}`,
  `${''.padEnd(18)} hub CPU ${r.nodes ? '(all nodes) ' : ''}${fmt(r.serverCpuPct, 1)}% (${fmt(r.cpuPer10k, 1)}% per 10k robot frames/s, fan-out included)  RSS ${fmt(r.serverRssMiB, 0)} MiB  ${fmt(r.robotLinkKiB, 0)} KiB per robot link  ${fmt(r.watcherKiB, 1)} KiB per watcher  load-gen CPU ${fmt(r.loadCpuPct, 0)}%  bench CPU ${fmt(r.clientCpuPct, 0)}%`,
  ...(r.nodes ? [`${''.padEnd(18)} ${r.nodes.map((n, i) => `node${i + 1} CPU ${fmt(n.cpuPct, 1)}% RSS ${fmt(n.rssMiB, 0)} MiB`).join('  ')}`] : []),
];

export const ingestRow = (name: string, r: IngestResult): string =>
  `${name.padEnd(26)} ${fmt(r.framesPerS, 0).padStart(6)} frames/s  server CPU ${fmt(r.serverCpuPct, 2)}% = ${fmt(r.cpuPer10k, 1)}% per 10k frames/s  robot→server p50 ${fmt(r.p50, 3)} ms  p99 ${fmt(r.p99, 3)} ms  p999 ${fmt(r.p999, 3)} ms  ${fmt(r.perConnKiB, 0)} KiB per connection  load-gen CPU ${fmt(r.loadCpuPct, 0)}%`;
