// The Switchboard client SDK, for Node and browsers: one WebSocket speaking sb.v1, kept open across
// failures. Invariants: every request settles exactly once (reply, timeout, or the client's end);
// a publish is resent with the same cid until acked or refused, so it is stored once; per room,
// `message` events carry contiguous increasing seqs across reconnects (see rooms.ts); watched robots
// are watched again after a reconnect, and robot commands are never resent (see robots.ts). Imports
// only ../protocol and msgpackr: no Node modules, so it bundles for browsers as is.

import { decode, encode } from '../protocol/codec.js';
import {
  type ChannelInfo,
  type ClientFrame,
  CloseCode,
  type Encoding,
  type EventFrame,
  type HelloFrame,
  isReconnectable,
  type LeaseInfo,
  type MessageFrame,
  type PresenceFrame,
  type RobotRoleName,
  type ServerFrame,
  SUBPROTOCOL_JSON,
  SUBPROTOCOL_MSGPACK,
  type TimelineFrame,
  type TypingNoticeFrame,
  type UserRef,
} from '../protocol/frames.js';
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF, jitter } from './backoff.js';
import { Emitter } from './emitter.js';
import { asSwitchboardError, SwitchboardError } from './errors.js';
import { type Ack, newCid, Outbox } from './outbox.js';
import { type ReplyFrame, Requests } from './requests.js';
import type { RobotHandle } from './robot-handle.js';
import type { RobotWatchOptions } from './robot-types.js';
import { Robots } from './robots.js';
import { Rooms, type Subscribed } from './rooms.js';
import { isUnauthorizedUpgrade, overLimit, socketUrl, toBytes, type WebSocketConstructor, type WebSocketLike } from './socket.js';
import { PersonStream } from './stream.js';
import type { ClientEvents, ClientState, HelloInfo, HistoryOptions, HistoryPage, SwitchboardClientOptions, TokenSource } from './types.js';

export type { BackoffOptions } from './backoff.js';
export { type ClientErrorCode, RETRYABLE_PUBLISH_CODES, SwitchboardError, type SwitchboardErrorOptions } from './errors.js';
export type { Ack } from './outbox.js';
export type { RobotHandle, RobotLease } from './robot-handle.js';
export type {
  CommandOptions,
  CommandOutcome,
  CommandOutcomeStage,
  CommandProgressStage,
  CommandStage,
  LeaseAcquireOptions,
  LeaseChangeReason,
  RobotEndReason,
  RobotEvents,
  RobotState,
  RobotWatchOptions,
  RobotWatchStatus,
  TelemetrySample,
} from './robot-types.js';
export type { Subscribed } from './rooms.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export type { ClientEvents, ClientState, HelloInfo, HistoryOptions, HistoryPage, SwitchboardClientOptions, TokenSource } from './types.js';
export type { ChannelInfo, EventFrame, LeaseInfo, MessageFrame, PresenceFrame, RobotRoleName, TypingNoticeFrame, UserRef };

const noop = () => {};
/** Close codes that end the client, and the error it fails with. */
const CLOSE_ERRORS: Record<number, 'PROTOCOL_VIOLATION' | 'SESSION_ENDED' | 'ACCOUNT_DISABLED'> = {
  [CloseCode.PROTOCOL_VIOLATION]: 'PROTOCOL_VIOLATION',
  [CloseCode.SESSION_ENDED]: 'SESSION_ENDED',
  [CloseCode.ACCOUNT_DISABLED]: 'ACCOUNT_DISABLED',
};

/**
 * A Switchboard realtime client.
 *
 * The access token is sent as the `?token=` query parameter, because browsers cannot set headers
 * on a WebSocket. The trade-off: URLs can end up in proxy and server access logs, so a logged
 * token is exposed until it expires. Access tokens are short-lived (15 minutes by default), and
 * the hub itself does not log query strings; configure proxies in front of it not to either.
 *
 * @example
 * const client = new SwitchboardClient({ url: 'wss://hub.example/ws', token: () => auth.accessToken() });
 * client.on('message', (m) => console.log(m.room, m.seq, m.body));
 * await client.connect();
 * await client.subscribe(roomId);
 * const ack = await client.publish(roomId, 'hello');
 */
export class SwitchboardClient extends Emitter<ClientEvents> {
  readonly encoding: Encoding;
  private readonly url: string;
  private readonly tokenSource: TokenSource;
  private readonly WS: WebSocketConstructor;
  private readonly backoff: BackoffOptions;
  private readonly timeoutMs: number;
  private readonly requests: Requests;
  private readonly rooms: Rooms;
  private readonly outbox: Outbox;
  private readonly robots: Robots;
  private readonly stream: PersonStream;

  private current: ClientState = 'idle';
  private socket: WebSocketLike | undefined;
  /** `hello` came on the current socket: frames may be sent. */
  private ready = false;
  private info: HelloInfo | undefined;
  private everOpened = false;
  /** Failed attempts since the last `hello`, for the backoff. */
  private attempts = 0;
  private lastToken: string | undefined;
  /** A token already fetched for the next attempt (after an auth failure). */
  private nextToken: string | undefined;
  /** The token was refreshed once after an auth failure; reset by `hello`. */
  private authRetried = false;
  /** The delay the hub suggested in `shutdown`, for the next reconnect. */
  private shutdownMs: number | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  private connectWaiters: { resolve(h: HelloInfo): void; reject(e: SwitchboardError): void }[] = [];
  /** Set once the client is finished (closed or failed for good). */
  private ended: SwitchboardError | undefined;
  private closing: Promise<void> | undefined;

  constructor(opts: SwitchboardClientOptions) {
    super();
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError('no WebSocket implementation: pass the WebSocket option (on Node 20, `WebSocket` from the `ws` package)');
    if (typeof opts.url !== 'string' || !opts.url) throw new TypeError('url: the hub WebSocket endpoint is required, e.g. ws://localhost:8080/ws');
    if (typeof opts.token !== 'string' && typeof opts.token !== 'function') throw new TypeError('token: a string or a function returning one');
    this.WS = WS;
    this.url = opts.url;
    this.tokenSource = opts.token;
    this.encoding = opts.encoding ?? 'msgpack';
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.reconnect };
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    const isOpen = () => this.ready;
    this.requests = new Requests({ isOpen, send: (f) => this.send(f), timeoutMs: this.timeoutMs });
    const base = { isOpen, timeoutMs: this.timeoutMs, requests: this.requests, retryDelay: (attempt: number, code: string) => this.retryDelay(attempt, code) };
    this.rooms = new Rooms({ ...base, deliver: (m) => this.delivered(m), report: (e) => this.emit('error', e) });
    this.outbox = new Outbox(base);
    this.robots = new Robots({ ...base, userId: () => this.info?.user.id, ended: () => this.ended, report: (e) => this.emit('error', e) });
    this.stream = new PersonStream(
      {
        call: (f) => this.call(f),
        deliver: (f) => (f.t === 'notice' ? this.emit('notice', f) : f.t === 'read' ? this.emit('read', f) : this.emit('contact', f)),
        caughtUp: (f) => this.emit('feed', f),
        report: (e) => this.emit('error', e),
      },
      opts.noticesSince,
    );
  }

  /** The last number of your own stream handed to the application: keep it, and pass it as `noticesSince` after a restart. */
  get noticeSeq(): number | undefined {
    return this.stream.n;
  }

  /** The connection state. */
  get state(): ClientState {
    return this.current;
  }

  /** The current (or last) connection's `hello`: session, node, user and limits. */
  get hello(): HelloInfo | undefined {
    return this.info;
  }

  /** Publishes not yet acknowledged. */
  get pendingPublishes(): number {
    return this.outbox.size;
  }

  /** The last seq delivered for a subscribed room. */
  lastSeq(room: string): number | undefined {
    return this.rooms.lastSeq(room);
  }

  /**
   * Connects; resolves with the hub's `hello`. If the first attempt fails (unreachable, refused),
   * it rejects (`CONNECT_FAILED`, `AUTH_FAILED`) and the client is closed; once connected, the
   * client reconnects by itself. Called while connected, it resolves at once.
   */
  connect(): Promise<HelloInfo> {
    if (this.ended) return Promise.reject(this.ended);
    if (this.ready && this.info) return Promise.resolve(this.info);
    const p = new Promise<HelloInfo>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    if (this.current === 'idle') this.start();
    return p;
  }

  /**
   * Subscribes to a room; resolves once the subscription is live. With `since`, every message with
   * a larger seq is delivered first. After a reconnect the client resubscribes by itself, from the
   * last seq it delivered.
   */
  subscribe(room: string, opts: { since?: number } = {}): Promise<Subscribed> {
    if (this.ended) return Promise.reject(this.ended);
    return this.rooms.subscribe(room, opts.since);
  }

  /** Stops delivery for a room. */
  async unsubscribe(room: string): Promise<void> {
    if (this.ended) throw this.ended;
    if (this.rooms.unsubscribe(room) && this.ready) await this.requests.call({ t: 'unsub', room });
  }

  /** A page of a room's history (members only). */
  async history(room: string, opts: HistoryOptions = {}): Promise<HistoryPage> {
    // Only the fields that are set: MessagePack would encode an undefined one, and the hub refuses it.
    const page: HistoryOptions = {};
    if (opts.before !== undefined) page.before = opts.before;
    if (opts.after !== undefined) page.after = opts.after;
    if (opts.limit !== undefined) page.limit = opts.limit;
    const r = expect(await this.call({ t: 'hist', room, ...page }), 'history');
    return {
      room: r.room,
      lastSeq: r.lastSeq,
      messages: r.messages.map((m): TimelineFrame => ('kind' in m ? { t: 'event', room: r.room, ...m } : { t: 'msg', room: r.room, ...m })),
    };
  }

  /** Tells the room's other subscribers that you are typing (the hub sends at most one notice a second). */
  async typing(room: string): Promise<void> {
    expect(await this.call({ t: 'typing', room }), 'ok');
  }

  /** Marks a room read up to `seq` (a marker only moves forward); your other devices get a `read` event. */
  async markRead(room: string, seq: number): Promise<void> {
    expect(await this.call({ t: 'read', room, seq }), 'ok');
  }

  /** A round trip to the hub; resolves with its duration, ms. */
  async ping(): Promise<number> {
    const started = Date.now();
    expect(await this.call({ t: 'ping' }), 'pong');
    return Date.now() - started;
  }

  /**
   * Publishes a message and resolves with its ack. Safe to retry: the message carries a cid (a new
   * UUID unless given), and the client resends it with that cid after a lost connection, a timeout
   * or a retryable nack (`UNAVAILABLE`, `TIMEOUT`, `OVERLOADED`, `RATE_LIMITED`), until acked;
   * the hub stores it once. Publishes made while disconnected wait for the connection. Rejects
   * with the hub's code on any other nack (`NOT_MEMBER`, `CONFLICT`, `PAYLOAD_TOO_LARGE`, …).
   * `attachments`: ids of files uploaded with `POST /api/v1/attachments` (the body may then be empty).
   */
  publish(room: string, body: string, opts: { cid?: string; attachments?: string[] } = {}): Promise<Ack> {
    if (this.ended) return Promise.reject(this.ended);
    try {
      return this.outbox.publish(room, body, opts.cid ?? newCid(), opts.attachments);
    } catch (e) {
      return Promise.reject(asSwitchboardError(e, 'UNSUPPORTED', 'publish'));
    }
  }

  /**
   * The handle of a robot (the same one for every call with `id`): watch it, command it, hold its
   * control lease. Nothing is sent until you use it. See RobotHandle.
   */
  robot(id: string): RobotHandle {
    return this.robots.handle(id);
  }

  /**
   * Watches a robot; resolves with its handle once the hub answered (`handle.state` is then set).
   * Rejects with the hub's code, e.g. `NOT_FOUND` for a robot that does not exist or that you hold
   * no role on. After a reconnect the client watches it again by itself. `opts`: see RobotHandle.watch.
   */
  async watchRobot(id: string, opts: RobotWatchOptions = {}): Promise<RobotHandle> {
    const handle = this.robots.handle(id);
    await handle.watch(opts);
    return handle;
  }

  /**
   * Closes the connection (code 1000) and stops reconnecting; pending requests and publishes reject
   * with `CLOSED`; robot commands still awaiting their outcome resolve with stage `lost`. Resolves once the socket has closed (or after the request timeout). Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const err = new SwitchboardError('CLOSED', 'the client was closed');
      const ws = this.socket;
      this.ended ??= err;
      this.teardown(err);
      if (!ws) {
        this.setState('closed');
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(deadline);
        this.setState('closed');
        resolve();
      };
      const deadline = setTimeout(done, this.timeoutMs);
      ws.onclose = done;
      ws.close(1000, 'client closed');
    });
    return this.closing;
  }

  /**
   * @internal Tests only: drops the current connection as if the hub had closed it with `code`
   * (the socket really closes, with that code). Returns false when there is no socket.
   */
  _dropConnection(code: number = CloseCode.OVERLOADED, reason = 'dropped by test'): boolean {
    const ws = this.socket;
    if (!ws) return false;
    this.detach(ws);
    ws.close(code >= 3000 && code < 5000 ? code : 1000, reason);
    this.onClosed(code, reason, false);
    return true;
  }

  // ---- connection lifecycle ----

  private start(): void {
    this.openSocket().catch((e) => this.fail(asSwitchboardError(e, 'CONNECT_FAILED', `could not connect to ${this.url}`)));
  }

  private async openSocket(): Promise<void> {
    this.setState(this.everOpened ? 'reconnecting' : 'connecting');
    let token = this.nextToken;
    this.nextToken = undefined;
    if (token === undefined) {
      try {
        token = typeof this.tokenSource === 'function' ? await this.tokenSource() : this.tokenSource;
      } catch (e) {
        if (this.ended) return;
        const err = asSwitchboardError(e, 'TOKEN', 'the token function failed');
        if (!this.everOpened) return this.fail(err);
        this.emit('error', err);
        return this.scheduleReconnect();
      }
    }
    if (this.ended) return;
    this.lastToken = token;
    const ws = new this.WS(socketUrl(this.url, token), [this.encoding === 'msgpack' ? SUBPROTOCOL_MSGPACK : SUBPROTOCOL_JSON]);
    ws.binaryType = 'arraybuffer';
    this.socket = ws;
    let unauthorized = false;
    ws.onerror = (ev: unknown) => {
      if (isUnauthorizedUpgrade(ev)) unauthorized = true;
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (this.socket === ws) this.onData(ev.data);
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (this.socket === ws) this.onClosed(ev.code ?? 1006, ev.reason ?? '', unauthorized);
    };
    this.helloTimer = setTimeout(() => {
      if (this.socket === ws && !this.ready) this._dropConnection(1006, 'no hello in time');
    }, this.timeoutMs);
  }

  private onClosed(code: number, reason: string, unauthorized: boolean): void {
    if (this.socket) this.detach(this.socket);
    clearTimeout(this.helloTimer);
    this.ready = false;
    this.requests.lost();
    this.rooms.lost();
    this.robots.lost();
    if (this.ended) return;
    const why = `code ${code}${reason ? `, ${reason}` : ''}`;
    if (code === CloseCode.AUTH_FAILED || unauthorized) {
      this.retryAuth(unauthorized ? 'the upgrade was refused with 401' : `closed with ${why}`).catch((e) =>
        this.fail(asSwitchboardError(e, 'AUTH_FAILED', 'authentication failed')),
      );
    } else if (!this.everOpened) {
      this.fail(new SwitchboardError('CONNECT_FAILED', `could not connect to ${this.url}: ${why}`));
    } else if (!isReconnectable(code)) {
      const kind = CLOSE_ERRORS[code] ?? 'CLOSED_BY_SERVER';
      this.fail(new SwitchboardError(kind, `the hub closed the connection: ${why}`));
    } else {
      this.scheduleReconnect();
    }
  }

  /** After an auth failure: fetch a token once more; reconnect if it is a new one, else give up. */
  private async retryAuth(why: string): Promise<void> {
    const err = new SwitchboardError('AUTH_FAILED', `authentication failed (${why}) and no new token is available`);
    const source = this.tokenSource;
    if (typeof source !== 'function' || this.authRetried) return this.fail(err);
    this.authRetried = true;
    this.setState(this.everOpened ? 'reconnecting' : 'connecting');
    const fresh = await source();
    if (this.ended) return;
    if (fresh === this.lastToken) return this.fail(err);
    this.nextToken = fresh;
    this.start();
  }

  private scheduleReconnect(): void {
    this.setState('reconnecting');
    const delay = this.shutdownMs !== undefined ? jitter(this.shutdownMs) : backoffDelay(this.attempts, this.backoff);
    this.shutdownMs = undefined;
    this.attempts += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.start();
    }, delay);
  }

  private onHello(f: HelloFrame): void {
    if (this.ready) return;
    clearTimeout(this.helloTimer);
    this.ready = true;
    this.everOpened = true;
    this.attempts = 0;
    this.authRetried = false;
    this.info = { session: f.session, node: f.node, user: f.user, exp: f.exp, limits: f.limits };
    const info = this.info;
    this.setState('open');
    for (const w of this.connectWaiters.splice(0)) w.resolve(info);
    // Resubscriptions and re-watches first, so replays start before anything else is asked.
    this.rooms.resume();
    this.robots.resume();
    this.stream.connected();
    this.requests.flush();
    this.outbox.flush();
  }

  /** The access token expired (`reauth`): send a fresh one before the hub's deadline, or it closes with 4100. */
  private async reauth(): Promise<void> {
    const source = this.tokenSource;
    if (typeof source !== 'function') {
      this.emit('error', new SwitchboardError('AUTH_FAILED', 'the hub asked for a fresh token, but the token option is a fixed string; pass a function'));
      return;
    }
    try {
      const token = await source();
      this.lastToken = token;
      expect(await this.requests.call({ t: 'auth', token }, { resend: false }), 'ok');
    } catch (e) {
      const err = asSwitchboardError(e, 'TOKEN', 'reauth: the token function failed');
      if (err.code !== 'DISCONNECTED' && err.code !== 'CLOSED') this.emit('error', err);
    }
  }

  /** Stops everything for good: timers, socket, and every pending call rejected with `err`. */
  private teardown(err: SwitchboardError): void {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.helloTimer);
    this.ready = false;
    if (this.socket) this.detach(this.socket);
    this.requests.failAll(err);
    this.rooms.failAll(err);
    this.outbox.failAll(err);
    this.robots.failAll(err);
    this.stream.closed();
    for (const w of this.connectWaiters.splice(0)) w.reject(err);
  }

  private fail(err: SwitchboardError): void {
    if (this.ended) return;
    this.ended = err;
    const ws = this.socket;
    this.teardown(err);
    ws?.close(1000, 'client giving up');
    this.emit('error', err);
    this.setState('closed');
  }

  private detach(ws: WebSocketLike): void {
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = noop; // `ws` throws on an error event with no listener
    if (this.socket === ws) this.socket = undefined;
  }

  private setState(s: ClientState): void {
    if (this.current === s || this.current === 'closed') return;
    this.current = s;
    this.emit('state', s);
  }

  // ---- frames ----

  /** The next entry of a room's log, in order: a message, or an event. */
  private delivered(f: TimelineFrame): void {
    if (f.t === 'msg') {
      this.emit('message', f);
      return;
    }
    this.emit('event', f);
  }

  private call(body: Parameters<Requests['call']>[0]): Promise<ReplyFrame> {
    if (this.ended) return Promise.reject(this.ended);
    return this.requests.call(body);
  }

  private send(frame: ClientFrame): void {
    const ws = this.socket;
    if (!ws || !this.ready) throw new SwitchboardError('DISCONNECTED', `not connected: ${frame.t} not sent`);
    const data = encode(frame, this.encoding);
    const max = this.info?.limits.maxFrameBytes;
    // The hub drops a connection that sends an oversized frame, and the retry would do it again.
    if (max !== undefined && overLimit(data, max)) {
      throw new SwitchboardError('PAYLOAD_TOO_LARGE', `the ${frame.t} frame is over the hub's ${max}-byte frame limit`, {
        room: 'room' in frame ? frame.room : undefined,
        robot: 'robot' in frame ? frame.robot : undefined,
      });
    }
    ws.send(data);
  }

  private onData(data: unknown): void {
    let f: ServerFrame;
    try {
      f = decode(toBytes(data), this.encoding) as ServerFrame;
      if (typeof f !== 'object' || f === null || typeof f.t !== 'string') throw new TypeError('not a frame');
    } catch (e) {
      this.emit('error', asSwitchboardError(e, 'BAD_FRAME', 'undecodable frame from the hub'));
      return;
    }
    switch (f.t) {
      case 'hello':
        this.onHello(f);
        break;
      case 'msg':
        this.rooms.onMessage(f);
        break;
      case 'presence':
        this.emit('presence', f);
        break;
      case 'typing':
        this.emit('typing', f);
        break;
      case 'event':
        if (f.kind === 'room_deleted') {
          this.rooms.ended(f.room);
          this.emit('event', f);
        } else this.rooms.onMessage(f);
        break;
      case 'unsubscribed':
        // The hub ended it (we are no longer a member): not to be resumed.
        this.rooms.ended(f.room);
        this.emit('error', new SwitchboardError(f.code, f.message, { room: f.room }));
        break;
      case 'read':
      case 'contact':
      case 'notice':
        this.stream.onFrame(f);
        break;
      case 'receipt':
        this.emit('receipt', f);
        break;
      case 'reauth':
        void this.reauth();
        break;
      case 'shutdown':
        this.shutdownMs = f.reconnectMs;
        break;
      case 'error':
        if (f.id === null) this.emit('error', new SwitchboardError(f.code, f.message));
        else this.requests.settle(f as ReplyFrame & { id: number });
        break;
      case 'subscribed':
      case 'ok':
      case 'ack':
      case 'nack':
      case 'history':
      case 'feed':
      case 'pong':
      case 'watching':
      case 'leased':
      case 'queued':
        this.requests.settle(f);
        break;
      case 'tm':
        this.robots.onTelemetry(f);
        break;
      case 'robot':
        this.robots.onRobotEvent(f);
        break;
      case 'lease':
      case 'channels':
        this.robots.onRobotChange(f);
        break;
      case 'cmd':
        this.robots.onCommandStage(f);
        break;
      default:
        break; // a frame type from a newer hub
    }
  }

  private retryDelay(attempt: number, code: string): number {
    const delay = backoffDelay(attempt - 1, this.backoff);
    const rate = this.info?.limits.publishPerSecond;
    return code === 'RATE_LIMITED' && rate ? Math.max(delay, Math.ceil(1000 / rate)) : delay;
  }
}

/** Narrows a reply to the expected frame type (an unexpected one is a hub bug, reported as BAD_FRAME). */
function expect<T extends ReplyFrame['t']>(f: ReplyFrame, t: T): Extract<ReplyFrame, { t: T }> {
  if (f.t !== t) throw new SwitchboardError('BAD_FRAME', `expected ${t} in reply, got ${f.t}`);
  return f as Extract<ReplyFrame, { t: T }>;
}
