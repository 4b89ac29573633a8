// The realtime wire protocol `sb.v1`: every frame is a map with a type tag `t`. Client requests
// carry an `id` (a positive integer the client chooses) and get exactly one reply carrying the
// same `id`. These are wire types, shared by the server and the client SDK; docs/protocol.md is
// their specification.

import type { ErrorCode } from './error-codes.js';

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
  /** May be empty when the message has attachments. */
  body: string;
  /** Ids of attachments you uploaded (`POST /api/v1/attachments`), at most 10. */
  att?: string[];
}
/** A file a message carries: what `POST /api/v1/attachments` answered; its bytes are at `GET /api/v1/attachments/:id`. */
export interface Attachment {
  id: string;
  /** The file name given at upload. */
  name: string;
  /** Its media type, e.g. `image/png`. */
  type: string;
  /** Bytes. */
  size: number;
  /** Pixels, for an image. */
  width?: number;
  height?: number;
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
/** Moves your read marker in a room forward to `seq` (as `PUT /rooms/:id/read` does); answered `ok`. */
export interface MarkReadFrame {
  t: 'read';
  id: number;
  room: string;
  seq: number;
}
/**
 * Catches up on your own stream: the notices after `since` (your last `n`; omit it on a device that
 * has none yet), and the rooms you have unread messages in. Answered with `feed`.
 */
export interface FeedRequestFrame {
  t: 'feed';
  id: number;
  since?: number;
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

export interface WatchFrame {
  t: 'watch';
  id: number;
  robot: string;
  /** Only these channels' samples (by name, at most 64; names not advertised yet are allowed); omitted: every channel. */
  channels?: string[];
  /** By reliable channel name: replay its stored samples numbered above this seq (the newest 1,000) after `watching`, before live ones. */
  since?: Record<string, number>;
}
export interface UnwatchFrame {
  t: 'unwatch';
  id: number;
  robot: string;
}
export interface CommandFrame {
  t: 'cmd';
  id: number;
  robot: string;
  /** The command's name, as the robot knows it (1–64 characters). */
  name: string;
  /** Any value; the audit log keeps its SHA-256 digest, never the value. */
  args?: unknown;
  /** The deadline, ms from now (default 10 s, at most 10 min). */
  timeoutMs?: number;
}
export interface EstopFrame {
  t: 'estop';
  id: number;
  robot: string;
}
export interface LeaseFrame {
  t: 'lease';
  id: number;
  robot: string;
  op: 'acquire' | 'renew' | 'release';
  /** Lease lifetime from now, ms (default 30 s, 1 s to 5 min); acquire and renew. */
  ttlMs?: number;
  /** Owner (or admin) only, with acquire: take the lease from its current holder. */
  force?: boolean;
}

export type ClientFrame =
  | SubscribeFrame
  | UnsubscribeFrame
  | PublishFrame
  | HistoryFrame
  | TypingFrame
  | MarkReadFrame
  | FeedRequestFrame
  | AuthFrame
  | PingFrame
  | WatchFrame
  | UnwatchFrame
  | CommandFrame
  | EstopFrame
  | LeaseFrame;

// ---- server → client ----

export interface HelloFrame {
  t: 'hello';
  v: typeof PROTOCOL_VERSION;
  node: string;
  session: string;
  user: UserRef;
  /** When the access token expires (ms since the epoch); send `auth` with a fresh one before. */
  exp: number;
  limits: {
    maxFrameBytes: number;
    maxMessageBytes: number;
    maxSubscriptions: number;
    publishPerSecond: number;
    publishBurst: number;
    /** WebSockets this user may hold open on the node at once (more are refused at upgrade with 429). */
    maxConnectionsPerUser: number;
    /** WebSockets one client IP may hold open on the node at once. */
    maxConnectionsPerIp: number;
    /** Sustained requests per second on this socket other than `pub` and `estop`. */
    requestsPerSecond: number;
    /** How long after `reauth` a fresh token is awaited before the socket closes with 4100, ms. */
    reauthGraceMs: number;
    /** How many messages back `sub` with `since` may resume; further back, page through history. */
    maxResumeMessages: number;
    /** Seconds without traffic before the socket is closed (the server pings). */
    idleTimeoutS: number;
    /** Violation budget: this many bad frames at once, refilled evenly over `violationWindowMs`; one more closes with 4101. */
    maxViolations: number;
    violationWindowMs: number;
  };
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
  /** Empty once deleted. */
  body: string;
  /** Its attachments, in the order given (gone once deleted). */
  att?: Attachment[];
  /** The message was deleted (a `message_deleted` event later in the room says by whom): a tombstone. */
  deleted?: true;
  /** The message was edited: `body` is its current text (a `message_edited` event later in the room says when). */
  edited?: true;
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
  code: ErrorCode;
  message: string;
  /** With RATE_LIMITED: ms until a retry will be accepted. */
  retryAfterMs?: number;
}
export interface HistoryReplyFrame {
  t: 'history';
  id: number;
  room: string;
  /** Messages and timeline events, in seq order. */
  messages: HistoryItem[];
  lastSeq: number;
}
/** One entry of a room's history: a message, or a timeline event (it has a `kind`). */
export type HistoryItem = (Untagged<MessageFrame> & { reactions?: ReactionCount[] }) | Untagged<TimelineEventFrame>;
/** One emoji on a message in history: how many reacted with it, and whether you did. */
export interface ReactionCount {
  emoji: string;
  count: number;
  me: boolean;
}
/** A frame without its `t` and `room` (each member of a union separately). */
type Untagged<F> = F extends unknown ? Omit<F, 't' | 'room'> : never;
export interface PresenceFrame {
  t: 'presence';
  room: string;
  /** `snapshot` lists everyone present; `join` / `leave` are deltas. */
  op: 'snapshot' | 'join' | 'leave';
  users: UserRef[];
}
/**
 * What happened in a room besides messages, kept in its log in seq order: `user` joined, left, was
 * removed or banned, or got `role`; the room was renamed to `name`; the message at seq `target` was
 * deleted. (`from`, in the frame, is who did it.)
 */
export type TimelineEvent =
  | { kind: 'member_joined' | 'member_left' | 'member_removed' | 'member_banned'; user: UserRef }
  /** `owner` only when a deleted account's room passed to its longest-standing member. */
  | { kind: 'role_changed'; user: UserRef; role: 'owner' | 'moderator' | 'member' }
  | { kind: 'room_renamed'; name: string }
  | { kind: 'message_deleted'; target: number }
  /** The message at `target` now reads `body`. */
  | { kind: 'message_edited'; target: number; body: string }
  /** `user` added or removed their `emoji` on the message at `target`. */
  | { kind: 'reaction_added' | 'reaction_removed'; target: number; emoji: string; user: UserRef };
export type TimelineKind = TimelineEvent['kind'];
/** A timeline event: it takes a seq like a message, and a resume replays it like one. */
export type TimelineEventFrame = {
  t: 'event';
  room: string;
  seq: number;
  /** Its id (UUID). */
  mid: string;
  /** Who did it (null once that account is gone). */
  from: string | null;
  ts: number;
} & TimelineEvent;
/** The room was deleted (it has no seq: the room's log is gone with it). */
export interface RoomDeletedFrame {
  t: 'event';
  room: string;
  kind: 'room_deleted';
}
export type EventFrame = TimelineEventFrame | RoomDeletedFrame;
/** What a room's log holds, as frames: each takes the next seq. */
export type TimelineFrame = MessageFrame | TimelineEventFrame;
/**
 * The hub ended this connection's subscription to a room itself: you are no longer a member
 * (`NOT_MEMBER`: you left, were removed or banned, on any device). Do not resubscribe.
 */
export interface UnsubscribedFrame {
  t: 'unsubscribed';
  room: string;
  code: ErrorCode;
  message: string;
}
/** Your read marker in a room moved (on any of your devices): sent to every socket of yours. */
export interface ReadFrame {
  t: 'read';
  /** Its number in your own stream (see `feed`). */
  n?: number;
  room: string;
  seq: number;
}
/** In a direct room, the other person read up to `seq`. */
export interface ReceiptFrame {
  t: 'receipt';
  room: string;
  user: UserRef;
  seq: number;
}
/** A change to your contacts, sent to every socket of yours (and of the other person, where it concerns them). */
export interface ContactFrame {
  t: 'contact';
  /** Its number in your own stream (see `feed`). */
  n?: number;
  kind: ContactChange;
  user: UserRef;
}
/** Your notification level in a room: every message, only those that mention you, or none. */
export type NotifyLevel = 'all' | 'mentions' | 'muted';
/** A room as a notice names it; a direct room's `peer` is the other person. */
export interface RoomRef {
  id: string;
  kind: 'group' | 'direct';
  name: string | null;
  peer?: UserRef;
}
/**
 * What concerns you in your rooms, in your own stream: you were added to a room (a new direct room
 * too), removed from one (you left on another device, a moderator removed or banned you, or it was
 * deleted), your role changed, or your notification level changed on another device. `by` is who
 * did it (a user id; null when unknown or gone).
 */
export type PersonalNotice =
  | { kind: 'room_added'; room: RoomRef; by: string | null }
  | { kind: 'room_removed'; room: string; reason: 'left' | 'removed' | 'banned' | 'deleted'; by: string | null }
  | { kind: 'role_changed'; room: string; role: 'owner' | 'moderator' | 'member'; by: string | null }
  | { kind: 'notify'; room: string; level: NotifyLevel }
  /** From a backend through the server API: its own JSON `data`; `from` names the API key. */
  | { kind: 'app'; data: unknown; from: string };
/** A numbered notice of your own stream (see `feed`). */
export type PersonalNoticeFrame = { t: 'notice'; n: number } & PersonalNotice;
/**
 * New messages in one of your rooms, live (not numbered: a resume brings unread counts instead):
 * `count` messages up to `seq`, the last from `from` reading `preview` (its first 100 characters).
 * `mention`: one of them mentions you. Sent per your level there: `all`, or `mentions` with a mention.
 */
export interface MessageNoticeFrame {
  t: 'notice';
  kind: 'message';
  room: string;
  seq: number;
  count: number;
  from: string | null;
  preview: string;
  mention?: true;
}
export type NoticeFrame = PersonalNoticeFrame | MessageNoticeFrame;
/** What your stream numbers: these frames, each with its `n`. */
export type StreamFrame = PersonalNoticeFrame | (ReadFrame & { n: number }) | (ContactFrame & { n: number });
/** A room you have unread messages in. */
export interface UnreadRoom {
  room: string;
  /** Its last seq. */
  seq: number;
  unread: number;
  mentions: number;
}
/** The answer to `feed`. */
export interface FeedFrame {
  t: 'feed';
  id: number;
  /** Your stream's last number: resume after it next time. */
  n: number;
  /** The numbered frames after `since`, in order, at most 100 (then `more`: ask again after the last). */
  notices: StreamFrame[];
  more?: true;
  /** Notices after `since` were pruned (kept `SB_NOTICE_RETENTION_DAYS`, 30 by default): reload rooms and contacts, then go on from `n`. */
  reset?: true;
  /** The rooms you have unread messages in (at most 200). */
  unread: UnreadRoom[];
}
export type ContactChange = 'requested' | 'request_sent' | 'accepted' | 'declined' | 'cancelled' | 'removed' | 'blocked' | 'unblocked';
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
  code: ErrorCode;
  message: string;
  /** With RATE_LIMITED: ms until a retry will be accepted (absent when waiting does not help). */
  retryAfterMs?: number;
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

export type RobotRoleName = 'owner' | 'operator' | 'viewer';

export interface ChannelInfo {
  id: number;
  name: string;
  encoding: string;
  schema: string | null;
  delivery: 'latest' | 'reliable';
  /** How `schemaData` is written (`jsonschema`, `ros2msg`, `ros2idl`, `protobuf`, `flatbuffer`, …): only when the robot sent a schema. */
  schemaEncoding?: string | null;
  /** The schema: text, or bytes (base64 on JSON connections, like binary `tm` data); only when the robot sent one. */
  schemaData?: string | Uint8Array | null;
}

export interface LeaseInfo {
  holder: UserRef;
  /** When the lease lapses unless renewed, ms since the epoch. */
  expiresAt: number;
}

/** One telemetry sample. */
export interface TelemetryFrame {
  t: 'tm';
  robot: string;
  ch: number;
  /** The robot's own timestamp for the sample, ms. */
  ts: number;
  data: unknown;
  /** On a reliable channel, when the robot numbered the sample: its number (stored, see `watch.since`). */
  seq?: number;
}
export interface WatchingFrame {
  t: 'watching';
  id: number;
  robot: string;
  name: string;
  /** The caller's role; null for an admin without one. */
  role: RobotRoleName | null;
  online: boolean;
  /** When the robot last had a live connection (ms since the epoch), or null if never. */
  lastSeen: number | null;
  channels: ChannelInfo[];
  /** The latest sample of every channel that has one: the state right now. */
  latest: Omit<TelemetryFrame, 't' | 'robot'>[];
  lease: LeaseInfo | null;
}
export interface RobotEventFrame {
  t: 'robot';
  robot: string;
  /** online / offline: the robot connected or went away; deleted / access_revoked: this watch has ended. */
  kind: 'online' | 'offline' | 'deleted' | 'access_revoked';
  /** With `online`: the channels the robot advertised. */
  channels?: ChannelInfo[];
  /** With `offline`: when it was last seen, ms since the epoch. */
  lastSeen?: number;
}
/** A watched robot advertised or withdrew channels: its whole channel list now. */
export interface ChannelsFrame {
  t: 'channels';
  robot: string;
  channels: ChannelInfo[];
}
export interface LeaseEventFrame {
  t: 'lease';
  robot: string;
  /** The new holder, or null when nobody holds the lease. */
  lease: LeaseInfo | null;
  reason: 'acquired' | 'renewed' | 'released' | 'expired' | 'taken_over' | 'estop' | 'access_revoked' | 'node_lost';
}
export interface LeasedFrame {
  t: 'leased';
  id: number;
  robot: string;
  /** The lease now; null after release. */
  lease: LeaseInfo | null;
}
export interface QueuedFrame {
  t: 'queued';
  id: number;
  robot: string;
  /** The command id (UUID): later `cmd` frames and the audit log refer to it. */
  cmd: string;
}
export type CommandStageName = 'delivered' | 'accepted' | 'rejected' | 'completed' | 'failed' | 'timeout' | 'lost';
export interface CommandStatusFrame {
  t: 'cmd';
  robot: string;
  cmd: string;
  stage: CommandStageName;
  /** When the hub saw this stage, ms since the epoch. */
  ts: number;
  /** completed: the robot's result; rejected / failed: its reason; lost: why the outcome is unknown. */
  detail?: unknown;
}

export type ServerFrame =
  | TelemetryFrame
  | WatchingFrame
  | RobotEventFrame
  | ChannelsFrame
  | LeaseEventFrame
  | LeasedFrame
  | QueuedFrame
  | CommandStatusFrame
  | HelloFrame
  | MessageFrame
  | SubscribedFrame
  | OkFrame
  | AckFrame
  | NackFrame
  | HistoryReplyFrame
  | PresenceFrame
  | EventFrame
  | ContactFrame
  | ReadFrame
  | NoticeFrame
  | FeedFrame
  | ReceiptFrame
  | UnsubscribedFrame
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
  /** A frame over `hello.limits.maxFrameBytes` (RFC 6455 "message too big"): a client bug. */
  MESSAGE_TOO_BIG: 1009,
  /** The node is overloaded or failed internally: reconnect with backoff. */
  OVERLOADED: 4002,
  /** A backend disconnected the person through the server API: their session holds, so reconnecting works. */
  DISCONNECTED: 4004,
  /** Authentication failed or expired without `auth` in time: refresh the token, then reconnect. */
  AUTH_FAILED: 4100,
  /** Repeated protocol violations: a client bug; reconnecting would repeat it. */
  PROTOCOL_VIOLATION: 4101,
  /** The login session ended (logout, revoked, password changed) or the account was deleted: log in again. */
  SESSION_ENDED: 4102,
  /** An admin disabled the account: its sessions ended and it cannot log in until re-enabled. */
  ACCOUNT_DISABLED: 4103,
} as const;

export const isReconnectable = (code: number): boolean => (code >= 4000 && code < 4100) || code === 1001 || code === 1006 || code === 1011;
