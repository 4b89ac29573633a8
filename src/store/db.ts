// Opens the database: PostgreSQL when DATABASE_URL is set, otherwise an embedded PGlite under the
// data dir, served to postgres.js through pglite-socket on a private Unix socket so every query in
// the codebase is the same postgres.js code on both. PGlite runs all connections through one
// backend (an open transaction on one connection would capture the others' queries), so the
// embedded pool is held to a single connection.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import type { Logger } from '../log.js';

export type Sql = postgres.Sql<Record<string, never>>;

export interface Database {
  sql: Sql;
  kind: 'postgres' | 'embedded';
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
    return { sql, kind: 'postgres', close: once(() => sql.end({ timeout: 5 })) };
  }
  return openEmbedded(opts.dataDir, log);
}

async function openEmbedded(dataDir: string, log: Logger): Promise<Database> {
  const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-socket')]);
  const pgdata = path.join(dataDir, 'pgdata');
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  const db = await PGlite.create(pgdata);
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
    close: once(async () => {
      await sql.end({ timeout: 5 });
      await server.stop();
      await db.close();
      await rm(sockDir, { recursive: true, force: true });
    }),
  };
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => {
    p ??= fn();
    return p;
  };
}
