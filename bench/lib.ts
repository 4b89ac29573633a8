// Bench plumbing: start the hub (or a baseline server) as a child process on a free port, sample its
// CPU and memory from /proc, drive HTTP load with autocannon, and summarise runs by their median.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

export interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const TICKS = 100; // USER_HZ on Linux

/** Spawns a process that logs a JSON line with `msg: 'listening'` and `url`. */
export async function spawnServer(args: string[], env: Record<string, string>): Promise<Server> {
  const child: ChildProcess = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 30 s')), 30_000);
    child.on('exit', (c) => reject(new Error(`server exited with ${c}`)));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        const j = JSON.parse(l);
        if (j.msg === 'listening') {
          clearTimeout(timer);
          resolve(j.url);
        }
      } catch {
        /* not a log line */
      }
    });
  });
  return {
    url,
    pid: child.pid as number,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function startHub(store: 'embedded' | 'postgres', extraEnv: Record<string, string> = {}): Promise<Server & { dataDir: string }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sb-bench-'));
  const env: Record<string, string> = { PORT: '0', HOST: '127.0.0.1', SB_DATA_DIR: dataDir, LOG_LEVEL: 'info', ...extraEnv };
  if (store === 'postgres') {
    if (!process.env.DATABASE_URL) throw new Error('--store postgres needs DATABASE_URL');
    env.DATABASE_URL = process.env.DATABASE_URL;
  } else {
    env.DATABASE_URL = '';
  }
  // BENCH_HUB_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the hub alone.
  const nodeArgs = (process.env.BENCH_HUB_NODE_ARGS ?? '').split(' ').filter(Boolean);
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

/** CPU seconds used so far by a process. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
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

/** Median of each numeric field over runs. */
export function medianOf<T extends object>(runs: T[]): T {
  const out: Record<string, number> = {};
  for (const k of Object.keys(runs[0] as object)) out[k] = median(runs.map((r) => (r as Record<string, number>)[k] as number));
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
