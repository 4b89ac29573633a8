// The cluster Bus. PostgreSQL stays the point of durability and order: a batch is durable, and its
// seqs final, once its insert commits under the room row's lock, whichever node's room actor
// sequenced it (a batch numbered before another node's commit is renumbered after it). NATS carries the committed
// batch to every other node with local subscribers, at most once; a node that misses one repairs
// the gap from PostgreSQL when the next batch or an announcement shows it (the room actor's
// delivery path), and a periodic comparison with the stored heads (catchUp) reveals a batch missed
// when no later one arrives.
// docs/architecture.md argues this design against a JetStream-first one.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { packPlain, unpackPlain } from '../protocol/codec.js';
import type { Message, SequencedMessage } from '../store/messages.js';
import type { Store } from '../store/store.js';
import type { Bus, BusListener, RoomSignal, SignalListener } from './bus.js';
import type { ClusterNames } from './nats.js';

type Wire = [id: string, seq: number, senderId: string | null, cid: string, body: string, createdAt: number][];

const toWire = (batch: Message[]): Uint8Array => packPlain(batch.map((m) => [m.id, m.seq, m.senderId, m.cid, m.body, m.createdAt.getTime()]) satisfies Wire);

function fromWire(roomId: string, data: Uint8Array): Message[] {
  const rows = unpackPlain(data) as Wire;
  return rows.map(([id, seq, senderId, cid, body, at]) => ({ id, roomId, seq, senderId, cid, body, createdAt: new Date(at) }));
}

interface Room {
  listeners: Set<BusListener>;
  signals: Set<SignalListener>;
  sub: Subscription;
  signalSub: Subscription;
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

  async append(roomId: string, batch: SequencedMessage[]): Promise<SequencedMessage[]> {
    const committed = await this.store.messages.insertSequenced(roomId, batch);
    this.announce(roomId, committed);
    return committed;
  }

  announce(roomId: string, batch: Message[]): void {
    const r = this.rooms.get(roomId);
    if (r) this.hand(r, batch);
    try {
      // A group commit can exceed NATS's max_payload (1 MiB by default): then only its last message
      // goes out, and the other nodes read the rest from the store as a gap.
      let wire = toWire(batch);
      if (wire.length > (this.nc.info?.max_payload ?? 1_048_576) && batch.length > 1) wire = toWire(batch.slice(-1));
      this.nc.publish(this.names.room(roomId), wire);
    } catch (e) {
      // Closed or draining: the other nodes repair from the store when the next batch shows the gap.
      this.log.warn({ err: e, room: roomId }, 'could not fan a batch out to the cluster');
    }
  }

  signal(roomId: string, signal: RoomSignal): void {
    const wire =
      signal.kind === 'presence'
        ? [this.nodeId, 'p', signal.users.map((u) => [u.id, u.username]), signal.ask]
        : signal.kind === 'deleted'
          ? [this.nodeId, 'd']
          : [this.nodeId, signal.kind === 'typing' ? 't' : signal.op === 'joined' ? 'j' : 'l', [signal.user.id, signal.user.username]];
    try {
      this.nc.publish(this.names.signals(roomId), packPlain(wire));
    } catch (e) {
      this.log.warn({ err: e, room: roomId }, 'could not signal the cluster');
    }
  }

  listen(roomId: string, listener: BusListener, signals?: SignalListener): () => void {
    let room = this.rooms.get(roomId);
    if (!room) {
      const listeners = new Set<BusListener>();
      const signalListeners = new Set<SignalListener>();
      const r: Partial<Room> = { listeners, signals: signalListeners, seen: 0 };
      r.signalSub = this.nc.subscribe(this.names.signals(roomId), {
        callback: (err, msg) => {
          if (err) return this.log.warn({ err, room: roomId }, 'signal subscription failed');
          let node: string;
          let signal: RoomSignal;
          try {
            const w = unpackPlain(msg.data) as [string, 'p' | 't' | 'j' | 'l' | 'd', unknown, boolean?];
            node = w[0];
            const ref = ([id, username]: [string, string]) => ({ id, username });
            if (w[1] === 'p') signal = { kind: 'presence', users: (w[2] as [string, string][]).map(ref), ask: w[3] === true };
            else if (w[1] === 'd') signal = { kind: 'deleted' };
            else if (w[1] === 't') signal = { kind: 'typing', user: ref(w[2] as [string, string]) };
            else signal = { kind: 'member', op: w[1] === 'j' ? 'joined' : 'left', user: ref(w[2] as [string, string]) };
          } catch (e) {
            return this.log.error({ err: e, room: roomId }, 'undecodable signal from the cluster');
          }
          for (const l of signalListeners) l(node, signal);
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
    if (signals) r.signals.add(signals);
    return () => {
      r.listeners.delete(listener);
      if (signals) r.signals.delete(signals);
      if (r.listeners.size === 0 && this.rooms.get(roomId) === r) {
        this.rooms.delete(roomId);
        r.sub.unsubscribe();
        r.signalSub.unsubscribe();
      }
    };
  }

  /** A node left the cluster: every room's listeners hear that nobody is present there any more. */
  nodeLeft(node: string): void {
    for (const r of this.rooms.values()) for (const l of r.signals) l(node, { kind: 'presence', users: [], ask: false });
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
      r.signalSub.unsubscribe();
    }
    this.rooms.clear();
  }
}
