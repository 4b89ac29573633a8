// Presence across a cluster, on core NATS: each room's news goes on its presence subject to the
// nodes listening to it. At most once, like the shares it carries (the connection is noEcho, so a
// node never hears itself).

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { packPlain, unpackPlain } from '../protocol/codec.js';
import type { UserRef } from '../protocol/frames.js';
import type { ClusterNames } from './nats.js';
import type { Presence, PresenceListener, PresenceNews } from './presence.js';

type Ref = [id: string, username: string];
type Wire = [node: string, 'p', Ref[], boolean] | [node: string, 't', Ref];

const ref = ([id, username]: Ref): UserRef => ({ id, username });

export class NatsPresence implements Presence {
  private readonly rooms = new Map<string, { listeners: Set<PresenceListener>; sub: Subscription }>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: ClusterNames,
    private readonly log: Logger,
    private readonly nodeId: string,
  ) {}

  share(roomId: string, users: UserRef[], ask: boolean): void {
    this.send(roomId, [this.nodeId, 'p', users.map((u): Ref => [u.id, u.username]), ask]);
  }

  typing(roomId: string, user: UserRef): void {
    this.send(roomId, [this.nodeId, 't', [user.id, user.username]]);
  }

  private send(roomId: string, wire: Wire): void {
    try {
      this.nc.publish(this.names.presence(roomId), packPlain(wire));
    } catch (e) {
      // Closed or draining: the next periodic share heals a lost one, and typing is best effort.
      this.log.warn({ err: e, room: roomId }, 'could not share presence with the cluster');
    }
  }

  listen(roomId: string, listener: PresenceListener): () => void {
    let room = this.rooms.get(roomId);
    if (!room) {
      const listeners = new Set<PresenceListener>();
      const sub = this.nc.subscribe(this.names.presence(roomId), {
        callback: (err, msg) => {
          if (err) return this.log.warn({ err, room: roomId }, 'presence subscription failed');
          let node: string;
          let news: PresenceNews;
          try {
            const w = unpackPlain(msg.data) as Wire;
            node = w[0];
            news = w[1] === 'p' ? { kind: 'present', users: w[2].map(ref), ask: w[3] === true } : { kind: 'typing', user: ref(w[2]) };
          } catch (e) {
            return this.log.error({ err: e, room: roomId }, 'undecodable presence from the cluster');
          }
          for (const l of listeners) l(node, news);
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

  nodeLeft(node: string): void {
    for (const r of this.rooms.values()) for (const l of r.listeners) l(node, { kind: 'present', users: [], ask: false });
  }

  async close(): Promise<void> {
    for (const r of this.rooms.values()) r.sub.unsubscribe();
    this.rooms.clear();
  }
}
