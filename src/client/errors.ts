// Errors the client SDK reports: one class carrying a stable `code`. Server refusals keep the
// server's code (e.g. `NOT_MEMBER`, `CONFLICT`); conditions the client detects itself have codes
// of their own, listed in ClientErrorCode.

/**
 * Codes the client raises itself (the server's codes pass through unchanged):
 * - `TIMEOUT`: no reply within `requestTimeoutMs`;
 * - `DISCONNECTED`: the connection dropped before a non-repeatable request was answered;
 * - `CLOSED`: `close()` was called;
 * - `CONNECT_FAILED`: the first connection attempt failed (bad URL, refused, closed before `hello`);
 * - `AUTH_FAILED`: the hub rejected the token and no new one was available;
 * - `PROTOCOL_VIOLATION`: the hub closed the connection for protocol violations (a client bug);
 * - `SESSION_ENDED`: the login session ended (logout, revoked from another device, password changed)
 *   or the account was deleted: log in again;
 * - `ACCOUNT_DISABLED`: an admin disabled the account (a hub code, also the close 4103);
 * - `CLOSED_BY_SERVER`: the hub closed the connection with a code that does not invite a reconnect;
 * - `TOKEN`: the token function threw;
 * - `BAD_FRAME`: a frame from the hub could not be decoded;
 * - `GAP`: a room's messages could not be made contiguous after repeated re-subscriptions;
 * - `PAYLOAD_TOO_LARGE`: a publish would exceed the hub's frame limit (never sent);
 * - `UNSUPPORTED`: the runtime lacks something the client needs (Web Crypto for cids).
 *
 * A robot command whose outcome became unknown (the connection dropped) does not fail: it resolves
 * with stage `lost` (see RobotHandle.command).
 */
export type ClientErrorCode =
  | 'TIMEOUT'
  | 'DISCONNECTED'
  | 'CLOSED'
  | 'CONNECT_FAILED'
  | 'AUTH_FAILED'
  | 'PROTOCOL_VIOLATION'
  | 'SESSION_ENDED'
  | 'CLOSED_BY_SERVER'
  | 'TOKEN'
  | 'BAD_FRAME'
  | 'GAP'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED';

/** Where a failure happened: the room or robot it concerns, the request the hub refused. */
export interface SwitchboardErrorOptions {
  room?: string | undefined;
  robot?: string | undefined;
  requestId?: number | undefined;
  cause?: unknown;
}

/** A failure with a stable `code`: the server's (`NOT_MEMBER`, `RATE_LIMITED`, …) or the client's own. */
export class SwitchboardError extends Error {
  /** Stable, machine-readable: branch on this, not on `message`. */
  readonly code: string;
  /** The room the failure concerns, when there is one. */
  readonly room: string | undefined;
  /** The robot the failure concerns, when there is one. */
  readonly robot: string | undefined;
  /** The id of the sb.v1 request the hub answered with this error (server refusals only), for matching the hub's logs and frames. */
  readonly requestId: number | undefined;

  constructor(code: ClientErrorCode | (string & {}), message: string, options: SwitchboardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SwitchboardError';
    this.code = code;
    this.room = options.room;
    this.robot = options.robot;
    this.requestId = options.requestId;
  }
}

/** Nack codes after which a publish is sent again with the same cid (the hub dedups it). */
export const RETRYABLE_PUBLISH_CODES: ReadonlySet<string> = new Set(['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED', 'RATE_LIMITED']);

/** `e` as a SwitchboardError, wrapping anything else under `code`. */
export function asSwitchboardError(e: unknown, code: ClientErrorCode, message: string): SwitchboardError {
  if (e instanceof SwitchboardError) return e;
  return new SwitchboardError(code, `${message}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
