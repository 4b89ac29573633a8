// Idempotent publishing. Every publish has a cid (client message id); the hub stores a cid once per
// sender and answers a repeat with the original seq. So the outbox may send a publish as often as
// it needs — after a lost connection, a timeout or a retryable nack — always with the same cid,
// and the message is still stored exactly once. Invariant: each publish() settles once, with the
// ack, a non-retryable nack, or the client's end. Publishes are sent in call order; retries may
// overtake one another.

import type { AckFrame } from '../protocol/frames.js';
import { asSwitchboardError, RETRYABLE_PUBLISH_CODES, SwitchboardError } from './errors.js';
import { type ReplyFrame, type Requests, serverError } from './requests.js';

/** The hub's acknowledgement of a stored message. */
export interface Ack {
  room: string;
  cid: string;
  /** The message's seq in its room. */
  seq: number;
  /** Message id (UUID). */
  mid: string;
  /** Server time the message was stored, ms since the epoch. */
  ts: number;
  /** True when the hub already had this cid (a retry after a lost ack): the original message. */
  dup: boolean;
}

interface Entry {
  readonly room: string;
  readonly body: string;
  readonly cid: string;
  /** Sends so far that ended without an answer or with a retryable nack. */
  attempt: number;
  reqId: number | undefined;
  /** The attempt's reply deadline, or the delay before the next attempt. */
  timer: ReturnType<typeof setTimeout> | undefined;
  retrying: boolean;
  resolve(a: Ack): void;
  reject(e: SwitchboardError): void;
}

export interface OutboxHost {
  isOpen(): boolean;
  readonly timeoutMs: number;
  readonly requests: Requests;
  /** How long to wait before attempt number `attempt` (1 for the first retry) after `code`, ms. */
  retryDelay(attempt: number, code: string): number;
}

export class Outbox {
  /** Unsettled publishes, in call order. */
  private readonly entries = new Set<Entry>();

  constructor(private readonly host: OutboxHost) {}

  /** Publishes waiting for their ack. */
  get size(): number {
    return this.entries.size;
  }

  publish(room: string, body: string, cid: string): Promise<Ack> {
    return new Promise<Ack>((resolve, reject) => {
      const e: Entry = { room, body, cid, attempt: 0, reqId: undefined, timer: undefined, retrying: false, resolve, reject };
      this.entries.add(e);
      this.send(e);
    });
  }

  /** A connection is up: send every publish that is neither in flight nor waiting out a retry delay. */
  flush(): void {
    for (const e of [...this.entries]) if (!e.retrying) this.send(e);
  }

  /** The client ended: every publish fails with `err`. */
  failAll(err: SwitchboardError): void {
    for (const e of [...this.entries]) this.finish(e, err);
  }

  private send(e: Entry): void {
    if (!this.host.isOpen() || e.reqId !== undefined || !this.entries.has(e)) return;
    let id: number;
    try {
      id = this.host.requests.send(
        { t: 'pub', room: e.room, cid: e.cid, body: e.body },
        {
          reply: (f) => this.onReply(e, id, f),
          lost: () => this.lost(e, id),
          fail: (err) => this.finish(e, err),
        },
      );
    } catch (err) {
      this.finish(e, asSwitchboardError(err, 'DISCONNECTED', 'publish not sent'));
      return;
    }
    e.reqId = id;
    e.timer = setTimeout(() => {
      if (e.reqId !== id) return;
      this.host.requests.forget(id);
      e.reqId = undefined;
      this.retryLater(e, 'TIMEOUT');
    }, this.host.timeoutMs);
  }

  private onReply(e: Entry, id: number, f: ReplyFrame): void {
    if (e.reqId !== id) return;
    clearTimeout(e.timer);
    e.reqId = undefined;
    if (f.t === 'ack') this.finish(e, undefined, f);
    else if (f.t === 'nack' && RETRYABLE_PUBLISH_CODES.has(f.code)) this.retryLater(e, f.code);
    else if (f.t === 'nack' || f.t === 'error') this.finish(e, serverError(f, e.room));
    else this.finish(e, new SwitchboardError('BAD_FRAME', `unexpected ${f.t} in reply to pub`, { room: e.room }));
  }

  /** The connection dropped mid-attempt: the next `hello` sends it again (same cid). */
  private lost(e: Entry, id: number): void {
    if (e.reqId !== id) return;
    clearTimeout(e.timer);
    e.timer = undefined;
    e.reqId = undefined;
  }

  private retryLater(e: Entry, code: string): void {
    e.attempt += 1;
    e.retrying = true;
    e.timer = setTimeout(
      () => {
        e.timer = undefined;
        e.retrying = false;
        this.send(e); // if disconnected, the next flush() sends it
      },
      this.host.retryDelay(e.attempt, code),
    );
  }

  private finish(e: Entry, err: SwitchboardError | undefined, ack?: AckFrame): void {
    if (!this.entries.delete(e)) return;
    clearTimeout(e.timer);
    if (e.reqId !== undefined) this.host.requests.forget(e.reqId);
    e.reqId = undefined;
    if (err) e.reject(err);
    else if (ack) e.resolve({ room: e.room, cid: e.cid, seq: ack.seq, mid: ack.mid, ts: ack.ts, dup: ack.dup === true });
  }
}

/** A random UUID: crypto.randomUUID where available (Node 20, secure browser contexts), else v4 from getRandomValues. */
export function newCid(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string; getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  if (!c?.getRandomValues) throw new SwitchboardError('UNSUPPORTED', 'no Web Crypto here: pass a cid to publish()');
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
