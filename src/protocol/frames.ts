// The realtime wire protocol `sb.v1`: every frame is a map with a type tag `t`. Client requests
// carry an `id` (a positive integer the client chooses) and get exactly one reply carrying the
// same `id`. These are wire types, shared by the server and the client SDK; docs/protocol.md is
// their specification.

export const PROTOCOL_VERSION = 'sb.v1';
export const SUBPROTOCOL_MSGPACK = 'sb.v1.msgpack';
export const SUBPROTOCOL_JSON = 'sb.v1.json';
export type Encoding = 'msgpack' | 'json';

export interface UserRef {
  id: string;
  username: string;
}

// ---- client → server ----

export interface SubscribeFrame {
  t: 'sub';
  id: number;
  room: string;
  /** Deliver every message with a larger seq first, then the live ones. Omit for live only. */
  since?: number;
}
export interface UnsubscribeFrame {
  t: 'unsub';
  id: number;
  room: string;
}
export interface PublishFrame {
  t: 'pub';
  id: number;
  room: string;
  /** Client message id: unique per sender; a retry with the same cid gets the first seq. */
  cid: string;
  body: string;
}
export interface HistoryFrame {
  t: 'hist';
  id: number;
  room: string;
  before?: number;
  after?: number;
  limit?: number;
}
export interface TypingFrame {
  t: 'typing';
  id: number;
  room: string;
}
export interface AuthFrame {
  t: 'auth';
  id: number;
  token: string;
}
export interface PingFrame {
  t: 'ping';
  id: number;
}

export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PublishFrame | HistoryFrame | TypingFrame | AuthFrame | PingFrame;

// ---- server → client ----

export interface HelloFrame {
  t: 'hello';
  v: typeof PROTOCOL_VERSION;
  node: string;
  session: string;
  user: UserRef;
  /** When the access token expires (ms since the epoch); send `auth` with a fresh one before. */
  exp: number;
  limits: { maxFrameBytes: number; maxMessageBytes: number; maxSubscriptions: number; publishPerSecond: number; publishBurst: number };
}
export interface MessageFrame {
  t: 'msg';
  room: string;
  seq: number;
  /** Message id (UUID). */
  mid: string;
  /** Sender's user id (null once the account is gone). */
  from: string | null;
  cid: string;
  /** Server time the message was stored, ms since the epoch. */
  ts: number;
  body: string;
}
export interface SubscribedFrame {
  t: 'subscribed';
  id: number;
  room: string;
  /** The room's latest seq when the subscription became live; every later message arrives as `msg`. */
  seq: number;
}
export interface OkFrame {
  t: 'ok';
  id: number;
}
export interface AckFrame {
  t: 'ack';
  id: number;
  cid: string;
  seq: number;
  mid: string;
  ts: number;
  /** True when this cid was already stored: the original seq is returned. */
  dup?: true;
}
export interface NackFrame {
  t: 'nack';
  id: number;
  cid: string;
  code: string;
  message: string;
}
export interface HistoryReplyFrame {
  t: 'history';
  id: number;
  room: string;
  messages: Omit<MessageFrame, 't' | 'room'>[];
  lastSeq: number;
}
export interface PresenceFrame {
  t: 'presence';
  room: string;
  /** `snapshot` lists everyone present; `join` / `leave` are deltas. */
  op: 'snapshot' | 'join' | 'leave';
  users: UserRef[];
}
export interface EventFrame {
  t: 'event';
  room: string;
  kind: 'member_joined' | 'member_left' | 'room_deleted';
  user?: UserRef;
}
export interface TypingNoticeFrame {
  t: 'typing';
  room: string;
  user: UserRef;
}
export interface PongFrame {
  t: 'pong';
  id: number;
}
export interface ErrorFrame {
  t: 'error';
  /** The id of the request this answers, or null when the frame had none (unparseable). */
  id: number | null;
  code: string;
  message: string;
}
export interface ReauthFrame {
  t: 'reauth';
  /** Deadline (ms since the epoch) for an `auth` frame with a fresh token. */
  deadline: number;
}
export interface ShutdownFrame {
  t: 'shutdown';
  /** Suggested delay before reconnecting, ms. */
  reconnectMs: number;
}

export type ServerFrame =
  | HelloFrame
  | MessageFrame
  | SubscribedFrame
  | OkFrame
  | AckFrame
  | NackFrame
  | HistoryReplyFrame
  | PresenceFrame
  | EventFrame
  | TypingNoticeFrame
  | PongFrame
  | ErrorFrame
  | ReauthFrame
  | ShutdownFrame;

/**
 * WebSocket close codes. 4000–4099: transient, reconnect (with backoff) and resume. 4100–4199:
 * do not reconnect as is (fix the cause first: get a fresh token, fix the client).
 */
export const CloseCode = {
  /** The node is shutting down: reconnect, possibly to another node. */
  SHUTDOWN: 4000,
  /** The client fell too far behind (backpressure): reconnect and resume with `since`. */
  SLOW_CONSUMER: 4001,
  /** The node is overloaded or failed internally: reconnect with backoff. */
  OVERLOADED: 4002,
  /** Authentication failed or expired without `auth` in time: refresh the token, then reconnect. */
  AUTH_FAILED: 4100,
  /** Repeated protocol violations: a client bug; reconnecting would repeat it. */
  PROTOCOL_VIOLATION: 4101,
} as const;

export const isReconnectable = (code: number): boolean => (code >= 4000 && code < 4100) || code === 1001 || code === 1006 || code === 1011;
