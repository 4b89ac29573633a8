// The person's own stream (`feed`, docs/protocol.md). Numbered frames (`notice`, `read`, `contact`
// with an `n`) are handed to the application once each and in order: the client remembers the last
// `n` it handed over, drops a repeat, and on a gap (or on every new connection) asks `feed` with
// `since` that number; frames that arrive while the answer is on its way are held and handed over
// after it. Message notices are not numbered and go straight through.

import type { FeedFrame, NoticeFrame, ServerFrame, StreamFrame } from '../protocol/frames.js';
import { SwitchboardError } from './errors.js';
import type { ReplyFrame } from './requests.js';

export interface StreamHost {
  call(body: { t: 'feed'; since?: number }): Promise<ReplyFrame>;
  /** A numbered frame, or a message notice, for the application. */
  deliver(f: StreamFrame | NoticeFrame): void;
  /** A `feed` answer: where the stream stands, the rooms with unread messages, and whether notices were pruned. */
  caughtUp(f: Pick<FeedFrame, 'n' | 'unread' | 'reset'>): void;
  report(err: SwitchboardError): void;
}

/** Numbered frames held at most while a catch-up is on its way (beyond that, the catch-up brings them anyway). */
const MAX_HELD = 1_000;
/** A failed catch-up is asked again after this long (ms), doubling up to a minute. */
const RETRY_MS = 1_000;

export class PersonStream {
  private held: StreamFrame[] | undefined;
  private running = false;
  private again = false;
  private retryMs = RETRY_MS;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ended = false;

  /** `last`: the last number the application has (stored by it across restarts), if any. */
  constructor(
    private readonly host: StreamHost,
    private last: number | undefined,
  ) {}

  /** The last number handed to the application: keep it, and pass it as `noticesSince` next time. */
  get n(): number | undefined {
    return this.last;
  }

  /** A frame for this person: numbered ones in order, message notices at once. */
  onFrame(f: ServerFrame): void {
    const s = f as StreamFrame | NoticeFrame;
    // Message notices are not numbered (nor anything from a hub without numbered streams).
    if (!('n' in s) || typeof s.n !== 'number') {
      this.host.deliver(s);
      return;
    }
    if (this.held || this.last === undefined) {
      // A catch-up is on its way (or, on a new device, has not answered yet): it brings whatever is dropped here.
      this.held ??= [];
      if (this.held.length < MAX_HELD) this.held.push(s);
      return;
    }
    if (s.n <= this.last) return; // a repeat
    if (s.n > this.last + 1) {
      this.held = [s];
      void this.catchUp();
      return;
    }
    this.last = s.n;
    this.host.deliver(s);
  }

  /** On every new connection: what was missed while away (or, the first time, where the stream stands). */
  connected(): void {
    this.held ??= [];
    void this.catchUp();
  }

  /** The client ended for good: nothing more is asked. */
  closed(): void {
    this.ended = true;
    clearTimeout(this.timer);
    this.held = undefined;
  }

  private async catchUp(): Promise<void> {
    if (this.ended) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    clearTimeout(this.timer);
    try {
      for (this.again = true; this.again; ) {
        this.again = false;
        const reply = await this.host.call({ t: 'feed', ...(this.last === undefined ? {} : { since: this.last }) });
        if (reply.t !== 'feed') throw new SwitchboardError('BAD_FRAME', `expected feed, got ${reply.t}`);
        if (this.last === undefined || reply.reset) this.last = reply.n;
        for (const f of reply.notices) this.accept(f);
        this.host.caughtUp({ n: reply.n, unread: reply.unread, ...(reply.reset ? { reset: true as const } : {}) });
        if (reply.more) this.again = true;
      }
      this.retryMs = RETRY_MS;
    } catch (e) {
      this.running = false;
      const err = e instanceof SwitchboardError ? e : new SwitchboardError('UNAVAILABLE', `feed: ${String(e)}`);
      // Closed for good: nothing more. Disconnected: the next connection catches up. Anything
      // else (the hub refused or failed): asked again later, the frames meanwhile still held.
      if (this.ended || err.code === 'CLOSED') this.closed();
      else if (err.code !== 'DISCONNECTED') {
        this.host.report(err);
        this.timer = setTimeout(() => void this.catchUp(), this.retryMs);
        this.retryMs = Math.min(60_000, this.retryMs * 2);
      }
      return;
    }
    this.running = false;
    const held = this.held ?? [];
    this.held = undefined;
    held.sort((a, b) => a.n - b.n);
    for (const f of held) this.onFrame(f);
  }

  private accept(f: StreamFrame): void {
    if (this.last !== undefined && f.n <= this.last) return;
    this.last = f.n;
    this.host.deliver(f);
  }
}
