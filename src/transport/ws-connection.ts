// One client socket as the actors see it (a Connection), with what the server needs to keep its
// queue bounded: a frame is queued only if it fits under the socket's backpressure limit (or the
// queue is empty); otherwise the socket is closed first, so what a slow reader got is gapless.
// Conflated frames wait here, newest per key, until the socket drains.

import { randomBytes } from 'node:crypto';
import type { ClientConnection } from '../actors/ports.js';
import type { AccessClaims } from '../auth/access-tokens.js';
import { encode } from '../protocol/codec.js';
import type { ClientFrame, Encoding, ServerFrame, UserRef } from '../protocol/frames.js';
import type { WebSocket } from './uws.js';

/** What a socket's session is to the server, whatever it speaks. */
export interface SessionLike {
  onClose(): void;
  readonly expiresAt: number;
  /** The login session of its latest token (the `sid` claim): the socket closes when that session ends. */
  readonly sid: string | undefined;
}

/** The session of an sb.v1 socket: it takes the client's frames. */
export interface FrameSession extends SessionLike {
  onFrame(f: ClientFrame): Promise<void>;
}

/** What the server reports for metrics: frame types are the protocol's `t` values (or "invalid"). */
export interface WsObserver {
  opened(): void;
  closed(code: number | 'other'): void;
  received(type: string): void;
  sent(type: string, n?: number): void;
}

export interface UserData {
  /** The verified token, until `open` hands it to the connection and session (then dropped). */
  claims: AccessClaims | undefined;
  encoding: Encoding;
  ip: string;
  /** The robot a /foxglove socket opens (its query's `robot`). */
  robot?: string;
  conn?: WsConnection;
  /** What the socket does with a client message (set at open, by what the socket speaks). */
  receive?: (message: ArrayBuffer, isBinary: boolean) => void;
}

export const TOPIC_SUFFIX: Record<Encoding, string> = { msgpack: ':m', json: ':j' };
export const ENCODINGS: Encoding[] = ['msgpack', 'json'];

/** Who is in each topic (uWS does not say): the connections a publish may have pushed past the limit. */
export class Audience {
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
 * uWS's own backpressure limit, a backstop above ours: at its limit uWS silently drops a publish for
 * that socket (a gap the reader could see), so we must always close first. We check before every
 * frame is queued (see `fits`); one frame may exceed our limit only on an empty queue (a history
 * page), hence the headroom.
 */
export const uwsBackpressureLimit = (ours: number) => ours + 32 * 1_048_576;

/** A server-to-client WebSocket frame header is at most 10 bytes (no mask); counted with each frame. */
export const FRAME_HEADER_BYTES = 10;

export const SLOW = 'slow consumer: reconnect and resume';

/** The frame size at which uWS itself drops the connection (see `maxPayloadLength` in mount). */
export const wsBackstopFrameBytes = (maxFrameBytes: number) => 2 * maxFrameBytes;

/**
 * uWS keeps a socket closed with `end()` (and its queue) until the peer reads the close frame or a
 * timeout of 4, 8 or 16 s depending on the idle timeout (its `idleTimeoutComponents`); we count those
 * bytes against the node budget for that long.
 */
export const lingerMs = (idleTimeoutS: number) => {
  let margin = 4;
  while (idleTimeoutS - margin * 2 >= margin * 2 && margin < 16) margin *= 2;
  return margin * 1_000;
};

export class WsConnection implements ClientConnection {
  readonly id: string;
  readonly user: UserRef;
  closed = false;
  /** The violation budget: tokens left and when they were last refilled (see WsOptions.maxViolations). */
  violationTokens = 0;
  violationsAt = 0;
  session!: SessionLike;
  observe: WsObserver | undefined;

  constructor(
    readonly ws: WebSocket<UserData>,
    readonly encoding: Encoding,
    claims: AccessClaims,
    protected readonly maxBackpressure: number,
    protected readonly audience: Audience,
    private readonly server: { backlogged(c: WsConnection): void; slow(c: WsConnection): void },
  ) {
    this.id = randomBytes(8).toString('base64url');
    this.user = { id: claims.sub, username: claims.username };
  }

  /** Writers waiting for the socket to drain (made on first use, like `topics`). */
  private waiting: (() => void)[] | undefined;
  /** Conflated frames waiting for the socket to drain: the newest per key. */
  private conflated: Map<string, Uint8Array | string> | undefined;

  send(frame: ServerFrame): void {
    this.observe?.sent(frame.t);
    this.sendBytes(encode(frame, this.encoding));
  }

  writable(): Promise<void> {
    if (this.closed || this.ws.getBufferedAmount() < this.maxBackpressure / 2) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiting ??= [];
      this.waiting.push(resolve);
    });
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
    this.waiting = undefined;
    for (const resolve of w ?? []) resolve();
  }

  sendBytes(data: Uint8Array | string, binary = this.encoding === 'msgpack'): void {
    if (this.closed) return;
    if (!this.fits(typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength)) {
      this.server.slow(this);
      return;
    }
    const status = this.ws.send(data, binary);
    this.unflushed = 0; // a send first flushes what uWS still holds for this socket's topics
    // Dropped by uWS (its backstop): never leave a gap open.
    if (status === 2) this.server.slow(this);
    else this.server.backlogged(this);
  }

  /** The queue at the last sweep: one that never shrinks belongs to a reader that stopped. */
  lastBuffered = 0;

  /**
   * Bytes published to this socket's topics that uWS may still hold in its topic tree: it batches
   * small publishes (under 16 KiB) and writes them later, so getBufferedAmount() does not count them yet.
   */
  unflushed = 0;

  /**
   * Whether a frame of `bytes` may be queued: the queue stays within the limit, or it is empty. When
   * the estimate says no, a ping makes uWS flush this socket's topic messages (a send always does),
   * so the answer rests on the exact queue; that costs one 2-byte ping per limit's worth of traffic.
   */
  fits(bytes: number): boolean {
    const need = bytes + FRAME_HEADER_BYTES;
    let queued = this.ws.getBufferedAmount();
    if (queued + this.unflushed + need <= this.maxBackpressure) return true;
    if (this.unflushed > 0) {
      this.ws.ping();
      this.unflushed = 0;
      queued = this.ws.getBufferedAmount();
    }
    return queued === 0 || queued + need <= this.maxBackpressure;
  }

  /** The topics this connection is in (made at the first): left on close. */
  topics: Set<string> | undefined;

  subscribe(topic: string): void {
    if (this.closed) return;
    this.ws.subscribe(topic + TOPIC_SUFFIX[this.encoding]);
    this.topics ??= new Set();
    this.topics.add(topic);
    this.audience.join(topic, this);
  }

  unsubscribe(topic: string): void {
    if (this.closed) return;
    this.ws.unsubscribe(topic + TOPIC_SUFFIX[this.encoding]);
    this.topics?.delete(topic);
    this.audience.leave(topic, this);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }

  /** Closes at once, without a close frame: uWS frees the queue now instead of after its close timeout. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close();
  }
}
