// Counters for rate limits that every node of a cluster shares and that survive restarts, in the
// `rate_limits` table. rate-limiter-flexible owns the counting (its PostgreSQL limiter and its SQL);
// this module only lets that limiter run on our postgres.js pool (embedded PGlite included) instead
// of node-postgres, and prunes rows whose window has ended.

import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { RateLimitedError } from '../errors.js';
import type { Sql } from './db.js';
import { translateDriverError } from './errors.js';

/** The table rate-limiter-flexible is pointed at (created by migration 3, not by the library). */
export const RATE_LIMITS_TABLE = 'rate_limits';

/** The slice of node-postgres's `Pool` that rate-limiter-flexible's PostgreSQL limiter calls. */
export interface PgQueryable {
  query(q: { text: string; values?: unknown[] }): Promise<{ rows: Record<string, unknown>[]; rowCount: number }>;
}

export class RateLimits {
  constructor(private readonly sql: Sql) {}

  /** A node-postgres-shaped client over our pool; the library's queries are parameterised. */
  get client(): PgQueryable {
    return {
      query: async ({ text, values = [] }) => {
        // The limiter rethrows what this rejects with: the store's own errors, like every repository's.
        const rows = await this.sql.unsafe(text, values as never[]).catch((e: unknown) => Promise.reject(translateDriverError(e)));
        // int8 comes back as a string from postgres.js; the library does arithmetic on `expire`.
        const out = rows.map((r) => ({ ...r, ...(r.expire != null ? { expire: Number(r.expire) } : {}) }));
        return { rows: out, rowCount: rows.count };
      },
    };
  }

  /** `points` per `durationS` per key, for the whole cluster: the returned function takes one (RATE_LIMITED with the wait when over). */
  limiter(keyPrefix: string, points: number, durationS: number): (key: string) => Promise<void> {
    const limiter = new RateLimiterPostgres({ ...limiterBase(this.client), keyPrefix, points, duration: durationS });
    return (key) => consume(limiter, key);
  }

  /** Drops counters whose window ended more than a minute ago; returns how many. */
  async prune(now = Date.now()): Promise<number> {
    const r = await this.sql`DELETE FROM rate_limits WHERE expire < ${now - 60_000}`;
    return r.count;
  }
}

/** How every limiter uses the table: it comes from our migrations and our hourly prune clears it, so no library timers. */
export const limiterBase = (client: PgQueryable) =>
  ({ storeClient: client, storeType: 'pool', tableName: RATE_LIMITS_TABLE, tableCreated: true, clearExpiredByTimeout: false }) as const;

/** Whole seconds to wait, at least 1 (a Retry-After of 0 invites an immediate retry). */
export const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

/** Takes a point for `key`: RATE_LIMITED with the wait when over the limit; a store failure as it is. */
export async function consume(limiter: RateLimiterPostgres, key: string): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (e) {
    // The library rejects with a RateLimiterRes when over the limit, with an Error when the store fails.
    if (e instanceof RateLimiterRes) throw new RateLimitedError(seconds(e.msBeforeNext));
    throw e;
  }
}
