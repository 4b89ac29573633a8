// The cluster Bus. PostgreSQL stays the point of durability and order: a batch is durable, and its
// seqs final, once its `last_seq`-fenced insert commits, whichever node's room actor sequenced it
// (a node that lost track of the room is refused and re-reads it). NATS carries the committed
// batch to every other node with local subscribers, at most once; a node that misses one repairs
// the gap from PostgreSQL when the next batch or an announcement shows it (the room actor's
// delivery path), and a periodic comparison with the stored heads (catchUp) reveals a batch missed
// when no later one arrives.
// docs/architecture.md argues this design against a JetStream-first one.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { packPlain, unpackPlain } from '../protocol/codec.js';
import type { UserRef } from '../protocol/frames.js';
import type { Message, SequencedMessage } from '../store/messages.js';
import type { Store } from '../store/store.js';
import type { Bus, BusListener, PresenceListener } from './bus.js';
import type { ClusterNames } from './nats.js';

type Wire = [id: string, seq: number, senderId: string | null, cid: string, body: string, createdAt: number][];

const toWire = (batch: Message[]): Uint8Array => packPlain(batch.map((m) => [m.id, m.seq, m.senderId, m.cid, m.body, m.createdAt.getTime()]) satisfies Wire);

function fromWire(roomId: string, data: Uint8Array): Message[] {
  const rows = unpackPlain(data) as Wire;
  return rows.map(([id, seq, senderId, cid, body, at]) => ({ id, roomId, seq, senderId, cid, body, createdAt: new Date(at) }));
}

interface Room {
  listeners: Set<BusListener>;
  presence: Set<PresenceListener>;
  sub: Subscription;
  presenceSub: Subscription;
  /** The highest seq handed to the listeners. */
  seen: number;
}

export class NatsBus implements Bus {
  private readonly rooms = new Map<string, Room>();
  private readonly timer: NodeJS.Timeout;
  private catchingUp: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly nc: NatsConnection,
    private readonly names: ClusterNames,
    private readonly log: Logger,
    private readonly nodeId: string,
    /** How often listened rooms are checked against the store for missed batches. */
    catchUpMs = 2_000,
  ) {
    this.timer = setInterval(() => this.catchUp(), catchUpMs);
    this.timer.unref();
  }

  async append(roomId: string, batch: SequencedMessage[], expectedLastSeq: number): Promise<void> {
    await this.store.messages.insertSequenced(roomId, batch, expectedLastSeq);
    this.announce(roomId, batch);
  }

  announce(roomId: string, batch: Message[]): void {
    const r = this.rooms.get(roomId);
    if (r) this.hand(r, batch);
    try {
      this.nc.publish(this.names.room(roomId), toWire(batch));
    } catch (e) {
      // Closed or draining: the other nodes repair from the store when the next batch shows the gap.
      this.log.warn({ err: e, room: roomId }, 'could not fan a batch out to the cluster');
    }
  }

  sharePresence(roomId: string, users: UserRef[], ask: boolean): void {
    try {
      this.nc.publish(this.names.presence(roomId), packPlain([this.nodeId, users.map((u) => [u.id, u.username]), ask]));
    } catch (e) {
      this.log.warn({ err: e, room: roomId }, 'could not share presence with the cluster');
    }
  }

  listen(roomId: string, listener: BusListener, presence?: PresenceListener): () => void {
    let room = this.rooms.get(roomId);
    if (!room) {
      const listeners = new Set<BusListener>();
      const presenceListeners = new Set<PresenceListener>();
      const r: Partial<Room> = { listeners, presence: presenceListeners, seen: 0 };
      r.presenceSub = this.nc.subscribe(this.names.presence(roomId), {
        callback: (err, msg) => {
          if (err) return this.log.warn({ err, room: roomId }, 'presence subscription failed');
          try {
            const [node, users, ask] = unpackPlain(msg.data) as [string, [string, string][], boolean];
            const refs = users.map(([id, username]) => ({ id, username }));
            for (const l of presenceListeners) l(node, refs, ask);
          } catch (e) {
            this.log.error({ err: e, room: roomId }, 'undecodable presence from the cluster');
          }
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
          this.hand(r as Room, batch);
        },
      });
      r.sub = sub;
      room = r as Room;
      this.rooms.set(roomId, room);
    }
    const r = room;
    r.listeners.add(listener);
    if (presence) r.presence.add(presence);
    return () => {
      r.listeners.delete(listener);
      if (presence) r.presence.delete(presence);
      if (r.listeners.size === 0 && this.rooms.get(roomId) === r) {
        this.rooms.delete(roomId);
        r.sub.unsubscribe();
        r.presenceSub.unsubscribe();
      }
    };
  }

  /**
   * Anti-entropy: NATS core delivery is at most once, so a batch can be missed (an outage of this
   * node's or the publisher's NATS link, a node that died between its commit and its publish) and,
   * when no later batch of the room arrives, nothing would show the gap. Every few seconds, and at
   * once after a reconnect, the rooms this node listens to whose stored last seq is ahead of what
   * their listeners were given are handed their latest stored message: their actors see a gap and
   * repair it from the store.
   */
  catchUp(): Promise<void> {
    this.catchingUp ??= this.compareHeads()
      .catch((e) => this.log.warn({ err: e }, 'catch-up against the store failed'))
      .finally(() => {
        this.catchingUp = undefined;
      });
    return this.catchingUp;
  }

  private async compareHeads(): Promise<void> {
    if (this.rooms.size === 0) return;
    const heads = await this.store.rooms.lastSeqs([...this.rooms.keys()]);
    for (const [roomId, head] of heads) {
      const r = this.rooms.get(roomId);
      if (!r || head <= r.seen) continue;
      const last = await this.store.messages.range(roomId, head - 1, head);
      this.hand(r, last);
    }
  }

  private hand(r: Room, batch: Message[]): void {
    const top = batch.at(-1)?.seq ?? 0;
    if (top > r.seen) r.seen = top;
    for (const l of r.listeners) l(batch);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const r of this.rooms.values()) {
      r.sub.unsubscribe();
      r.presenceSub.unsubscribe();
    }
    this.rooms.clear();
  }
}
