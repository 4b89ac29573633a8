// Bench plumbing: start the hub (or a baseline server) as a child process on a free port, sample its
// CPU and memory from /proc, drive HTTP load with autocannon, and summarise runs by their median.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import type postgres from 'postgres';

export interface Server {
  url: string;
  pid: number;
  /** Every JSON line the process has printed so far (log lines, a baseline's stats). */
  lines: Record<string, any>[];
  /** The first line (printed so far or later) matching; rejects after `ms` or when the process exits. */
  waitForLine(pred: (line: Record<string, any>) => boolean, what: string, ms?: number): Promise<Record<string, any>>;
  stop(): Promise<void>;
}

const TICKS = 100; // USER_HZ on Linux

/** A child process's JSON stdout lines (other lines are ignored), and a way to wait for one. */
export interface JsonLines {
  lines: Record<string, any>[];
  /** The first line (printed so far or later) matching; rejects after `ms` or once the process has exited. */
  waitForLine(pred: (line: Record<string, any>) => boolean, what: string, ms?: number): Promise<Record<string, any>>;
  /** Resolves when the process has exited and its output has been read. */
  closed: Promise<void>;
}

export function jsonLines(child: ChildProcess): JsonLines {
  const lines: Record<string, any>[] = [];
  const waiters = new Set<() => void>();
  let isClosed = false;
  // 'close', not 'exit': every line the process printed has been read by then.
  const closed = new Promise<void>((resolve) =>
    child.on('close', () => {
      isClosed = true;
      for (const w of waiters) w();
      resolve();
    }),
  );
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l));
    } catch {
      return; // not a JSON line
    }
    for (const w of waiters) w();
  });
  const waitForLine = (pred: (line: Record<string, any>) => boolean, what: string, ms = 30_000) =>
    new Promise<Record<string, any>>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no ${what} within ${ms} ms`)), ms);
      const check = () => {
        const hit = lines.find(pred);
        if (hit) done(undefined, hit);
        else if (isClosed) done(new Error(`the process exited (${child.exitCode ?? child.signalCode}) before ${what}`));
      };
      const done = (e?: Error, hit?: Record<string, any>) => {
        clearTimeout(timer);
        waiters.delete(check);
        e ? reject(e) : resolve(hit as Record<string, any>);
      };
      waiters.add(check);
      check();
    });
  return { lines, waitForLine, closed };
}

/** Spawns a process that logs a JSON line with `msg: 'listening'` and `url`. */
export async function spawnServer(args: string[], env: Record<string, string>): Promise<Server> {
  const child: ChildProcess = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const out = jsonLines(child);
  const url = (await out.waitForLine((j) => j.msg === 'listening', 'listening line (server start)')).url as string;
  return {
    url,
    pid: child.pid as number,
    lines: out.lines,
    waitForLine: out.waitForLine,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return out.closed;
    },
  };
}

export async function startHub(
  store: 'embedded' | 'postgres',
  extraEnv: Record<string, string> = {},
  opts: {
    /** Runs on the fresh data dir before the hub starts (e.g. `pki init`). */
    prepare?: (dataDir: string) => Promise<void>;
    /** Preload bench/gc-probe.mjs: `gcProbe(hub)` then reads memory after a full GC. */
    gcProbe?: boolean;
  } = {},
): Promise<Server & { dataDir: string }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-bench-'));
  await opts.prepare?.(dataDir);
  const env: Record<string, string> = { PORT: '0', HOST: '127.0.0.1', SB_DATA_DIR: dataDir, LOG_LEVEL: 'info', ...extraEnv };
  if (store === 'postgres') {
    if (!process.env.DATABASE_URL) throw new Error('--store postgres needs DATABASE_URL');
    env.DATABASE_URL = process.env.DATABASE_URL;
  } else {
    env.DATABASE_URL = '';
  }
  // BENCH_HUB_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the hub alone.
  const nodeArgs = (process.env.BENCH_HUB_NODE_ARGS ?? '').split(' ').filter(Boolean);
  if (opts.gcProbe) nodeArgs.push(...GC_PROBE_ARGS);
  const s = await spawnServer([...nodeArgs, path.resolve('dist/cli.js'), 'serve'], env);
  return {
    ...s,
    dataDir,
    stop: async () => {
      await s.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * `nodes` hub processes of one new cluster (a fresh SB_CLUSTER_NAME) on PostgreSQL (DATABASE_URL) and
 * the NATS server at `nats`, sharing the JWT signing key in `keyFile`: node1, node2, … in that order.
 */
export async function startCluster(
  nodes: number,
  nats: string,
  keyFile: string,
  extraEnv: Record<string, string> = {},
  opts: Parameters<typeof startHub>[2] = {},
): Promise<(Server & { dataDir: string })[]> {
  const cluster = `bench${Date.now().toString(36)}`;
  const hubs: (Server & { dataDir: string })[] = [];
  try {
    for (let i = 1; i <= nodes; i++) {
      hubs.push(await startHub('postgres', { ...extraEnv, NATS_URL: nats, SB_CLUSTER_NAME: cluster, SB_JWT_KEY_FILE: keyFile, SB_NODE_ID: `node${i}` }, opts));
    }
    return hubs;
  } catch (e) {
    for (const h of hubs) await h.stop();
    throw e;
  }
}

/**
 * A baseline server, bench/<file> (TypeScript, run through tsx) with its arguments, preloaded with
 * the GC probe so its memory can be read as the hub's is.
 */
export const spawnBaseline = (file: string, ...args: string[]) => spawnServer([...GC_PROBE_ARGS, '--import', 'tsx', path.resolve('bench', file), ...args], {});

/** Node arguments that preload bench/gc-probe.mjs. */
export const GC_PROBE_ARGS = ['--expose-gc', '--import', pathToFileURL(path.resolve('bench/gc-probe.mjs')).href];

/** A server's RSS in MiB right after a full GC (it must run with GC_PROBE_ARGS). */
export async function gcProbe(server: Server): Promise<number> {
  const seq = server.lines.filter((l) => l.msg === 'gc-probe').length + 1;
  process.kill(server.pid, 'SIGUSR2');
  const line = await server.waitForLine((l) => l.msg === 'gc-probe' && l.seq === seq, 'a gc-probe line', 10_000);
  return line.rss / 1_048_576;
}

/**
 * RSS (MiB) once it has settled: GC, then again every half second until two readings agree within
 * 0.5 MiB (at most 10 s). Freed buffers leave RSS some time after the GC that frees them.
 */
export async function settledRss(server: Server): Promise<number> {
  let prev = await gcProbe(server);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const rss = await gcProbe(server);
    if (Math.abs(rss - prev) < 0.5) return rss;
    prev = rss;
  }
  return prev;
}

/** CPU seconds used so far by a process. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** CPU seconds so far of each PostgreSQL process serving this database, or the whole server (its background processes). */
async function pgProcessCpu(sql: postgres.Sql): Promise<Map<number, number>> {
  const rows = await sql<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR datname IS NULL`;
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      cpu.set(pid, cpuSeconds(pid));
    } catch {
      // gone meanwhile, or on another machine
    }
  }
  return cpu;
}

/**
 * Starts measuring PostgreSQL's CPU: this database's backends and the server's background processes
 * (WAL writer, checkpointer), not other databases' clients. Call the result for the CPU seconds
 * used since. A process that started meanwhile counts whole; one that ended meanwhile is left out
 * (its last reading is gone), rather than subtracted.
 */
export async function pgCpuMeter(sql: postgres.Sql): Promise<() => Promise<number>> {
  const before = await pgProcessCpu(sql);
  return async () => {
    let used = 0;
    for (const [pid, s] of await pgProcessCpu(sql)) used += s - (before.get(pid) ?? 0);
    return used;
  };
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
  non2xx: number;
  serverCpuPct: number;
  serverRssMiB: number;
  clientCpuPct: number;
}

/** Drives `requests` round-robin for `durationS` seconds over `connections` keep-alive connections. */
export async function load(
  server: Server,
  opts: { connections: number; durationS: number; requests: autocannon.Request[]; headers?: Record<string, string> },
): Promise<LoadResult> {
  const cpu0 = cpuSeconds(server.pid);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await autocannon({ url: server.url, connections: opts.connections, duration: opts.durationS, requests: opts.requests, headers: opts.headers });
  const wall = (performance.now() - t0) / 1000;
  const clientCpu = process.cpuUsage(client0);
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    p999: r.latency.p99_9,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    serverCpuPct: ((cpuSeconds(server.pid) - cpu0) / wall) * 100,
    serverRssMiB: rssMiB(server.pid),
    clientCpuPct: ((clientCpu.user + clientCpu.system) / 1e6 / wall) * 100,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Median of each numeric field over runs, nested objects and arrays (e.g. per node) included. */
export function medianOf<T>(runs: T[]): T {
  const first = runs[0];
  if (typeof first === 'number') return median(runs as number[]) as T;
  if (Array.isArray(first)) return first.map((_, i) => medianOf(runs.map((r) => (r as unknown[])[i]))) as T;
  if (first === null || typeof first !== 'object') return first as T;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(first)) out[k] = medianOf(runs.map((r) => (r as Record<string, unknown>)[k]));
  return out as T;
}

export async function json(url: string, method: string, body?: unknown, token?: string): Promise<any> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

export const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
