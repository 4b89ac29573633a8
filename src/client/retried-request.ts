// A request the SDK asks until it gets an answer worth keeping: a room's `sub`, a robot's `watch`,
// a `pub`. An attempt is sent only while connected and wanted; no reply within the timeout, or a
// refusal the owner calls retryable, and the next attempt goes out after a backoff delay (the
// hub answers a repeated request as a fresh one; a `pub` carries the same cid every time). A
// dropped connection ends the attempt in flight without a retry: the owner calls send() again on
// the next `hello`. Invariants: at most one attempt is in flight, never while a delay is pending;
// a reply to an attempt given up on is ignored; every answer reaches the owner once.

import { asSwitchboardError, type SwitchboardError } from './errors.js';
import type { ReplyFrame, RequestBody, Requests } from './requests.js';

/** What a retried request needs from the client. */
export interface RetryHost {
  isOpen(): boolean;
  readonly timeoutMs: number;
  readonly requests: Requests;
  /** The delay before retry number `attempt` (1 for the first) after `code`, ms. */
  retryDelay(attempt: number, code: string): number;
}

/** The request's owner: what to send, and where its answers go. */
export interface RetryOwner {
  /** The frame for the next attempt (what it asks for may have moved since the last). */
  frame(): RequestBody;
  /** Whether the request is still wanted: a delay or a timeout that ends sends again only if so. */
  wanted(): boolean;
  /** Whether a reply is a refusal worth asking again after a delay. */
  retryable(f: ReplyFrame): boolean;
  /** A reply that is not a retryable refusal; `id` is the attempt's request id. */
  answer(f: ReplyFrame, id: number): void;
  /** The attempt could not be sent (too large, or the socket is closing); nothing is retried. */
  unsent(err: SwitchboardError): void;
}

export class RetriedRequest {
  private id: number | undefined;
  private replyTimer: ReturnType<typeof setTimeout> | undefined;
  private delayTimer: ReturnType<typeof setTimeout> | undefined;
  /** Retries in a row since the last answer. */
  private retries = 0;

  constructor(
    private readonly host: RetryHost,
    private readonly owner: RetryOwner,
  ) {}

  /** An attempt is in flight. */
  get inFlight(): boolean {
    return this.id !== undefined;
  }

  /** A retry is waiting out its delay. */
  get delayed(): boolean {
    return this.delayTimer !== undefined;
  }

  /** Sends an attempt now, unless one is in flight or waiting out a delay, or the client is not connected. */
  send(): void {
    if (this.id !== undefined || this.delayTimer !== undefined || !this.host.isOpen() || !this.owner.wanted()) return;
    const frame = this.owner.frame();
    let id: number;
    try {
      id = this.host.requests.send(frame, {
        reply: (f) => this.onReply(id, f),
        lost: () => this.endAttempt(id),
        fail: () => this.endAttempt(id),
      });
    } catch (e) {
      this.owner.unsent(asSwitchboardError(e, 'DISCONNECTED', `${frame.t} not sent`));
      return;
    }
    this.id = id;
    this.replyTimer = setTimeout(() => {
      if (this.endAttempt(id)) this.retryLater('TIMEOUT');
    }, this.host.timeoutMs);
  }

  /** Stops asking: the attempt in flight is forgotten (its late reply ignored) and a pending retry dropped. */
  cancel(): void {
    if (this.id !== undefined) this.endAttempt(this.id);
    clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
  }

  private onReply(id: number, f: ReplyFrame): void {
    if (!this.endAttempt(id)) return;
    if (this.owner.retryable(f)) {
      this.retryLater(f.t === 'error' || f.t === 'nack' ? f.code : f.t);
      return;
    }
    this.retries = 0;
    this.owner.answer(f, id);
  }

  /** Ends attempt `id` if it is the one in flight; false when it was already given up on. */
  private endAttempt(id: number): boolean {
    if (this.id !== id) return false;
    this.host.requests.forget(id);
    this.id = undefined;
    clearTimeout(this.replyTimer);
    this.replyTimer = undefined;
    return true;
  }

  private retryLater(code: string): void {
    if (!this.owner.wanted()) return;
    this.delayTimer = setTimeout(
      () => {
        this.delayTimer = undefined;
        this.send(); // when disconnected, the owner's send() on the next `hello` does it
      },
      this.host.retryDelay(++this.retries, code),
    );
  }
}

/** Callers waiting for a request's answer, each with its own deadline. */
export class Waiters<T> {
  private readonly set = new Set<{ resolve(v: T): void; reject(e: SwitchboardError): void; timer: ReturnType<typeof setTimeout> }>();

  get size(): number {
    return this.set.size;
  }

  /** A promise settled by resolveAll/rejectAll, or after `ms` by `expire` (its rejection). */
  wait(ms: number, expire: () => SwitchboardError): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const w = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.set.delete(w);
          reject(expire());
        }, ms),
      };
      this.set.add(w);
    });
  }

  resolveAll(v: T): void {
    for (const w of this.take()) w.resolve(v);
  }

  rejectAll(e: SwitchboardError): void {
    for (const w of this.take()) w.reject(e);
  }

  private take() {
    const ws = [...this.set];
    this.set.clear();
    for (const w of ws) clearTimeout(w.timer);
    return ws;
  }
}
