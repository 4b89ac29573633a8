// Driver errors stop here: the store translates what postgres.js reports into its own named errors,
// so no layer above reads a SQLSTATE or a socket errno. Both backends report alike: the embedded
// PGlite is reached through postgres.js over a Unix socket (see db.ts), so its failures arrive as
// the same `PostgresError`s (server errors, with a SQLSTATE) and socket or connection errors.

import postgres from 'postgres';
import { SbError } from '../errors.js';

/** Seconds a client should wait before retrying when the database cannot be reached. */
const UNAVAILABLE_RETRY_AFTER_S = 5;

/** The database cannot be reached (or is shutting down): not "the query failed". Retry later. */
export class StoreUnavailableError extends SbError {
  declare readonly code: 'UNAVAILABLE';
  constructor(options: { cause: unknown }) {
    super('UNAVAILABLE', 'the store is unreachable; retry shortly', undefined, { cause: options.cause, retryAfterS: UNAVAILABLE_RETRY_AFTER_S });
    this.name = 'StoreUnavailableError';
  }
}

/**
 * A row would repeat a value a unique constraint forbids. Repositories turn the ones they expect into
 * their answers (a taken username); callers that race on purpose (a cid sent twice) retry on it.
 */
export class UniqueViolationError extends Error {
  /** The violated constraint or unique index, when the database names it. */
  readonly constraint: string | undefined;
  constructor(constraint: string | undefined, options: { cause: unknown }) {
    super(`unique constraint ${constraint ?? '(unnamed)'} violated`, options);
    this.name = 'UniqueViolationError';
    this.constraint = constraint;
  }
}

/** Socket and postgres.js connection errors: the database could not be reached or the link broke. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
]);

/**
 * SQLSTATEs meaning the server cannot serve us now rather than that the query is wrong: class 08
 * (connection exception), 53300 (too many connections), 57P01–57P03 (shutdown, crash, starting up).
 */
const isUnavailableState = (state: string): boolean => state.startsWith('08') || state === '53300' || /^57P0[123]$/.test(state);

/** The store's own error for a driver error; anything it does not recognise is returned as it is. */
export function translateDriverError(e: unknown): unknown {
  if (e instanceof StoreUnavailableError || e instanceof UniqueViolationError) return e;
  if (e instanceof postgres.PostgresError) {
    if (e.code === '23505') return new UniqueViolationError(e.constraint_name, { cause: e });
    if (isUnavailableState(e.code)) return new StoreUnavailableError({ cause: e });
    return e;
  }
  const err = e as { code?: unknown; syscall?: unknown } | null;
  const code = typeof err?.code === 'string' ? err.code : '';
  // A Unix socket that is gone (the embedded server stopped) fails to connect with ENOENT.
  if (CONNECTION_CODES.has(code) || (code === 'ENOENT' && err?.syscall === 'connect')) return new StoreUnavailableError({ cause: e });
  return e;
}

/**
 * The repository with every method's failure translated: what it throws or rejects with passes
 * through translateDriverError. The Store wraps each repository once, so every query any layer runs
 * through the store is covered, including ones added later.
 */
export function translatingErrors<T extends object>(repo: T): T {
  return new Proxy(repo, {
    get(target, prop) {
      // Getters run on the repository itself; only its methods are wrapped, not function-valued
      // fields (its `sql`).
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || Object.hasOwn(target, prop)) return value;
      return (...args: unknown[]) => {
        let result: unknown;
        try {
          result = value.apply(target, args);
        } catch (e) {
          throw translateDriverError(e);
        }
        if (result instanceof Promise) {
          return result.catch((e: unknown) => {
            throw translateDriverError(e);
          });
        }
        return result;
      };
    },
  });
}
