// Room subscriptions and gapless delivery. Per room the client remembers the last seq it handed to
// the application; every (re-)subscription asks for `since` that seq, and the hub replays what
// came after it before the live stream. Invariant: `message` and timeline `event` events for a room
// carry seqs last+1, last+2, … — a duplicate (seq <= last) is dropped, and a gap (seq > last+1) is dropped
// too and refilled by re-subscribing with `since` = last, whose replay is contiguous.

import type { TimelineFrame } from '../protocol/frames.js';
import { SwitchboardError } from './errors.js';
import { type ReplyFrame, serverError } from './requests.js';
import { RetriedRequest, type RetryHost, Waiters } from './retried-request.js';

/** A confirmed subscription. */
export interface Subscribed {
  room: string;
  /** The room's latest seq when the subscription became live. */
  seq: number;
}

interface Sub {
  readonly room: string;
  /** Highest seq handed to the application, or the `since` asked for; undefined for a live-only start. */
  last: number | undefined;
  /** The `sub` request, asked again on a timeout or a transient refusal. */
  readonly req: RetriedRequest;
  /** `subscribed` came on the current connection. */
  live: boolean;
  /** `subscribed` came at least once. */
  confirmed: boolean;
  /** Re-subscriptions in a row that still left a gap. */
  stalls: number;
  readonly waiters: Waiters<Subscribed>;
}

export interface RoomsHost extends RetryHost {
  deliver(m: TimelineFrame): void;
  report(err: SwitchboardError): void;
}

/** Refusals of a `sub` that are worth asking again after a delay (the hub could not replay, or was busy). */
const TRANSIENT = new Set(['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED']);

/** After this many re-subscriptions that leave the same gap, the gap is reported and skipped. */
const MAX_STALLS = 3;

export class Rooms {
  private readonly subs = new Map<string, Sub>();

  constructor(private readonly host: RoomsHost) {}

  /** The last seq handed to the application for `room`. */
  lastSeq(room: string): number | undefined {
    return this.subs.get(room)?.last;
  }

  get rooms(): string[] {
    return [...this.subs.keys()];
  }

  subscribe(room: string, since: number | undefined): Promise<Subscribed> {
    let sub = this.subs.get(room);
    const created = !sub;
    if (!sub) {
      sub = this.newSub(room, since);
      this.subs.set(room, sub);
    } else if (since !== undefined && (sub.last === undefined || since < sub.last)) {
      // Asked to replay further back than what was delivered: do so, as a fresh subscription.
      sub.last = since;
      sub.live = false;
      sub.req.cancel();
    } else if (sub.live) {
      return Promise.resolve({ room, seq: sub.last ?? 0 });
    }
    const s = sub;
    const confirmed = s.waiters.wait(this.host.timeoutMs, () => {
      // A subscription this call created and never confirmed is abandoned, not left pending.
      if (created && !s.confirmed && this.subs.get(room) === s) this.drop(s, true);
      return new SwitchboardError('TIMEOUT', `no reply to sub within ${this.host.timeoutMs} ms`, { room });
    });
    s.req.send();
    return confirmed;
  }

  /** Forgets `room`; true when it was subscribed (the caller tells the hub if connected). */
  unsubscribe(room: string): boolean {
    const sub = this.subs.get(room);
    if (!sub) return false;
    this.drop(sub, false);
    return true;
  }

  /**
   * The hub ended the subscription itself (room deleted, or we are no longer a member): do not
   * resume it, and say `unsub`, which frees the connection's subscription slot.
   */
  ended(room: string): void {
    const sub = this.subs.get(room);
    if (sub) this.drop(sub, true);
  }

  /** A new connection is up: re-subscribe every room from its last seq. */
  resume(): void {
    for (const sub of this.subs.values()) sub.req.send();
  }

  /** The connection dropped: nothing is live any more. */
  lost(): void {
    for (const sub of this.subs.values()) sub.live = false;
  }

  /** The client ended: every pending subscribe() fails. */
  failAll(err: SwitchboardError): void {
    for (const sub of this.subs.values()) {
      sub.req.cancel();
      sub.waiters.rejectAll(err);
    }
    this.subs.clear();
  }

  /** A message or a timeline event: both take the room's next seq. */
  onMessage(m: TimelineFrame): void {
    const sub = this.subs.get(m.room);
    if (!sub) return; // a late delivery after unsubscribe
    if (sub.last === undefined || m.seq === sub.last + 1) {
      sub.last = m.seq;
      this.host.deliver(m);
    } else if (m.seq > sub.last + 1) {
      // A gap. A `sub` already in flight, or waiting to retry, asks with an older `since`, so its replay covers it.
      sub.req.send();
    }
  }

  private newSub(room: string, since: number | undefined): Sub {
    const sub: Sub = {
      room,
      last: since,
      req: new RetriedRequest(this.host, {
        frame: () => (sub.last === undefined ? { t: 'sub', room } : { t: 'sub', room, since: sub.last }),
        wanted: () => this.subs.get(room) === sub,
        retryable: (f) => f.t === 'error' && TRANSIENT.has(f.code),
        answer: (f) => this.onReply(sub, f),
        unsent: (e) => this.host.report(e),
      }),
      live: false,
      confirmed: false,
      stalls: 0,
      waiters: new Waiters(),
    };
    return sub;
  }

  private onReply(sub: Sub, f: ReplyFrame): void {
    if (this.subs.get(sub.room) !== sub) return;
    if (f.t === 'error' && f.code === 'VALIDATION' && sub.confirmed && sub.last !== undefined) {
      // A known room refuses `since`: too far behind to replay. Stay subscribed, live from now,
      // and say which messages the application must page in from history.
      this.host.report(new SwitchboardError('GAP', `too far behind to resume after seq ${sub.last}: ${f.message}`, { room: sub.room }));
      sub.last = undefined;
      sub.req.send();
      return;
    }
    if (f.t !== 'subscribed') {
      const err = f.t === 'error' ? serverError(f, sub.room) : new SwitchboardError('BAD_FRAME', `unexpected ${f.t} in reply to sub`, { room: sub.room });
      this.subs.delete(sub.room);
      if (sub.waiters.size > 0) sub.waiters.rejectAll(err);
      else this.host.report(err);
      return;
    }
    if (sub.last === undefined) sub.last = f.seq;
    else if (f.seq < sub.last && !sub.confirmed)
      sub.last = f.seq; // the caller's `since` was past the end
    else if (f.seq > sub.last) {
      // The replay should have reached f.seq; it did not. Ask again, a few times.
      if (++sub.stalls <= MAX_STALLS) {
        sub.req.send();
        return;
      }
      this.host.report(new SwitchboardError('GAP', `messages ${sub.last + 1}..${f.seq} could not be fetched; skipping them`, { room: sub.room }));
      sub.last = f.seq;
    }
    sub.stalls = 0;
    sub.live = true;
    sub.confirmed = true;
    sub.waiters.resolveAll({ room: sub.room, seq: f.seq });
  }

  private drop(sub: Sub, tellHub: boolean): void {
    this.subs.delete(sub.room);
    const inFlight = sub.req.inFlight;
    sub.req.cancel();
    sub.waiters.rejectAll(new SwitchboardError('CLOSED', 'unsubscribed before the subscription was confirmed', { room: sub.room }));
    if (tellHub && (inFlight || sub.live) && this.host.isOpen()) {
      this.host.requests.call({ t: 'unsub', room: sub.room }, { resend: false }).catch((e) => this.host.report(e as SwitchboardError));
    }
  }
}
