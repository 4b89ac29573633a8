// The cluster Bus: carries each room's committed batches to every node with local subscribers, on
// core NATS (at most once), and never touches the store. PostgreSQL stays the point of durability
// and order (the room actor's commit); a node that misses a batch is told so, and its room actor
// repairs from the store: a later batch shows the gap, and when none comes, `missed()` (every few
// seconds, and at once after a NATS reconnect) has the actor compare with the stored head.
// docs/architecture.md argues this design against a JetStream-first one.

import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { packPlain } from '../protocol/codec.js';
import type { Attachment } from '../protocol/frames.js';
import type { Message } from '../store/messages.js';
import type { TimelineEvent } from '../store/timeline.js';
import { MemoryBus } from './bus-memory.js';
import { type ClusterNames, publishPlain, subscribePlain } from './nats.js';

/**
 * A message, or a timeline event with its details; a message found changed since (re-announced by
 * a retry) carries when it was deleted or edited. The optional fields come last, so a node of an
 * earlier version reads the rest.
 */
type Row = [
  id: string,
  seq: number,
  senderId: string | null,
  cid: string,
  body: string,
  createdAt: number,
  event?: TimelineEvent | null,
  changed?: [state: 'deleted' | 'edited', at: number] | null,
  attachments?: Attachment[],
];
type Wire = Row[];

const toRow = (m: Message): Row => {
  const row: Row = [m.id, m.seq, m.senderId, m.cid, m.body, m.createdAt.getTime()];
  if (m.event) row.push(m.event);
  else if (m.deletedAt) row.push(null, ['deleted', m.deletedAt.getTime()]);
  else if (m.editedAt) row.push(null, ['edited', m.editedAt.getTime()]);
  if (m.attachments) {
    while (row.length < 8) row.push(null);
    row.push(m.attachments);
  }
  return row;
};
const toWire = (batch: Message[]): Uint8Array => packPlain(batch.map(toRow) satisfies Wire);

function fromWire(roomId: string, rows: Wire): Message[] {
  return rows.map(([id, seq, senderId, cid, body, at, event, changed, attachments]) => {
    const m: Message = { id, roomId, seq, senderId, cid, body, createdAt: new Date(at) };
    if (event) m.event = event;
    if (changed?.[0] === 'deleted') m.deletedAt = new Date(changed[1]);
    else if (changed?.[0] === 'edited') m.editedAt = new Date(changed[1]);
    if (attachments) m.attachments = attachments;
    return m;
  });
}

/** A room deleted: the only signal (a node of an earlier version may send others, which are ignored). */
type SignalWire = [node: string, 'd'];

export class NatsBus extends MemoryBus {
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: ClusterNames,
    private readonly log: Logger,
    private readonly nodeId: string,
    /** How often listened rooms are told to compare with the store, for a batch missed with no later one. */
    catchUpMs = 2_000,
  ) {
    super((roomId, listeners) => {
      const context = { room: roomId };
      const batches = subscribePlain<Wire>(nc, names.room(roomId), log, 'batch', context, (w) => {
        const batch = fromWire(roomId, w);
        for (const l of listeners) l.messages(batch);
      });
      const signals = subscribePlain<SignalWire>(nc, names.signals(roomId), log, 'signal', context, (w) => {
        if (w[1] === 'd') for (const l of listeners) l.deleted(w[0]);
      });
      return () => {
        batches.unsubscribe();
        signals.unsubscribe();
      };
    });
    this.timer = setInterval(() => this.reconnected(), catchUpMs);
    this.timer.unref();
  }

  override announce(roomId: string, batch: Message[]): void {
    // The connection is noEcho: this node's listeners hear it here, not from NATS.
    super.announce(roomId, batch);
    try {
      // A group commit can exceed NATS's max_payload (1 MiB by default): then only its last message
      // goes out, and the other nodes read the rest from the store as a gap.
      let wire = toWire(batch);
      if (wire.length > (this.nc.info?.max_payload ?? 1_048_576) && batch.length > 1) wire = toWire(batch.slice(-1));
      this.nc.publish(this.names.room(roomId), wire);
    } catch (e) {
      // Closed or draining: the other nodes repair from the store when the next batch, or the next
      // periodic missed(), shows the gap.
      this.log.warn({ err: e, room: roomId }, 'could not fan a batch out to the cluster');
    }
  }

  override deleted(roomId: string): void {
    const wire: SignalWire = [this.nodeId, 'd'];
    publishPlain(this.nc, this.names.signals(roomId), wire, this.log, 'a room signal', { room: roomId });
  }

  /**
   * NATS core delivery is at most once, so a batch can be missed (an outage of this node's or the
   * publisher's NATS link, a node that died between its commit and its publish) with no later batch
   * of the room to show the gap: every listener is told to compare with the store. Called after a
   * reconnect, and every few seconds.
   */
  reconnected(): void {
    for (const l of this.listeners.all()) l.missed();
  }

  override async close(): Promise<void> {
    clearInterval(this.timer);
    await super.close();
  }
}
