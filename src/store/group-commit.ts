// Group commits across rooms. Each room's sequencer (its actor) hands in one batch at a time; while
// `maxInFlight` calls are already on their way, what comes in waits and then goes in one call with
// every other room's batch (one round trip, one transaction), so a busy database sees a few large
// transactions rather than many small ones, and an idle one sees each batch at once.
// Invariants: each batch is in exactly one call at a time and settles with that call's verdict for
// its room; one call holds each room at most once and at most `maxWeight` (a heavier single batch
// goes alone); a unique violation fails a whole call (it is one transaction), so the
// rooms of a failed multi-room call are tried again one by one, and only the room at fault fails.

import { UniqueViolationError } from './errors.js';

/** One room's sequenced messages. */
export interface RoomBatch<M> {
  roomId: string;
  messages: M[];
}

/** What the store made of one room's batch. */
export type RoomVerdict =
  | { kind: 'committed'; firstSeq: number }
  | { kind: 'gone' }
  | {
      kind: 'refused';
      /** Senders who are no longer members: nothing of the room's batch was written. */
      notMembers: string[];
    };

interface Entry<M> {
  batch: RoomBatch<M>;
  resolve(v: RoomVerdict): void;
  reject(e: unknown): void;
}

export interface GroupCommitOptions<M> {
  /** Calls on their way at once (each holds a pool connection). */
  maxInFlight: number;
  /** The weight of a batch (bytes it sends, say). */
  weigh(batch: RoomBatch<M>): number;
  /** The weight of one call, at most (a single heavier batch goes alone). */
  maxWeight: number;
}

/** Since start: calls made, and the room batches they carried (rooms per call = rooms / calls). */
export interface GroupCommitStats {
  calls: number;
  rooms: number;
}

export class GroupCommit<M> {
  readonly stats: GroupCommitStats = { calls: 0, rooms: 0 };
  private readonly queue: Entry<M>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    /** Commits the batches in one transaction; a verdict for every room, or throws (translated store errors). */
    private readonly run: (batches: RoomBatch<M>[]) => Promise<Map<string, RoomVerdict>>,
    private readonly o: GroupCommitOptions<M>,
  ) {}

  submit(batch: RoomBatch<M>): Promise<RoomVerdict> {
    return new Promise<RoomVerdict>((resolve, reject) => {
      this.queue.push({ batch, resolve, reject });
      // Batches handed in during this turn of the event loop go together.
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.o.maxInFlight && this.queue.length > 0) {
      const call = this.take();
      this.inFlight++;
      this.call(call).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** The next call's entries, in arrival order: each room once, up to maxWeight (at least one entry). */
  private take(): Entry<M>[] {
    const call: Entry<M>[] = [];
    const rooms = new Set<string>();
    let weight = 0;
    for (let i = 0; i < this.queue.length; ) {
      const e = this.queue[i] as Entry<M>;
      const w = this.o.weigh(e.batch);
      if (call.length > 0 && weight + w > this.o.maxWeight) break;
      if (rooms.has(e.batch.roomId)) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      call.push(e);
      rooms.add(e.batch.roomId);
      weight += w;
    }
    return call;
  }

  private async call(entries: Entry<M>[]): Promise<void> {
    this.stats.calls++;
    this.stats.rooms += entries.length;
    let verdicts: Map<string, RoomVerdict>;
    try {
      verdicts = await this.run(entries.map((e) => e.batch));
    } catch (e) {
      if (e instanceof UniqueViolationError && entries.length > 1) {
        await Promise.all(entries.map((entry) => this.call([entry])));
        return;
      }
      for (const entry of entries) entry.reject(e);
      return;
    }
    for (const entry of entries) {
      const v = verdicts.get(entry.batch.roomId);
      if (v) entry.resolve(v);
      else entry.reject(new Error(`the commit returned no verdict for room ${entry.batch.roomId}`));
    }
  }
}
