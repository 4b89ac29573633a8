// Idempotent publishing. Every publish has a cid (client message id); the hub stores a cid once per
// sender and answers a repeat with the original seq. So the outbox may send a publish as often as
// it needs — after a lost connection, a timeout or a retryable nack — always with the same cid,
// and the message is still stored exactly once. Invariant: each publish() settles once, with the
// ack, a non-retryable nack, or the client's end. Publishes are sent in call order; retries may
// overtake one another.

import type { AckFrame } from '../protocol/frames.js';
import { RETRYABLE_PUBLISH_CODES, SwitchboardError } from './errors.js';
import { type ReplyFrame, serverError } from './requests.js';
import { RetriedRequest, type RetryHost } from './retried-request.js';

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
  readonly cid: string;
  /** The `pub`, sent again (same cid) after a timeout or a retryable nack. */
  readonly req: RetriedRequest;
  resolve(a: Ack): void;
  reject(e: SwitchboardError): void;
}

export class Outbox {
  /** Unsettled publishes, in call order. */
  private readonly entries = new Set<Entry>();

  constructor(private readonly host: RetryHost) {}

  /** Publishes waiting for their ack. */
  get size(): number {
    return this.entries.size;
  }

  publish(room: string, body: string, cid: string, att?: string[]): Promise<Ack> {
    return new Promise<Ack>((resolve, reject) => {
      const e: Entry = {
        room,
        cid,
        req: new RetriedRequest(this.host, {
          frame: () => (att?.length ? { t: 'pub', room, cid, body, att } : { t: 'pub', room, cid, body }),
          wanted: () => this.entries.has(e),
          retryable: (f) => f.t === 'nack' && RETRYABLE_PUBLISH_CODES.has(f.code),
          answer: (f) => this.onAnswer(e, f),
          unsent: (err) => this.finish(e, err),
        }),
        resolve,
        reject,
      };
      this.entries.add(e);
      e.req.send();
    });
  }

  /** A connection is up: send every publish that is neither in flight nor waiting out a retry delay. */
  flush(): void {
    for (const e of [...this.entries]) e.req.send();
  }

  /** The client ended: every publish fails with `err`. */
  failAll(err: SwitchboardError): void {
    for (const e of [...this.entries]) this.finish(e, err);
  }

  private onAnswer(e: Entry, f: ReplyFrame): void {
    if (f.t === 'ack') this.finish(e, undefined, f);
    else if (f.t === 'nack' || f.t === 'error') this.finish(e, serverError(f, e.room));
    else this.finish(e, new SwitchboardError('BAD_FRAME', `unexpected ${f.t} in reply to pub`, { room: e.room }));
  }

  private finish(e: Entry, err: SwitchboardError | undefined, ack?: AckFrame): void {
    if (!this.entries.delete(e)) return;
    e.req.cancel();
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
