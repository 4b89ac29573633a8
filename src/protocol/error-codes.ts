// Every error code the hub sends, over both transports, in one table: the `code` of REST error
// bodies and of WebSocket `error` and `nack` frames. It lives with the wire types because the
// codes are part of the protocol (the SDK types frames with them); docs/protocol.md lists the same
// codes, and a test keeps the two in step. Robot-link codes (sbr.v1) are a separate wire.

/**
 * What a code means to a WebSocket client. `retryable`: the same request, resent unchanged (a
 * publish with the same `cid`), may succeed after a wait — a transient condition of the hub.
 * `terminal`: it will not succeed until the client or the state it names changes. `null`: the code
 * is never sent in a WebSocket frame (REST only, or a refused upgrade, which is an HTTP response).
 */
export type WsMeaning = 'retryable' | 'terminal' | null;

export interface ErrorCodeSpec {
  /** The HTTP status of a response carrying this code. */
  readonly http: number;
  readonly ws: WsMeaning;
}

export const ERROR_CODES = {
  BAD_JSON: { http: 400, ws: null },
  VALIDATION: { http: 400, ws: 'terminal' },
  // WebSocket only: a frame that cannot be read, or of no known type. Over REST, BAD_JSON and a 404.
  BAD_FRAME: { http: 400, ws: 'terminal' },
  UNKNOWN_TYPE: { http: 400, ws: 'terminal' },
  UNAUTHENTICATED: { http: 401, ws: null },
  TOKEN_EXPIRED: { http: 401, ws: 'terminal' },
  TOKEN_INVALID: { http: 401, ws: 'terminal' },
  REFRESH_REUSED: { http: 401, ws: null },
  SESSION_ENDED: { http: 401, ws: 'terminal' },
  ACCOUNT_DISABLED: { http: 403, ws: 'terminal' },
  CSRF: { http: 403, ws: null },
  FORBIDDEN: { http: 403, ws: 'terminal' },
  NOT_MEMBER: { http: 403, ws: 'terminal' },
  NOT_OWNER: { http: 403, ws: null },
  // REST only: joining a room that banned you.
  BANNED: { http: 403, ws: null },
  NOT_FOUND: { http: 404, ws: 'terminal' },
  METHOD_NOT_ALLOWED: { http: 405, ws: null },
  UPGRADE_REQUIRED: { http: 426, ws: null },
  CONFLICT: { http: 409, ws: 'terminal' },
  USERNAME_TAKEN: { http: 409, ws: null },
  EMAIL_TAKEN: { http: 409, ws: null },
  // WebSocket only: a `sub` replaced by a later `sub` or `unsub` of the same room.
  CANCELLED: { http: 409, ws: 'terminal' },
  PAYLOAD_TOO_LARGE: { http: 413, ws: 'terminal' },
  // REST only (uploads): a body without a Content-Length; a file over its owner's quota; a range past its end.
  LENGTH_REQUIRED: { http: 411, ws: null },
  QUOTA_EXCEEDED: { http: 413, ws: null },
  RANGE_NOT_SATISFIABLE: { http: 416, ws: null },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, ws: null },
  RATE_LIMITED: { http: 429, ws: 'retryable' },
  ROBOT_OFFLINE: { http: 409, ws: 'terminal' },
  LEASE_REQUIRED: { http: 409, ws: 'terminal' },
  LEASE_HELD: { http: 409, ws: 'terminal' },
  TIMEOUT: { http: 504, ws: 'retryable' },
  UNAVAILABLE: { http: 503, ws: 'retryable' },
  OVERLOADED: { http: 503, ws: 'retryable' },
  STOPPED: { http: 503, ws: 'retryable' },
  // REST only: a feature this hub was not configured for (email without an SMTP server).
  NOT_ENABLED: { http: 501, ws: null },
  INTERNAL: { http: 500, ws: 'terminal' },
  // Never in an sb.v1 WebSocket frame (ws: null): REST, and the robot link's ERROR with ref "renew"
  // (sbr.v1, a separate wire): a robot's certificate signing request that cannot be signed.
  CSR_MALFORMED: { http: 400, ws: null },
  CSR_SIGNATURE_INVALID: { http: 400, ws: null },
  CSR_KEY_UNSUPPORTED: { http: 400, ws: null },
  // REST only: a fleet bootstrap token that does not admit a robot (POST /api/v1/robots/enroll).
  BOOTSTRAP_TOKEN_UNKNOWN: { http: 401, ws: null },
  BOOTSTRAP_TOKEN_EXPIRED: { http: 401, ws: null },
  BOOTSTRAP_TOKEN_REVOKED: { http: 401, ws: null },
  BOOTSTRAP_TOKEN_USED_UP: { http: 403, ws: null },
} as const satisfies Record<string, ErrorCodeSpec>;

/** A code the hub may send; any other string is a compile error where a frame or SbError is built. */
export type ErrorCode = keyof typeof ERROR_CODES;

export const isErrorCode = (s: string): s is ErrorCode => Object.hasOwn(ERROR_CODES, s);
