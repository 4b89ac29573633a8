// Opens the database: PostgreSQL when DATABASE_URL is set, otherwise an embedded PGlite under the
// data dir, run on a worker thread (pglite-worker.ts) and served to postgres.js through
// pglite-socket on a private Unix socket so every query in the codebase is the same postgres.js
// code on both. PGlite runs all connections through one
// backend (an open transaction on one connection would capture the others' queries), so the
// embedded pool is held to a single connection.

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import postgres from 'postgres';
import { ConfigError } from '../config.js';
import type { Logger } from '../log.js';
import type { PgliteWorkerData } from './pglite-worker.js';

export type Sql = postgres.Sql<Record<string, never>>;
/** The handle of a transaction (`sql.begin`). */
export type Tx = postgres.TransactionSql<Record<string, never>>;

export interface Database {
  sql: Sql;
  kind: 'postgres' | 'embedded';
  /** Connections in the pool. */
  connections: number;
  /** Idempotent: ends the pool, then (embedded) the socket server and PGlite. */
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  poolSize: number;
  log: Logger;
}

const common = (log: Logger) => ({
  onnotice: (n: postgres.Notice) => log.debug({ code: n.code }, 'postgres notice'),
  connect_timeout: 10,
  idle_timeout: 60,
  max_lifetime: 60 * 30,
});

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  const log = opts.log.child({ component: 'store' });
  if (opts.databaseUrl) {
    const sql = postgres(opts.databaseUrl, { ...common(log), max: opts.poolSize }) as unknown as Sql;
    return { sql, kind: 'postgres', connections: opts.poolSize, close: once(() => sql.end({ timeout: 5 })) };
  }
  return openEmbedded(opts.dataDir, log);
}

/** How long a stopping PGlite worker gets to flush and close before it is terminated. */
const WORKER_STOP_MS = 10_000;

async function openEmbedded(dataDir: string, log: Logger): Promise<Database> {
  const pgdata = path.join(dataDir, 'pgdata');
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  const unlock = await lockDataDir(dataDir);
  // A private directory (0700) so no other local user can reach the unauthenticated socket.
  const sockDir = await mkdtemp(path.join(os.tmpdir(), 'sb-pglite-'));
  const sockPath = path.join(sockDir, '.s.PGSQL.5432');
  const cleanUp = async () => {
    await rm(sockDir, { recursive: true, force: true });
    await unlock();
  };
  // Beside this module: .js when built; .ts when run from source (tests, tsx), then entered through
  // a one-line module that registers tsx in the worker first.
  const ext = path.extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./pglite-worker${ext}`, import.meta.url);
  // (tsx is a development dependency: resolved only when running from source.)
  const tsEntry = () =>
    `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(entry.href)});`;
  const worker = new Worker(ext === '.ts' ? new URL(`data:text/javascript,${encodeURIComponent(tsEntry())}`) : entry, {
    workerData: { pgdata, sockPath } satisfies PgliteWorkerData,
  });
  let stopping = false;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  let onMessage!: (m: { ready?: true; error?: string }) => void;
  let onError!: (e: Error) => void;
  let onExit!: (code: number) => void;
  try {
    await new Promise<void>((resolve, reject) => {
      onMessage = (m) => (m.ready ? resolve() : reject(new Error(`embedded store in ${pgdata}: ${m.error ?? 'PGlite did not start'}`)));
      onError = reject;
      onExit = (code) => reject(new Error(`the PGlite worker exited (${code}) before it was ready`));
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
    });
  } catch (e) {
    await worker.terminate();
    await cleanUp();
    throw e;
  } finally {
    worker.off('message', onMessage).off('error', onError).off('exit', onExit);
  }
  worker.on('error', (e) => log.error({ err: e }, 'embedded PGlite worker failed'));
  worker.on('exit', (code) => {
    if (!stopping) log.error({ code }, 'embedded PGlite worker exited; the store is unavailable until the node restarts');
  });
  const sql = postgres({ ...common(log), path: sockPath, user: 'postgres', database: 'postgres', max: 1 }) as unknown as Sql;
  log.info({ dataDir: pgdata }, 'embedded PGlite store opened');
  return {
    sql,
    kind: 'embedded',
    connections: 1,
    close: once(async () => {
      await sql.end({ timeout: 5 });
      stopping = true;
      // It closes PGlite (flushing it) and says so, or it is gone already, or it gets WORKER_STOP_MS.
      let timer: NodeJS.Timeout | undefined;
      const closed = new Promise<void>((resolve) => {
        worker.on('message', (m: { closed?: true }) => m.closed && resolve());
        timer = setTimeout(() => {
          log.error({ ms: WORKER_STOP_MS }, 'embedded PGlite worker did not close in time; terminating it');
          resolve();
        }, WORKER_STOP_MS);
      });
      worker.postMessage('stop');
      await Promise.race([closed, exited]);
      clearTimeout(timer);
      await worker.terminate();
      await cleanUp();
    }),
  };
}

/** Data dirs this process holds, so a lock file naming our own pid is told apart from a stale one. */
const held = new Set<string>();

/**
 * One process per embedded data dir: PGlite is a single-process database, and a second process on
 * the same files would silently lose writes. The lock is a pid file; a dead owner's file is stale.
 */
async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = path.join(dataDir, 'switchboard.pid');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      held.add(file);
      return async () => {
        held.delete(file);
        await rm(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    const ours = owner === process.pid && held.has(file);
    if (ours || (owner !== process.pid && isAlive(owner))) {
      throw new ConfigError(`SB_DATA_DIR: ${dataDir} is in use by process ${owner}; run one process per data dir (use DATABASE_URL for several nodes)`);
    }
    await rm(file, { force: true });
  }
  throw new ConfigError(`SB_DATA_DIR: could not lock ${dataDir}`);
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => {
    p ??= fn();
    return p;
  };
}
