// The cluster Bus. PostgreSQL stays the point of durability and order: a batch is durable, and its
// seqs final, once its `last_seq`-fenced insert commits, whichever node's room actor sequenced it
// (a node that lost track of the room is refused and re-reads it). NATS carries the committed
// batch to every other node with local subscribers, at most once; a node that misses one repairs
// the gap from PostgreSQL when the next batch or an announcement shows it (the room actor's
// delivery path), and after a NATS reconnect every local room re-reads its tail.
// docs/architecture.md argues this design against a JetStream-first one.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { packPlain, unpackPlain } from '../protocol/codec.js';
import type { Message, SequencedMessage } from '../store/messages.js';
import type { Store } from '../store/store.js';
import type { Bus, BusListener } from './bus.js';
import type { ClusterNames } from './nats.js';

type Wire = [id: string, seq: number, senderId: string | null, cid: string, body: string, createdAt: number][];

const toWire = (batch: Message[]): Uint8Array => packPlain(batch.map((m) => [m.id, m.seq, m.senderId, m.cid, m.body, m.createdAt.getTime()]) satisfies Wire);

function fromWire(roomId: string, data: Uint8Array): Message[] {
  const rows = unpackPlain(data) as Wire;
  return rows.map(([id, seq, senderId, cid, body, at]) => ({ id, roomId, seq, senderId, cid, body, createdAt: new Date(at) }));
}

interface Room {
  listeners: Set<BusListener>;
  sub: Subscription;
}

export class NatsBus implements Bus {
  private readonly rooms = new Map<string, Room>();

  constructor(
    private readonly store: Store,
    private readonly nc: NatsConnection,
    private readonly names: ClusterNames,
    private readonly log: Logger,
  ) {}

  async append(roomId: string, batch: SequencedMessage[], expectedLastSeq: number): Promise<void> {
    await this.store.messages.insertSequenced(roomId, batch, expectedLastSeq);
    this.announce(roomId, batch);
  }

  announce(roomId: string, batch: Message[]): void {
    for (const l of this.rooms.get(roomId)?.listeners ?? []) l(batch);
    try {
      this.nc.publish(this.names.room(roomId), toWire(batch));
    } catch (e) {
      // Closed or draining: the other nodes repair from the store when the next batch shows the gap.
      this.log.warn({ err: e, room: roomId }, 'could not fan a batch out to the cluster');
    }
  }

  listen(roomId: string, listener: BusListener): () => void {
    let room = this.rooms.get(roomId);
    if (!room) {
      const listeners = new Set<BusListener>();
      const sub = this.nc.subscribe(this.names.room(roomId), {
        callback: (err, msg) => {
          if (err) return this.log.warn({ err, room: roomId }, 'room subscription failed');
          let batch: Message[];
          try {
            batch = fromWire(roomId, msg.data);
          } catch (e) {
            return this.log.error({ err: e, room: roomId }, 'undecodable batch from the cluster');
          }
          for (const l of listeners) l(batch);
        },
      });
      room = { listeners, sub };
      this.rooms.set(roomId, room);
    }
    const r = room;
    r.listeners.add(listener);
    return () => {
      r.listeners.delete(listener);
      if (r.listeners.size === 0 && this.rooms.get(roomId) === r) {
        this.rooms.delete(roomId);
        r.sub.unsubscribe();
      }
    };
  }

  /**
   * After a NATS outage: batches published meanwhile were missed. Each listened room is handed its
   * latest stored message, which its actor sees as a gap to repair from the store, or ignores.
   */
  async resync(): Promise<void> {
    for (const [roomId, r] of this.rooms) {
      const room = await this.store.rooms.byId(roomId);
      if (!room || room.lastSeq === 0) continue;
      const last = await this.store.messages.range(roomId, room.lastSeq - 1, room.lastSeq);
      for (const l of r.listeners) l(last);
    }
  }

  async close(): Promise<void> {
    for (const r of this.rooms.values()) r.sub.unsubscribe();
    this.rooms.clear();
  }
}
