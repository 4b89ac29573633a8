// Errors are values with stable codes. Every failure a client can see is an SbError: its `code` is
// part of the public API (REST error bodies, later WebSocket error frames), `status` is the HTTP
// status, and `message` is safe to show (never a stack, a query or a secret).

export type ErrorCode =
  | 'BAD_JSON'
  | 'VALIDATION'
  | 'UNAUTHENTICATED'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_INVALID'
  | 'REFRESH_REUSED'
  | 'CSRF'
  | 'FORBIDDEN'
  | 'NOT_MEMBER'
  | 'NOT_OWNER'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'UPGRADE_REQUIRED'
  | 'CONFLICT'
  | 'USERNAME_TAKEN'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RATE_LIMITED'
  | 'ROBOT_OFFLINE'
  | 'LEASE_REQUIRED'
  | 'LEASE_HELD'
  | 'TIMEOUT'
  | 'UNAVAILABLE'
  | 'OVERLOADED'
  | 'INTERNAL';

/** HTTP status per code: the one table that maps a condition to its status. */
export const httpStatus: Record<ErrorCode, number> = {
  BAD_JSON: 400,
  VALIDATION: 400,
  UNAUTHENTICATED: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_INVALID: 401,
  REFRESH_REUSED: 401,
  CSRF: 403,
  FORBIDDEN: 403,
  NOT_MEMBER: 403,
  NOT_OWNER: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  UPGRADE_REQUIRED: 426,
  CONFLICT: 409,
  USERNAME_TAKEN: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  ROBOT_OFFLINE: 409,
  LEASE_REQUIRED: 409,
  LEASE_HELD: 409,
  TIMEOUT: 504,
  UNAVAILABLE: 503,
  OVERLOADED: 503,
  INTERNAL: 500,
};

export class SbError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields for the error body, e.g. the invalid `field` or `retryAfterS`. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SbError';
    this.code = code;
    this.status = httpStatus[code];
    this.details = details;
  }
}

export class ValidationError extends SbError {
  constructor(field: string, message: string) {
    super('VALIDATION', `${field}: ${message}`, { field });
  }
}

export class RateLimitedError extends SbError {
  readonly retryAfterS: number;
  /** The same wait in ms (WebSocket replies carry it as `retryAfterMs`); whole seconds unless given. */
  readonly retryAfterMs: number;
  constructor(retryAfterS: number, message = 'too many requests; retry later', retryAfterMs = retryAfterS * 1000) {
    super('RATE_LIMITED', message, { retryAfterS });
    this.retryAfterS = retryAfterS;
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
