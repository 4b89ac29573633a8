// Errors are values with stable codes. Every failure a client can see is an SbError: its `code` is
// part of the public API (REST error bodies and WebSocket error and nack frames alike), `status` is
// the HTTP status from the one code table, and `message` is safe to show (never a stack, a query or
// a secret). Errors of the actor runtime and of the store are SbErrors too, so every transport
// answers a condition the same way.

import { ERROR_CODES, type ErrorCode } from './protocol/error-codes.js';

export { ERROR_CODES, type ErrorCode, type ErrorCodeSpec, isErrorCode, type WsMeaning } from './protocol/error-codes.js';

/** HTTP status per code, derived from the one code table in src/protocol/error-codes.ts. */
export const httpStatus = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, spec]) => [code, spec.http])) as Record<ErrorCode, number>;

export interface SbErrorOptions {
  cause?: unknown;
  /** Seconds a client should wait before retrying: REST sends it as `Retry-After`. */
  retryAfterS?: number;
}

export class SbError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields for the error body, e.g. the invalid `field` or `retryAfterS`. */
  readonly details: Record<string, unknown> | undefined;
  /** Seconds to wait before a retry may succeed, when the condition says (REST: `Retry-After`). */
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: SbErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SbError';
    this.code = code;
    this.status = httpStatus[code];
    this.details = details;
    this.retryAfterS = options?.retryAfterS;
  }
}

export class ValidationError extends SbError {
  constructor(field: string, message: string) {
    super('VALIDATION', `${field}: ${message}`, { field });
  }
}

export class RateLimitedError extends SbError {
  declare readonly retryAfterS: number;
  /** The same wait in ms (WebSocket replies carry it as `retryAfterMs`); whole seconds unless given. */
  readonly retryAfterMs: number;
  constructor(retryAfterS: number, message = 'too many requests; retry later', retryAfterMs = retryAfterS * 1000) {
    super('RATE_LIMITED', message, { retryAfterS }, { retryAfterS });
    this.name = 'RateLimitedError';
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Cluster: no node is a robot's home (nobody answers for it), as opposed to its home answering that
 * the robot is offline. The asking node then decides itself, as for a robot never seen.
 */
export class NobodyHomeError extends SbError {
  constructor() {
    super('ROBOT_OFFLINE', 'the robot is offline');
  }
}

/**
 * Cluster: the robot's home did not answer in time. Unlike a refusal, the request may still take
 * effect there, so its outcome is unknown.
 */
export class NoAnswerError extends SbError {
  constructor() {
    super('TIMEOUT', "the robot's node did not answer in time");
  }
}

export const notFound = (what: string) => new SbError('NOT_FOUND', `${what} not found`);

/** The JSON body every error response carries. */
export function errorBody(err: SbError): { error: Record<string, unknown> } {
  return { error: { code: err.code, message: err.message, ...err.details } };
}
