// The client SDK's public types: options, connection info, history pages and events.

import type {
  ContactFrame,
  Encoding,
  EventFrame,
  FeedFrame,
  HelloFrame,
  MessageFrame,
  NoticeFrame,
  PresenceFrame,
  ReadFrame,
  ReceiptFrame,
  TimelineFrame,
  TypingNoticeFrame,
  UserRef,
} from '../protocol/frames.js';
import type { BackoffOptions } from './backoff.js';
import type { SwitchboardError } from './errors.js';
import type { WebSocketConstructor } from './socket.js';

/** `idle` until connect(); `closed` is final (close(), or a failure that must not be retried). */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** An access token, or a function returning a current one (called for every connection and on `reauth`). */
export type TokenSource = string | (() => string | Promise<string>);

export interface SwitchboardClientOptions {
  /** The hub's WebSocket endpoint, e.g. `wss://chat.example.com/ws` (http(s) URLs are accepted too). */
  url: string;
  /**
   * The access token. Pass a function to survive token expiry: it is called before each connection
   * and when the hub asks for a fresh token; it should return a cached token while that is valid.
   */
  token: TokenSource;
  /** Wire encoding (WebSocket subprotocol). Default `msgpack`. */
  encoding?: Encoding;
  /** WebSocket implementation. Default `globalThis.WebSocket`; on Node 20 pass `WebSocket` from the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff: the first delay is at most `minMs`, doubling up to `maxMs`. Default 250 ms to 30 s. */
  reconnect?: Partial<BackoffOptions>;
  /** How long a request waits for its reply (and for a connection, if there is none), ms. Default 10 000. */
  requestTimeoutMs?: number;
  /**
   * The last number of your own stream this device handed to the application (`client.noticeSeq`,
   * kept across restarts): the first connection catches up after it. Leave it out on a new device.
   */
  noticesSince?: number;
}

/** What the hub said in `hello` on the current connection. */
export interface HelloInfo {
  /** Connection id, for the hub's logs. */
  session: string;
  /** The node serving this connection. */
  node: string;
  user: UserRef;
  /** When the token this connection opened with expires, ms since the epoch (a `reauth` extends it). */
  exp: number;
  limits: HelloFrame['limits'];
}

export interface HistoryOptions {
  /** Messages with seq below this. */
  before?: number;
  /** Messages with seq above this (0: from the start). */
  after?: number;
  /** At most this many (hub default 50, at most 200). */
  limit?: number;
}

export interface HistoryPage {
  room: string;
  /** Ascending seq: messages, and timeline events (`t: 'event'`). */
  messages: TimelineFrame[];
  /** The room's latest seq. */
  lastSeq: number;
}

export interface ClientEvents {
  /** A message in a subscribed room: per room, seqs arrive once each, contiguous and in order. */
  message: (m: MessageFrame) => void;
  presence: (p: PresenceFrame) => void;
  typing: (t: TypingNoticeFrame) => void;
  /**
   * A subscribed room's timeline events (joins, leaves, removals, bans, roles, renames, edits,
   * reactions, deleted messages), in seq order with its messages, and room deletion. A deleted
   * room is unsubscribed; so is one you are no longer a member of (the hub says so: an `error`
   * NOT_MEMBER for that room).
   */
  event: (e: EventFrame) => void;
  /** A change to your contacts (a request, an acceptance, a removal...); numbered in your stream. */
  contact: (c: ContactFrame) => void;
  /** Your read marker moved, on this device or another; numbered in your stream. */
  read: (r: ReadFrame) => void;
  /**
   * What concerns you outside the rooms you subscribe to: new messages in any of your rooms (per
   * your level there), rooms added and removed, role and level changes. Numbered ones (all but
   * `message`) arrive once each, in order, across reconnects.
   */
  notice: (n: NoticeFrame) => void;
  /**
   * Caught up on your stream (after each connection): its last number, the rooms with unread
   * messages, and `reset` when notices were pruned before this device caught up (reload rooms and contacts).
   */
  feed: (f: Pick<FeedFrame, 'n' | 'unread' | 'reset'>) => void;
  /** In a direct room, the other person read up to a seq. */
  receipt: (r: ReceiptFrame) => void;
  state: (s: ClientState) => void;
  /**
   * Failures not tied to a call: a failed reauth, a resubscription refused, the final failure
   * (followed by state `closed`). Listen for it: with no listener these are dropped.
   */
  error: (e: SwitchboardError) => void;
}
