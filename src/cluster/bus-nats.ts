// The cluster Bus: carries each room's committed batches to every node with local subscribers, on
// core NATS (at most once), and never touches the store. PostgreSQL stays the point of durability
// and order (the room actor's commit); a node that misses a batch is told so, and its room actor
// repairs from the store: a later batch shows the gap, and when none comes, `missed()` (every few
// seconds, and at once after a NATS reconnect) has the actor compare with the stored head.
// docs/architecture.md argues this design against a JetStream-first one.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { packPlain, unpackPlain } from '../protocol/codec.js';
import type { Message } from '../store/messages.js';
import type { Bus, RoomListener, RoomSignal } from './bus.js';
import type { ClusterNames } from './nats.js';

type Wire = [id: string, seq: number, senderId: string | null, cid: string, body: string, createdAt: number][];

const toWire = (batch: Message[]): Uint8Array => packPlain(batch.map((m) => [m.id, m.seq, m.senderId, m.cid, m.body, m.createdAt.getTime()]) satisfies Wire);

function fromWire(roomId: string, data: Uint8Array): Message[] {
  const rows = unpackPlain(data) as Wire;
  return rows.map(([id, seq, senderId, cid, body, at]) => ({ id, roomId, seq, senderId, cid, body, createdAt: new Date(at) }));
}

type SignalWire = [node: string, 'j' | 'l', [string, string]] | [node: string, 'd'];

interface Room {
  listeners: Set<RoomListener>;
  sub: Subscription;
  signalSub: Subscription;
}

export class NatsBus implements Bus {
  private readonly rooms = new Map<string, Room>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: ClusterNames,
    private readonly log: Logger,
    private readonly nodeId: string,
    /** How often listened rooms are told to compare with the store, for a batch missed with no later one. */
    catchUpMs = 2_000,
  ) {
    this.timer = setInterval(() => this.reconnected(), catchUpMs);
    this.timer.unref();
  }

  announce(roomId: string, batch: Message[]): void {
    // The connection is noEcho: this node's listeners hear it here, not from NATS.
    for (const l of this.rooms.get(roomId)?.listeners ?? []) l.messages(batch);
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

  signal(roomId: string, signal: RoomSignal): void {
    const wire: SignalWire =
      signal.kind === 'deleted' ? [this.nodeId, 'd'] : [this.nodeId, signal.op === 'joined' ? 'j' : 'l', [signal.user.id, signal.user.username]];
    try {
      this.nc.publish(this.names.signals(roomId), packPlain(wire));
    } catch (e) {
      this.log.warn({ err: e, room: roomId }, 'could not signal the cluster');
    }
  }

  listen(roomId: string, listener: RoomListener): () => void {
    let room = this.rooms.get(roomId);
    if (!room) {
      const listeners = new Set<RoomListener>();
      const signalSub = this.nc.subscribe(this.names.signals(roomId), {
        callback: (err, msg) => {
          if (err) return this.log.warn({ err, room: roomId }, 'signal subscription failed');
          let w: SignalWire;
          try {
            w = unpackPlain(msg.data) as SignalWire;
          } catch (e) {
            return this.log.error({ err: e, room: roomId }, 'undecodable signal from the cluster');
          }
          const signal: RoomSignal =
            w[1] === 'd' ? { kind: 'deleted' } : { kind: 'member', op: w[1] === 'j' ? 'joined' : 'left', user: { id: w[2][0], username: w[2][1] } };
          for (const l of listeners) l.signal(w[0], signal);
        },
      });
      const sub = this.nc.subscribe(this.names.room(roomId), {
        callback: (err, msg) => {
          if (err) return this.log.warn({ err, room: roomId }, 'room subscription failed');
          let batch: Message[];
          try {
            batch = fromWire(roomId, msg.data);
          } catch (e) {
            return this.log.error({ err: e, room: roomId }, 'undecodable batch from the cluster');
          }
          for (const l of listeners) l.messages(batch);
        },
      });
      room = { listeners, sub, signalSub };
      this.rooms.set(roomId, room);
    }
    const r = room;
    r.listeners.add(listener);
    return () => {
      r.listeners.delete(listener);
      if (r.listeners.size === 0 && this.rooms.get(roomId) === r) {
        this.rooms.delete(roomId);
        r.sub.unsubscribe();
        r.signalSub.unsubscribe();
      }
    };
  }

  /**
   * NATS core delivery is at most once, so a batch can be missed (an outage of this node's or the
   * publisher's NATS link, a node that died between its commit and its publish) with no later batch
   * of the room to show the gap: every listener is told to compare with the store. Called after a
   * reconnect, and every few seconds.
   */
  reconnected(): void {
    for (const r of this.rooms.values()) for (const l of r.listeners) l.missed();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const r of this.rooms.values()) {
      r.sub.unsubscribe();
      r.signalSub.unsubscribe();
    }
    this.rooms.clear();
  }
}
