// The WebSocket endpoint /ws: authenticates the upgrade (before upgrading, handling clients that
// abort meanwhile), negotiates the encoding by subprotocol, turns sockets into Connections for the
// actors, decodes and validates frames, and enforces the socket limits: frame size, backpressure
// (a subscriber too far behind is closed with a reconnect code and resumes), protocol violations.

import { randomBytes } from 'node:crypto';
import type { ClientConnection, Conflater, Connection, Fanout } from '../actors/ports.js';
import type { AccessClaims } from '../auth/access-tokens.js';
import { SbError } from '../errors.js';
import type { Logger } from '../log.js';
import { decode, encode } from '../protocol/codec.js';
import { type ClientFrame, CloseCode, type Encoding, type ServerFrame, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, type UserRef } from '../protocol/frames.js';
import { COOKIE_ACCESS, parseCookies } from './http.js';
import type { TemplatedApp, WebSocket } from './uws.js';
import { FrameError, toClientFrame } from './ws-frames.js';

export interface SessionLike {
  onFrame(f: ClientFrame): Promise<void>;
  onClose(): void;
  readonly expiresAt: number;
}

export interface WsOptions {
  log: Logger;
  nodeId: string;
  maxFrameBytes: number;
  /** Bytes buffered for one socket before it counts as a slow consumer. */
  maxBackpressure: number;
  idleTimeoutS: number;
  corsOrigins: string[];
  /** Violations (bad frames) tolerated before the socket is closed with PROTOCOL_VIOLATION. */
  maxViolations: number;
  limits: { maxMessageBytes: number; maxSubscriptions: number; publishPerSecond: number; publishBurst: number };
  verifyAccess(token: string): Promise<AccessClaims>;
  /** Called with the number of sockets each topic publish reached (for metrics). */
  onDeliveries?(n: number): void;
  /** Connections and frames, as they happen (for metrics). */
  observe?: WsObserver;
  createSession(conn: ClientConnection, claims: AccessClaims): SessionLike;
}

/** What the server reports for metrics: frame types are the protocol's `t` values (or "invalid"). */
export interface WsObserver {
  opened(): void;
  closed(code: number | 'other'): void;
  received(type: string): void;
  sent(type: string, n?: number): void;
}

/** Close codes a client may choose freely are reported as one label value: the series count stays fixed. */
const closeLabel = (code: number): number | 'other' => ((code >= 1000 && code <= 1015) || Object.values(CloseCode).includes(code as never) ? code : 'other');

interface UserData {
  claims: AccessClaims;
  encoding: Encoding;
  conn?: WsConnection;
}

const TOPIC_SUFFIX: Record<Encoding, string> = { msgpack: ':m', json: ':j' };
const ENCODINGS: Encoding[] = ['msgpack', 'json'];

/** Who is in each topic (uWS does not say): the connections a publish may have pushed past the limit. */
class Audience {
  private readonly byTopic = new Map<string, Set<WsConnection>>();
  join(topic: string, c: WsConnection): void {
    let set = this.byTopic.get(topic);
    if (!set) {
      set = new Set();
      this.byTopic.set(topic, set);
    }
    set.add(c);
  }
  leave(topic: string, c: WsConnection): void {
    const set = this.byTopic.get(topic);
    if (set?.delete(c) && set.size === 0) this.byTopic.delete(topic);
  }
  of(topic: string): Iterable<WsConnection> {
    return this.byTopic.get(topic) ?? [];
  }
}

/**
 * uWS's own backpressure limit, far above ours. At its limit uWS drops a publish for that socket and
 * closes it only later, so a reader could see a gap before the close. We close a socket ourselves at
 * the end of the event-loop turn whose publishes took it past our limit; one turn can fan out a whole
 * group commit (up to 512 messages), hence the headroom.
 */
const uwsBackpressureLimit = (ours: number) => ours * 4 + 32 * 1_048_576;

class WsConnection implements ClientConnection {
  readonly id: string;
  readonly user: UserRef;
  closed = false;
  violations = 0;
  session!: SessionLike;
  observe: WsObserver | undefined;

  constructor(
    readonly ws: WebSocket<UserData>,
    readonly encoding: Encoding,
    claims: AccessClaims,
    private readonly maxBackpressure: number,
    private readonly audience: Audience,
  ) {
    this.id = randomBytes(8).toString('base64url');
    this.user = { id: claims.sub, username: claims.username };
  }

  private waiting: (() => void)[] = [];
  /** Conflated frames waiting for the socket to drain: the newest per key. */
  private conflated: Map<string, Uint8Array | string> | undefined;

  send(frame: ServerFrame): void {
    this.observe?.sent(frame.t);
    this.sendBytes(encode(frame, this.encoding));
  }

  writable(): Promise<void> {
    if (this.closed || this.ws.getBufferedAmount() < this.maxBackpressure / 2) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  get held(): number {
    return this.conflated?.size ?? 0;
  }

  /** Sends now unless the socket is congested; then keeps only the newest frame per key until it drains. */
  offer(key: string, data: Uint8Array | string): void {
    if (this.closed) return;
    if (this.conflated || this.ws.getBufferedAmount() >= this.maxBackpressure / 4) {
      this.conflated ??= new Map();
      this.conflated.delete(key); // re-inserted last: frames go out in the order their keys last changed
      this.conflated.set(key, data);
      return;
    }
    this.sendBytes(data);
  }

  /** Called on drain and close: sends held conflated frames, then wakes writers once the buffer is below half the limit. */
  wake(): void {
    if (this.conflated && !this.closed) {
      for (const [key, data] of this.conflated) {
        if (this.ws.getBufferedAmount() >= this.maxBackpressure / 4) break;
        this.conflated.delete(key);
        this.sendBytes(data);
      }
      if (this.conflated.size === 0) this.conflated = undefined;
    }
    if (!this.closed && this.ws.getBufferedAmount() >= this.maxBackpressure / 2) return;
    const w = this.waiting;
    this.waiting = [];
    for (const resolve of w) resolve();
  }

  sendBytes(data: Uint8Array | string): void {
    if (this.closed) return;
    const status = this.ws.send(data, this.encoding === 'msgpack');
    if (status === 2 || this.ws.getBufferedAmount() > this.maxBackpressure) this.close(CloseCode.SLOW_CONSUMER, 'slow consumer: reconnect and resume');
  }

  /** The topics this connection is in: what the slow-consumer sweep looks at. */
  readonly topics = new Set<string>();

  subscribe(topic: string): void {
    if (this.closed) return;
    this.ws.subscribe(topic + TOPIC_SUFFIX[this.encoding]);
    this.topics.add(topic);
    this.audience.join(topic, this);
  }

  unsubscribe(topic: string): void {
    if (this.closed) return;
    this.ws.unsubscribe(topic + TOPIC_SUFFIX[this.encoding]);
    this.topics.delete(topic);
    this.audience.leave(topic, this);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }
}

export class WsServer implements Fanout, Conflater {
  private readonly conns = new Set<WsConnection>();
  private readonly audience = new Audience();
  /** Topics published to since the last slow-consumer sweep. */
  private readonly published = new Set<string>();
  private sweepScheduled = false;
  private app: TemplatedApp | undefined;
  private accepting = true;

  constructor(private readonly opts: WsOptions) {}

  get connections(): number {
    return this.conns.size;
  }

  /** Bytes queued in sockets and conflated frames held back, over every connection: what slow readers cost. */
  stats(): { connections: number; bufferedBytes: number; maxBufferedBytes: number; heldFrames: number } {
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
    return { connections: this.conns.size, bufferedBytes, maxBufferedBytes, heldFrames };
  }

  publish(topic: string, frame: ServerFrame, except?: Connection): void {
    const app = this.app;
    if (!app) return;
    for (const enc of ENCODINGS) {
      const t = topic + TOPIC_SUFFIX[enc];
      const n = app.numSubscribers(t);
      if (n === 0) continue;
      this.opts.onDeliveries?.(n);
      this.opts.observe?.sent(frame.t, n);
      const bytes = encode(frame, enc);
      const binary = enc === 'msgpack';
      // ws.publish reaches every subscriber but the sender itself.
      if (except instanceof WsConnection && except.encoding === enc && !except.closed) except.ws.publish(t, bytes, binary);
      else app.publish(t, bytes, binary);
    }
    this.published.add(topic);
    if (!this.sweepScheduled) {
      this.sweepScheduled = true;
      setImmediate(() => this.sweep());
    }
  }

  /** Closes, as slow consumers, the subscribers that this turn's publishes took past the limit. */
  private sweep(): void {
    this.sweepScheduled = false;
    const limit = this.opts.maxBackpressure;
    for (const topic of this.published) {
      for (const c of this.audience.of(topic)) {
        if (!c.closed && c.ws.getBufferedAmount() > limit) c.close(CloseCode.SLOW_CONSUMER, 'slow consumer: reconnect and resume');
      }
    }
    this.published.clear();
  }

  conflate(conns: Iterable<Connection>, key: string, frame: ServerFrame): void {
    const bytes: Partial<Record<Encoding, Uint8Array | string>> = {};
    for (const c of conns) {
      if (!(c instanceof WsConnection) || c.closed) continue;
      bytes[c.encoding] ??= encode(frame, c.encoding);
      this.opts.observe?.sent(frame.t);
      c.offer(key, bytes[c.encoding] as Uint8Array | string);
    }
  }

  /** Tells every client to reconnect elsewhere and closes its socket. */
  shutdown(reconnectMs: number): void {
    this.accepting = false;
    for (const c of [...this.conns]) {
      c.send({ t: 'shutdown', reconnectMs });
      c.close(CloseCode.SHUTDOWN, 'node shutting down');
    }
  }

  mount(app: TemplatedApp): void {
    this.app = app;
    const o = this.opts;
    app.ws<UserData>('/ws', {
      maxPayloadLength: o.maxFrameBytes,
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
        const refuse = (status: string, code: string, message: string) => {
          if (aborted) return;
          res.cork(() => {
            res
              .writeStatus(status)
              .writeHeader('content-type', 'application/json; charset=utf-8')
              .end(JSON.stringify({ error: { code, message } }), true);
          });
        };
        if (!this.accepting) return refuse('503 Service Unavailable', 'UNAVAILABLE', 'the node is shutting down; connect to another');
        const offered = (headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
        const protocol = offered.find((p) => p === SUBPROTOCOL_MSGPACK || p === SUBPROTOCOL_JSON);
        if (!protocol) return refuse('400 Bad Request', 'VALIDATION', `offer the WebSocket subprotocol ${SUBPROTOCOL_MSGPACK} or ${SUBPROTOCOL_JSON}`);
        const { token, viaCookie } = this.tokenFrom(headers, query);
        if (!token) return refuse('401 Unauthorized', 'UNAUTHENTICATED', 'send the access token as Authorization: Bearer, the sb_access cookie, or ?token=');
        if (viaCookie && !this.originAllowed(headers))
          return refuse('403 Forbidden', 'FORBIDDEN', 'cross-site WebSocket with cookie authentication: origin not allowed');
        const key = headers['sec-websocket-key'] ?? '';
        const extensions = headers['sec-websocket-extensions'] ?? '';
        o.verifyAccess(token).then(
          (claims) => {
            if (aborted) return;
            res.cork(() => {
              res.upgrade<UserData>({ claims, encoding: protocol === SUBPROTOCOL_MSGPACK ? 'msgpack' : 'json' }, key, protocol, extensions, context);
            });
          },
          (e: unknown) => {
            if (e instanceof SbError) refuse(`401 Unauthorized`, e.code, e.message);
            else {
              o.log.error({ err: e }, 'upgrade failed');
              refuse('500 Internal Server Error', 'INTERNAL', 'internal error');
            }
          },
        );
      },
      open: (ws) => {
        const data = ws.getUserData();
        const conn = new WsConnection(ws, data.encoding, data.claims, o.maxBackpressure, this.audience);
        data.conn = conn;
        conn.observe = o.observe;
        o.observe?.opened();
        this.conns.add(conn);
        // uWS frees a socket's subscriber state when it leaves its last topic, dropping frames
        // published to it but not yet flushed (`room_deleted` is published just before the room
        // unsubscribes everyone). A private topic nobody publishes to keeps that state for life.
        ws.subscribe(`conn:${conn.id}`);
        conn.session = o.createSession(conn, data.claims);
        conn.send({
          t: 'hello',
          v: 'sb.v1',
          node: o.nodeId,
          session: conn.id,
          user: conn.user,
          exp: conn.session.expiresAt,
          limits: { maxFrameBytes: o.maxFrameBytes, ...o.limits },
        });
      },
      message: (ws, message, isBinary) => {
        const conn = ws.getUserData().conn;
        if (!conn || conn.closed) return;
        let frame: ClientFrame;
        try {
          if (isBinary !== (conn.encoding === 'msgpack')) {
            throw new FrameError(null, 'BAD_FRAME', `${conn.encoding} connections send ${conn.encoding === 'msgpack' ? 'binary' : 'text'} frames`);
          }
          let value: unknown;
          try {
            value = decode(new Uint8Array(message), conn.encoding);
          } catch {
            throw new FrameError(null, 'BAD_FRAME', `not a valid ${conn.encoding === 'msgpack' ? 'MessagePack' : 'JSON'} value`);
          }
          frame = toClientFrame(value);
        } catch (e) {
          o.observe?.received('invalid');
          const fe = e instanceof FrameError ? e : new FrameError(null, 'BAD_FRAME', 'unreadable frame');
          conn.send({ t: 'error', id: fe.id, code: fe.frameCode, message: fe.message });
          if (++conn.violations > o.maxViolations) conn.close(CloseCode.PROTOCOL_VIOLATION, 'too many protocol violations');
          return;
        }
        o.observe?.received(frame.t);
        conn.session.onFrame(frame).catch((e) => o.log.error({ err: e, conn: conn.id }, 'frame handler failed'));
      },
      drain: (ws) => {
        ws.getUserData().conn?.wake();
      },
      close: (ws, code) => {
        const conn = ws.getUserData().conn;
        if (!conn) return;
        o.observe?.closed(closeLabel(code));
        conn.closed = true;
        conn.wake();
        this.conns.delete(conn);
        for (const topic of conn.topics) this.audience.leave(topic, conn);
        conn.session.onClose();
      },
    });
  }

  private tokenFrom(headers: Record<string, string>, query: URLSearchParams): { token: string | undefined; viaCookie: boolean } {
    const m = /^Bearer (\S+)$/i.exec(headers.authorization ?? '');
    if (m) return { token: m[1], viaCookie: false };
    const q = query.get('token');
    if (q) return { token: q, viaCookie: false };
    return { token: parseCookies(headers.cookie)[COOKIE_ACCESS], viaCookie: true };
  }

  /** Cookie-authenticated sockets must come from an allowed origin or the hub's own (CSWSH defence). */
  private originAllowed(headers: Record<string, string>): boolean {
    const origin = headers.origin;
    if (!origin) return true; // not a browser: cookies were attached deliberately
    if (this.opts.corsOrigins.includes(origin)) return true;
    try {
      return new URL(origin).host === headers.host;
    } catch {
      return false;
    }
  }
}
