// The WebSocket endpoint /ws: authenticates the upgrade (before upgrading, handling clients that
// abort meanwhile), negotiates the encoding by subprotocol, turns sockets into Connections for the
// actors, decodes and validates frames, and enforces the socket limits: frame size, backpressure
// (a subscriber too far behind is closed with a reconnect code and resumes), protocol violations,
// sockets per user and per client IP, and a node-wide budget of queued bytes.
// Invariant: a frame is queued for a socket only if the socket's queue stays within
// SB_WS_MAX_BACKPRESSURE_BYTES (or was empty); otherwise the socket is closed first, so what a
// slow reader received is always a gapless prefix and it resumes from its last seq.

import { randomBytes } from 'node:crypto';
import type { ClientConnection, Conflater, Connection, Fanout } from '../actors/ports.js';
import type { AccessClaims } from '../auth/access-tokens.js';
import { type ErrorCode, SbError } from '../errors.js';
import type { Logger } from '../log.js';
import { encode } from '../protocol/codec.js';
import { type ClientFrame, CloseCode, type Encoding, type HelloFrame, type ServerFrame, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK } from '../protocol/frames.js';
import type { SessionsEnded } from '../store/sessions.js';
import { FOXGLOVE_SUBPROTOCOL, FoxgloveConnection, type RobotWatchSession } from './foxglove.js';
import { STATUS_TEXT } from './http.js';
import type { HttpResponse, TemplatedApp, WebSocketBehavior } from './uws.js';
import {
  Audience,
  ENCODINGS,
  FRAME_HEADER_BYTES,
  type FrameSession,
  lingerMs,
  SLOW,
  TOPIC_SUFFIX,
  type UserData,
  uwsBackpressureLimit,
  WsConnection,
  type WsObserver,
  wsBackstopFrameBytes,
} from './ws-connection.js';
import { FrameError, parseFrame } from './ws-frames.js';
import { Counts, originAllowed, refuseNonUpgrades, tokenFrom } from './ws-handshake.js';

export interface WsOptions {
  log: Logger;
  nodeId: string;
  maxFrameBytes: number;
  /** Bytes buffered for one socket before it counts as a slow consumer. */
  maxBackpressure: number;
  /** Bytes buffered across all sockets before the furthest behind are closed as slow consumers. */
  bufferedBudget: number;
  idleTimeoutS: number;
  corsOrigins: string[];
  /**
   * Violations (bad frames) tolerated before the socket is closed with PROTOCOL_VIOLATION: a token
   * bucket of `maxViolations` refilled evenly over `violationWindowMs`, so a long-lived client with
   * one recurring bug is not closed for it, while a client sending little else but bad frames is.
   */
  maxViolations: number;
  violationWindowMs: number;
  /** What hello.limits reports besides the fields above. */
  limits: Omit<HelloFrame['limits'], 'maxFrameBytes' | 'idleTimeoutS' | 'maxViolations' | 'violationWindowMs'>;
  /** Take the client IP from the last X-Forwarded-For entry, as the HTTP routes do. */
  trustProxy: boolean;
  verifyAccess(token: string): Promise<AccessClaims>;
  /** Called with the number of sockets each topic publish reached (for metrics). */
  onDeliveries?(n: number): void;
  /** Connections and frames, as they happen (for metrics). */
  observe?: WsObserver;
  createSession(conn: ClientConnection, claims: AccessClaims): FrameSession;
  /** The session of a /foxglove socket: it watches `robot` for the connection. */
  watchRobot(conn: ClientConnection, claims: AccessClaims, robot: string): RobotWatchSession;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Close codes a client may choose freely are reported as one label value: the series count stays fixed. */
/** How long, and how many, ended sessions are remembered for upgrades already past their token check. */
const ENDED_MEMORY_MS = 60_000;
const ENDED_MEMORY_MAX = 100_000;

const closeLabel = (code: number): number | 'other' => ((code >= 1000 && code <= 1015) || Object.values(CloseCode).includes(code as never) ? code : 'other');

export class WsServer implements Fanout, Conflater {
  private readonly conns = new Set<WsConnection>();
  private readonly audience = new Audience();
  /** Sockets sent to since they last had an empty queue: the only ones that can hold buffered bytes. */
  private readonly backlog = new Set<WsConnection>();
  /** Queues of sockets closed as slow consumers that uWS still holds, and until when (see lingerMs). */
  private lingering: { bytes: number; until: number }[] = [];
  private lingeringBytes = 0;
  private sweepScheduled = false;
  private readonly hooks = { backlogged: (c: WsConnection) => this.backlogged(c), slow: (c: WsConnection) => this.slow(c) };
  private app: TemplatedApp | undefined;
  private accepting = true;
  /** Each user's open sockets on this node (a user leaves the map with their last). */
  private readonly byUser = new Map<string, Set<WsConnection>>();
  private readonly perIp = new Counts();
  /** Upgrade refusals carry an X-Request-Id like every HTTP reply: this node's prefix and a counter. */
  private readonly reqPrefix = `ws${randomBytes(3).toString('hex')}`;
  private reqSeq = 0;

  constructor(private readonly opts: WsOptions) {}

  get connections(): number {
    return this.conns.size;
  }

  /**
   * Bytes queued in sockets and conflated frames held back, over every connection: what slow readers
   * cost. `lingeringBytes`: queues of sockets already closed as slow consumers that uWS still holds.
   */
  stats(): { connections: number; bufferedBytes: number; maxBufferedBytes: number; heldFrames: number; lingeringBytes: number; slowClosed: number } {
    this.pruneLingering();
    let bufferedBytes = 0;
    let maxBufferedBytes = 0;
    let heldFrames = 0;
    for (const c of this.conns) {
      if (c.closed) continue;
      const b = c.ws.getBufferedAmount();
      bufferedBytes += b;
      maxBufferedBytes = Math.max(maxBufferedBytes, b);
      heldFrames += c.held;
    }
    return { connections: this.conns.size, bufferedBytes, maxBufferedBytes, heldFrames, lingeringBytes: this.lingeringBytes, slowClosed: this.slowClosed };
  }

  /** Sockets closed as slow consumers since start (per-socket bound or node budget). */
  private slowClosed = 0;

  private backlogged(c: WsConnection): void {
    this.backlog.add(c);
    this.scheduleSweep();
  }

  /**
   * Closes a slow consumer with 4001; its queue (at most the limit) stays with uWS until the close
   * completes. `abort`: drop it at once instead, freeing the queue now (the node is over its budget).
   */
  private slow(c: WsConnection, abort = false): void {
    if (c.closed) return;
    const bytes = c.ws.getBufferedAmount();
    this.slowClosed++;
    this.pruneLingering();
    // Queues left behind a 4001 close must not pile up past the budget either.
    if (abort || this.lingeringBytes + bytes > this.opts.bufferedBudget) {
      c.abort();
      return;
    }
    c.close(CloseCode.SLOW_CONSUMER, SLOW);
    if (bytes > 0) {
      this.lingering.push({ bytes, until: Date.now() + lingerMs(this.opts.idleTimeoutS) });
      this.lingeringBytes += bytes;
    }
  }

  private pruneLingering(): void {
    const now = Date.now();
    if (this.lingering.length === 0 || this.lingering[0]!.until > now) return;
    const keep = this.lingering.filter((l) => l.until > now);
    this.lingeringBytes = keep.reduce((n, l) => n + l.bytes, 0);
    this.lingering = keep;
  }

  private scheduleSweep(): void {
    if (this.sweepScheduled) return;
    this.sweepScheduled = true;
    setImmediate(() => this.sweep());
  }

  publish(topic: string, frame: ServerFrame, except?: Connection): void {
    const app = this.app;
    if (!app) return;
    const bytes: Partial<Record<Encoding, Uint8Array | string>> = {};
    const size: Partial<Record<Encoding, number>> = {};
    for (const enc of ENCODINGS) {
      if (app.numSubscribers(topic + TOPIC_SUFFIX[enc]) === 0) continue;
      const b = encode(frame, enc);
      bytes[enc] = b;
      size[enc] = typeof b === 'string' ? Buffer.byteLength(b) : b.byteLength;
    }
    // Before queueing: a subscriber this frame would take past its limit is closed now (uWS drops the
    // publish for it), so it never holds more than the limit and never sees a gap.
    for (const c of this.audience.of(topic)) {
      if (c === except || c.closed) continue;
      if (c instanceof FoxgloveConnection) {
        c.deliver(frame);
        continue;
      }
      const n = size[c.encoding];
      if (n === undefined) continue;
      if (c.fits(n)) {
        c.unflushed += n + FRAME_HEADER_BYTES;
        this.backlog.add(c);
      } else this.slow(c);
    }
    for (const enc of ENCODINGS) {
      const b = bytes[enc];
      if (b === undefined) continue;
      const t = topic + TOPIC_SUFFIX[enc];
      const n = app.numSubscribers(t);
      if (n === 0) continue;
      this.opts.onDeliveries?.(n);
      this.opts.observe?.sent(frame.t, n);
      const binary = enc === 'msgpack';
      // ws.publish reaches every subscriber but the sender itself.
      if (except instanceof WsConnection && except.encoding === enc && !except.closed) except.ws.publish(t, b, binary);
      else app.publish(t, b, binary);
    }
    this.scheduleSweep();
  }

  /**
   * After a turn with sends: forgets sockets that drained, and if the node's queued bytes (live
   * sockets plus lingering closed ones) exceed the budget, drops sockets at once (freeing their queues;
   * a 4001 close frame would wait behind them for seconds) until they fit: first those
   * that drained nothing since the last sweep (stalled readers), largest queue first, then those at
   * least a quarter of their limit behind. A reader that keeps up is never cut for others' sake.
   * Only the backlog is read, so the cost follows the sockets written to, not all sockets.
   */
  private sweep(): void {
    this.sweepScheduled = false;
    this.pruneLingering();
    let estimate = this.lingeringBytes;
    const queued: { c: WsConnection; b: number; stalled: boolean }[] = [];
    for (const c of this.backlog) {
      const b = c.closed ? 0 : c.ws.getBufferedAmount();
      // Behind at two sweeps in a row and not shrinking: it read nothing meanwhile.
      const stalled = b > 0 && c.lastBuffered > 0 && b >= c.lastBuffered;
      c.lastBuffered = b;
      if (c.closed || (b === 0 && c.unflushed === 0)) this.backlog.delete(c);
      else {
        estimate += b + c.unflushed;
        queued.push({ c, b, stalled });
      }
    }
    if (estimate <= this.opts.bufferedBudget) return;
    // Over by the estimate: measure exactly (a ping makes uWS write what its topic tree holds).
    let total = this.lingeringBytes;
    for (const q of queued) {
      if (q.c.unflushed > 0) {
        q.c.ws.ping();
        q.c.unflushed = 0;
        q.b = q.c.ws.getBufferedAmount();
      }
      total += q.b;
    }
    if (total <= this.opts.bufferedBudget) return;
    queued.sort((x, y) => Number(y.stalled) - Number(x.stalled) || y.b - x.b);
    let cut = 0;
    for (const { c, b, stalled } of queued) {
      if (total <= this.opts.bufferedBudget) break;
      if (!stalled && b < this.opts.maxBackpressure / 4) break;
      this.backlog.delete(c);
      this.slow(c, true);
      total -= b;
      cut++;
    }
    if (cut > 0) this.opts.log.warn({ cut, budget: this.opts.bufferedBudget }, 'buffered-bytes budget exceeded; dropped the slowest consumers');
  }

  conflate(conns: Iterable<Connection>, key: string, frame: ServerFrame): void {
    const bytes: Partial<Record<Encoding, Uint8Array | string>> = {};
    for (const c of conns) {
      if (!(c instanceof WsConnection) || c.closed) continue;
      if (c instanceof FoxgloveConnection) {
        c.deliver(frame, key);
        continue;
      }
      bytes[c.encoding] ??= encode(frame, c.encoding);
      this.opts.observe?.sent(frame.t);
      c.offer(key, bytes[c.encoding] as Uint8Array | string);
    }
  }

  /**
   * Sessions (and, as `user:<id>`, accounts) that ended in the last minute, oldest first: an
   * upgrade whose token was checked just before the end must not open just after it.
   */
  private readonly ended = new Map<string, number>();

  /** Closes the sockets of sessions that ended (4102): they must not reconnect with the same tokens. */
  endSessions(e: SessionsEnded): void {
    const now = Date.now();
    for (const [k, at] of this.ended) {
      if (now - at < ENDED_MEMORY_MS && this.ended.size < ENDED_MEMORY_MAX) break;
      this.ended.delete(k);
    }
    for (const k of e.sessions === 'all' ? [`user:${e.userId}`] : e.sessions) {
      this.ended.delete(k);
      this.ended.set(k, now);
    }
    for (const c of [...this.conns]) {
      if (c.user.id !== e.userId || c.closed) continue;
      if (e.sessions === 'all' && e.reason === 'disabled') c.close(CloseCode.ACCOUNT_DISABLED, 'an admin disabled the account');
      else if (e.sessions === 'all') c.close(CloseCode.SESSION_ENDED, 'the account was deleted');
      else if (c.session.sid !== undefined && e.sessions.includes(c.session.sid)) c.close(CloseCode.SESSION_ENDED, 'the session has ended; log in again');
    }
  }

  /** Of these users, those with a socket open on this node. */
  online(userIds: string[]): string[] {
    return userIds.filter((id) => [...(this.byUser.get(id) ?? [])].some((c) => !c.closed));
  }

  /** The server API disconnected the person: every socket of theirs here closes (4004); they may reconnect. */
  disconnectUser(userId: string): void {
    for (const c of [...(this.byUser.get(userId) ?? [])]) if (!c.closed) c.close(CloseCode.DISCONNECTED, 'disconnected by the server');
  }

  /** A disabled account was enabled again: its new logins may connect (its ended sessions stay remembered). */
  accountEnabled(userId: string): void {
    this.ended.delete(`user:${userId}`);
  }

  /** Sends a frame to every socket of a user on this node. */
  toUser(userId: string, frame: ServerFrame): void {
    for (const c of this.byUser.get(userId) ?? []) if (!c.closed) c.send(frame);
  }

  /** Tells every client to reconnect elsewhere and closes its socket. */
  shutdown(reconnectMs: number): void {
    this.accepting = false;
    for (const c of [...this.conns]) {
      c.send({ t: 'shutdown', reconnectMs });
      c.close(CloseCode.SHUTDOWN, 'node shutting down');
    }
  }

  /**
   * Runs an upgrade that completes after the upgrade handler returned (the token is checked
   * asynchronously). Never corked by `res.cork` itself: in the pinned uWebSockets.js, that cork's
   * epilogue reads the upgraded socket's memory as an HTTP response whenever realloc kept its
   * address, and may shut the new socket down right after `open` (a 1006 with no close frame;
   * uNetworking/uWebSockets#1928). Uncorked, uWebSockets.js prints a warning to stderr on every
   * upgrade. So while another socket is open, it is corked first: `res.cork` then only marks the
   * callback as corked (no warning) and runs it, as uWS corks one socket at a time, and has no
   * epilogue. Either way the 101 response goes out as a couple of dozen small writes and `hello`
   * after it. Only an upgrade onto a node with no WebSocket open runs uncorked, and warns.
   */
  private upgradeLater(res: HttpResponse, upgrade: () => void): void {
    for (const c of this.conns) {
      if (c.closed) continue;
      c.ws.cork(() => res.cork(upgrade));
      return;
    }
    upgrade();
  }

  mount(app: TemplatedApp): void {
    this.app = app;
    app.ws<UserData>('/ws', this.behavior(false));
    app.ws<UserData>('/foxglove', this.behavior(true));
    refuseNonUpgrades(app, this.opts.log, () => this.nextReqId());
  }

  /** The endpoint's sockets: /ws speaks sb.v1; /foxglove (`foxglove`) Foxglove's protocol for one robot. Both share every limit. */
  private behavior(foxglove: boolean): WebSocketBehavior<UserData> {
    const o = this.opts;
    return {
      // uWS drops a frame over its limit without a close frame (the peer sees 1006, no reason), so
      // its limit is a backstop at twice ours: up to there, `message` closes with 1009 and a reason.
      maxPayloadLength: wsBackstopFrameBytes(o.maxFrameBytes),
      maxBackpressure: uwsBackpressureLimit(o.maxBackpressure),
      closeOnBackpressureLimit: 1,
      idleTimeout: o.idleTimeoutS,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const headers: Record<string, string> = {};
        req.forEach((k, v) => {
          headers[k] = v;
        });
        const query = new URLSearchParams(req.getQuery() ?? '');
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        const fwd = o.trustProxy ? headers['x-forwarded-for']?.split(',').pop()?.trim() : undefined;
        const ip = fwd || Buffer.from(res.getRemoteAddressAsText()).toString();
        const reqId = this.nextReqId();
        const refuse = (status: string, code: ErrorCode, message: string) => {
          o.log.info({ reqId, ip, status: Number.parseInt(status, 10), code }, 'websocket upgrade refused');
          if (aborted) return;
          res.cork(() => {
            res
              .writeStatus(status)
              .writeHeader('content-type', 'application/json; charset=utf-8')
              .writeHeader('x-request-id', reqId)
              .end(JSON.stringify({ error: { code, message } }), true);
          });
        };
        // Checked before and after the token is verified: uWS calls `open` inside `res.upgrade`, so the
        // second check and the count it guards see every socket opened meanwhile.
        const tooMany = (userId: string | undefined): string | undefined => {
          if (this.perIp.get(ip) >= o.limits.maxConnectionsPerIp) return `at most ${o.limits.maxConnectionsPerIp} WebSockets per client IP on this node`;
          if (userId !== undefined && (this.byUser.get(userId)?.size ?? 0) >= o.limits.maxConnectionsPerUser)
            return `at most ${o.limits.maxConnectionsPerUser} WebSockets per user on this node; close one first`;
          return undefined;
        };
        if (!this.accepting) return refuse('503 Service Unavailable', 'UNAVAILABLE', 'the node is shutting down; connect to another');
        const ipFull = tooMany(undefined);
        if (ipFull) return refuse('429 Too Many Requests', 'RATE_LIMITED', ipFull);
        const offered = (headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
        const robot = foxglove ? (query.get('robot') ?? '') : undefined;
        const protocol = foxglove ? offered.find((p) => p === FOXGLOVE_SUBPROTOCOL) : offered.find((p) => p === SUBPROTOCOL_MSGPACK || p === SUBPROTOCOL_JSON);
        if (!protocol) {
          const wanted = foxglove ? FOXGLOVE_SUBPROTOCOL : `${SUBPROTOCOL_MSGPACK} or ${SUBPROTOCOL_JSON}`;
          return refuse('400 Bad Request', 'VALIDATION', `offer the WebSocket subprotocol ${wanted}`);
        }
        if (robot !== undefined && !UUID.test(robot)) return refuse('400 Bad Request', 'VALIDATION', 'name the robot to open: /foxglove?robot=<robot id>');
        const { token, viaCookie } = tokenFrom(headers, query);
        if (!token) return refuse('401 Unauthorized', 'UNAUTHENTICATED', 'send the access token as Authorization: Bearer, the sb_access cookie, or ?token=');
        if (viaCookie && !originAllowed(headers, o.corsOrigins))
          return refuse('403 Forbidden', 'FORBIDDEN', 'cross-site WebSocket with cookie authentication: origin not allowed');
        const key = headers['sec-websocket-key'] ?? '';
        const extensions = headers['sec-websocket-extensions'] ?? '';
        o.verifyAccess(token).then(
          (claims) => {
            if (aborted) return;
            // The node may have begun shutting down while the token was checked.
            if (!this.accepting) return refuse('503 Service Unavailable', 'UNAVAILABLE', 'the node is shutting down; connect to another');
            const full = tooMany(claims.sub);
            if (full) return refuse('429 Too Many Requests', 'RATE_LIMITED', full);
            this.upgradeLater(res, () =>
              res.upgrade<UserData>(
                { claims, encoding: protocol === SUBPROTOCOL_JSON ? 'json' : 'msgpack', ip, ...(robot ? { robot } : {}) },
                key,
                protocol,
                extensions,
                context,
              ),
            );
          },
          (e: unknown) => {
            // 401 for a token to refresh; 403 for a disabled account, which a new token will not fix.
            if (e instanceof SbError) refuse(`${e.status} ${STATUS_TEXT[e.status]}`, e.code, e.message);
            else {
              o.log.error({ err: e }, 'upgrade failed');
              refuse('500 Internal Server Error', 'INTERNAL', 'internal error');
            }
          },
        );
      },
      open: (ws) => {
        const data = ws.getUserData();
        const claims = data.claims as AccessClaims;
        data.claims = undefined; // the session keeps what it needs of them
        if (this.ended.has(`user:${claims.sub}`) || (claims.sid !== undefined && this.ended.has(claims.sid))) {
          ws.end(CloseCode.SESSION_ENDED, 'the session has ended; log in again');
          return;
        }
        const conn = data.robot
          ? new FoxgloveConnection(ws, claims, o.maxBackpressure, this.audience, this.hooks, data.robot)
          : new WsConnection(ws, data.encoding, claims, o.maxBackpressure, this.audience, this.hooks);
        data.conn = conn;
        conn.observe = o.observe;
        conn.violationTokens = o.maxViolations;
        conn.violationsAt = Date.now();
        o.observe?.opened();
        o.log.info({ conn: conn.id, user: conn.user.id, ip: data.ip, encoding: data.encoding }, 'websocket connected');
        this.conns.add(conn);
        const mine = this.byUser.get(conn.user.id);
        if (mine) mine.add(conn);
        else this.byUser.set(conn.user.id, new Set([conn]));
        this.perIp.add(data.ip, 1);
        // uWS frees a socket's subscriber state when it leaves its last topic, dropping frames
        // published to it but not yet flushed (`room_deleted` is published just before the room
        // unsubscribes everyone). A private topic nobody publishes to keeps that state for life.
        ws.subscribe(`conn:${conn.id}`);
        if (conn instanceof FoxgloveConnection) {
          data.receive = (message, isBinary) => {
            if (!conn.receive(message, isBinary) && !this.takeViolation(conn)) conn.close(CloseCode.PROTOCOL_VIOLATION, 'too many protocol violations');
          };
          conn.start(o.watchRobot(conn, claims, conn.robot), o.nodeId);
          return;
        }
        const session = o.createSession(conn, claims);
        conn.session = session;
        data.receive = (message, isBinary) => this.receive(conn, session, message, isBinary);
        conn.send({
          t: 'hello',
          v: 'sb.v1',
          node: o.nodeId,
          session: conn.id,
          user: conn.user,
          exp: conn.session.expiresAt,
          limits: {
            maxFrameBytes: o.maxFrameBytes,
            ...o.limits,
            idleTimeoutS: o.idleTimeoutS,
            maxViolations: o.maxViolations,
            violationWindowMs: o.violationWindowMs,
          },
        });
      },
      message: (ws, message, isBinary) => {
        const data = ws.getUserData();
        const conn = data.conn;
        if (!conn || conn.closed) return;
        if (message.byteLength > o.maxFrameBytes) {
          o.observe?.received('invalid');
          conn.close(CloseCode.MESSAGE_TOO_BIG, `frame of ${message.byteLength} bytes; the limit is ${o.maxFrameBytes}`);
          return;
        }
        data.receive?.(message, isBinary);
      },
      drain: (ws) => {
        ws.getUserData().conn?.wake();
      },
      close: (ws, code) => {
        const conn = ws.getUserData().conn;
        if (!conn) return;
        o.observe?.closed(closeLabel(code));
        // The code only: a reason is free text the peer chose.
        o.log.info({ conn: conn.id, user: conn.user.id, ip: ws.getUserData().ip, code }, 'websocket closed');
        conn.closed = true;
        conn.wake();
        this.conns.delete(conn);
        this.backlog.delete(conn);
        const mine = this.byUser.get(conn.user.id);
        mine?.delete(conn);
        if (mine?.size === 0) this.byUser.delete(conn.user.id);
        this.perIp.add(ws.getUserData().ip, -1);
        for (const topic of conn.topics ?? []) this.audience.leave(topic, conn);
        conn.session.onClose();
      },
    };
  }

  /** One sb.v1 frame from a client: decoded, checked, handed to its session. */
  private receive(conn: WsConnection, session: FrameSession, message: ArrayBuffer, isBinary: boolean): void {
    const o = this.opts;
    let frame: ClientFrame;
    try {
      frame = parseFrame(new Uint8Array(message), isBinary, conn.encoding);
    } catch (e) {
      o.observe?.received('invalid');
      const fe = e instanceof FrameError ? e : new FrameError(null, 'BAD_FRAME', 'unreadable frame');
      conn.send({ t: 'error', id: fe.id, code: fe.code, message: fe.message });
      if (!this.takeViolation(conn)) conn.close(CloseCode.PROTOCOL_VIOLATION, 'too many protocol violations');
      return;
    }
    o.observe?.received(frame.t);
    session.onFrame(frame).catch((e) => o.log.error({ err: e, conn: conn.id }, 'frame handler failed'));
  }

  private nextReqId(): string {
    return `${this.reqPrefix}-${(++this.reqSeq).toString(36)}`;
  }

  /** Takes one violation from the connection's budget; false when it is spent. */
  private takeViolation(conn: WsConnection): boolean {
    const { maxViolations, violationWindowMs } = this.opts;
    const now = Date.now();
    conn.violationTokens = Math.min(maxViolations, conn.violationTokens + ((now - conn.violationsAt) / violationWindowMs) * maxViolations);
    conn.violationsAt = now;
    if (conn.violationTokens < 1) return false;
    conn.violationTokens -= 1;
    return true;
  }
}
