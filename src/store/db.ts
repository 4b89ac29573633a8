// Opens the database: PostgreSQL when DATABASE_URL is set, otherwise an embedded PGlite under the
// data dir, served to postgres.js through pglite-socket on a private Unix socket so every query in
// the codebase is the same postgres.js code on both. PGlite runs all connections through one
// backend (an open transaction on one connection would capture the others' queries), so the
// embedded pool is held to a single connection.

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { ConfigError } from '../config.js';
import type { Logger } from '../log.js';

export type Sql = postgres.Sql<Record<string, never>>;

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

async function openEmbedded(dataDir: string, log: Logger): Promise<Database> {
  const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-socket')]);
  const pgdata = path.join(dataDir, 'pgdata');
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  const unlock = await lockDataDir(dataDir);
  let db: InstanceType<typeof PGlite>;
  try {
    db = await PGlite.create(pgdata);
  } catch (e) {
    await unlock();
    throw e;
  }
  // A private directory (0700) so no other local user can reach the unauthenticated socket.
  const sockDir = await mkdtemp(path.join(os.tmpdir(), 'sb-pglite-'));
  const sockPath = path.join(sockDir, '.s.PGSQL.5432');
  const server = new PGLiteSocketServer({ db, path: sockPath, maxConnections: 1 });
  await server.start();
  const sql = postgres({ ...common(log), path: sockPath, user: 'postgres', database: 'postgres', max: 1 }) as unknown as Sql;
  log.info({ dataDir: pgdata }, 'embedded PGlite store opened');
  return {
    sql,
    kind: 'embedded',
    connections: 1,
    close: once(async () => {
      await sql.end({ timeout: 5 });
      await server.stop();
      await db.close();
      await rm(sockDir, { recursive: true, force: true });
      await unlock();
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
