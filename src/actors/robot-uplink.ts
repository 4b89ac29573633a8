// The reliable uplink of a robot's home: samples of reliable channels that carry a `seq` (the
// robot's number, +1 per sample per channel) are stored, then acknowledged to the robot with a
// cumulative ACK. Invariants: a seq at or below the highest accepted for its channel is a
// duplicate (dropped, and acknowledged again once stored); one batch is written at a time, in
// order, so an ACK of seq n means every accepted sample up to n is stored; a write that fails
// drops what was waiting and closes the link, so the robot reconnects and replays what was not
// acknowledged (WELCOME tells it what was stored). Storage is keyed by channel name.

import type { Channel } from '../protocol/robot.js';
import { Tag } from '../protocol/robot.js';
import type { StoredSample } from '../store/robot-telemetry.js';
import type { Store } from '../store/store.js';
import type { RobotConnection } from './ports.js';
import type { PartContext } from './runtime.js';

/** What the uplink sends itself through the actor's mailbox. */
export type UplinkMsg = { type: 'uplinkStored'; batch: Pending[] } | { type: 'uplinkFailed'; batch: Pending[]; error: unknown };

interface Pending extends StoredSample {
  /** The channel's id on the link when it was accepted (what the ACK names). */
  id: number;
}

export interface HistoryLimits {
  /** How long stored samples are kept, ms. */
  ms: number;
  /** Samples kept per channel at most. */
  maxSamples: number;
}

export const defaultHistory: HistoryLimits = { ms: 86_400_000, maxSamples: 100_000 };

/** Samples written in one INSERT at most. */
const BATCH = 500;
/** Samples waiting to be stored at most: past it the robot sends faster than the store takes them. */
const MAX_QUEUE = 10_000;
/** The history is pruned at least this often while samples are stored, ms. */
const PRUNE_EVERY_MS = 10_000;

export class RobotUplink {
  /** Highest seq accepted per channel name (stored, or being stored). */
  private readonly accepted = new Map<string, number>();
  /** Highest seq stored per channel name. */
  private readonly stored = new Map<string, number>();
  private queue: Pending[] = [];
  /** The batch being written. */
  private inFlight: Pending[] = [];
  private writing = false;
  private prunedAt = 0;
  private storedSincePrune = 0;
  /** Settles when the write in flight has (committed or failed), whatever the mailbox holds. */
  private written: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly robotId: string,
    private readonly ctx: PartContext<UplinkMsg>,
    private readonly store: Store,
    private readonly limits: HistoryLimits,
    /** The robot's link now (ACKs go to whichever link is current: the numbering is the robot's). */
    private readonly link: () => RobotConnection | undefined,
    /** Told the highest stored seq of a channel it learns from the store. */
    private readonly noteStored: (channel: string, seq: number) => void,
  ) {}

  /** Samples accepted but not stored yet, oldest first. */
  unstored(): StoredSample[] {
    return [...this.inFlight, ...this.queue];
  }

  /** Nothing is being written. */
  idle(): boolean {
    return !this.writing && this.queue.length === 0;
  }

  /**
   * Learns from the store where the numbering of these channels' reliable ones stands; returns
   * [channelId, lastStoredSeq] of those with stored samples, for WELCOME.
   */
  async load(channels: Channel[]): Promise<[number, number][]> {
    const reliable = channels.filter((c) => c.delivery === 'reliable');
    const last = await this.store.robotTelemetry.lastSeqs(
      this.robotId,
      reliable.map((c) => c.name),
    );
    for (const [name, seq] of last) {
      this.noteStored(name, seq);
      this.stored.set(name, Math.max(seq, this.stored.get(name) ?? -1));
      this.accepted.set(name, Math.max(seq, this.accepted.get(name) ?? -1));
    }
    return reliable.flatMap((c): [number, number][] => {
      const seq = this.stored.get(c.name);
      return seq === undefined ? [] : [[c.id, seq]];
    });
  }

  /**
   * Before another link's numbering is read (a robot attaching, here or at its next home): what
   * waits unwritten is forgotten (the robot replays what was not acknowledged), and the write in
   * flight is waited for, up to `ms`, so the store holds it when `load` reads it. Otherwise a
   * batch committed after the read would hold seqs a restarted robot numbers again. The link what
   * waited came on is being replaced: closed now if still open, as nothing later on it may be acknowledged.
   */
  async quiesce(ms: number): Promise<void> {
    if (this.queue.length) this.link()?.close('REPLACED', 'another connection of this robot replaced this one');
    for (const name of new Set(this.queue.map((p) => p.channel))) {
      const inFlight = this.inFlight.filter((p) => p.channel === name).map((p) => p.seq);
      const top = Math.max(this.stored.get(name) ?? -1, ...inFlight);
      if (top < 0) this.accepted.delete(name);
      else this.accepted.set(name, top);
    }
    this.queue = [];
    if (!this.writing) return;
    let timer: unknown;
    await Promise.race([this.written, new Promise((r) => (timer = this.ctx.clock.setTimeout(() => r(undefined), ms)))]);
    this.ctx.clock.clearTimeout(timer);
  }

  /** A numbered sample of a reliable channel: false for a duplicate (dropped; acknowledged again if stored). */
  accept(channel: Channel, seq: number, ts: number, data: unknown): boolean {
    // A link this uplink gave up on: what it still sends is replayed on the next one.
    if (this.link()?.closed !== false) return false;
    if (seq <= (this.accepted.get(channel.name) ?? -1)) {
      const stored = this.stored.get(channel.name);
      if (stored !== undefined && stored >= seq) this.link()?.send({ tag: Tag.ACK, channel: channel.id, seq: stored });
      return false;
    }
    if (this.queue.length >= MAX_QUEUE) {
      // Not acknowledging it while acknowledging later ones would claim it stored: the link goes.
      this.giveUp([], 'the hub cannot store telemetry this fast; reconnect and send again what was not acknowledged');
      return false;
    }
    this.accepted.set(channel.name, seq);
    this.queue.push({ id: channel.id, channel: channel.name, seq, ts, data });
    this.flush();
    return true;
  }

  handle(msg: UplinkMsg): void {
    this.writing = false;
    this.inFlight = [];
    if (msg.type === 'uplinkFailed') {
      this.ctx.log.warn({ err: msg.error }, 'robot telemetry could not be stored; the link is closed so the robot replays');
      this.giveUp(msg.batch, 'the hub could not store telemetry; reconnect and send again what was not acknowledged');
      return;
    }
    const acks = new Map<string, Pending>();
    for (const p of msg.batch) {
      this.stored.set(p.channel, Math.max(p.seq, this.stored.get(p.channel) ?? -1));
      acks.set(p.channel, p);
    }
    const link = this.link();
    for (const p of acks.values()) link?.send({ tag: Tag.ACK, channel: p.id, seq: this.stored.get(p.channel) as number });
    this.storedSincePrune += msg.batch.length;
    this.flush();
    this.maybePrune();
  }

  private flush(): void {
    if (this.writing || this.queue.length === 0) return;
    const batch = this.queue.splice(0, BATCH);
    this.inFlight = batch;
    this.writing = true;
    this.written = this.store.robotTelemetry.insert(this.robotId, batch).then(
      () => this.tell({ type: 'uplinkStored', batch }),
      (error: unknown) => this.tell({ type: 'uplinkFailed', batch, error }),
    );
  }

  private tell(msg: UplinkMsg): void {
    // A full mailbox: the batch's outcome is lost, and with it this uplink's order; the link is
    // closed so the robot replays (what was stored after all is a no-op the second time).
    if (this.ctx.self.tell(msg)) return;
    this.ctx.log.warn('robot mailbox full; a telemetry write result was dropped');
    this.writing = false;
    this.giveUp(msg.batch, 'the hub is overloaded; reconnect and send again what was not acknowledged');
  }

  /** Nothing after `batch` may be acknowledged: what waits is forgotten, and the robot replays it. */
  private giveUp(batch: Pending[], reason: string): void {
    for (const name of new Set([...batch, ...this.queue].map((p) => p.channel))) {
      const stored = this.stored.get(name);
      if (stored === undefined) this.accepted.delete(name);
      else this.accepted.set(name, stored);
    }
    this.queue = [];
    this.link()?.close('UNAVAILABLE', reason);
  }

  /** Keeps the history within its window and count: after a quarter of the count was stored, or every PRUNE_EVERY_MS. */
  private maybePrune(): void {
    const now = this.ctx.clock.now();
    if (this.storedSincePrune < Math.max(1, this.limits.maxSamples / 4) && now - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = now;
    this.storedSincePrune = 0;
    this.store.robotTelemetry
      .prune(this.robotId, new Date(now - this.limits.ms), this.limits.maxSamples)
      .catch((e: unknown) => this.ctx.log.warn({ err: e }, 'robot telemetry history could not be pruned'));
  }
}
