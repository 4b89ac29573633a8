// Presence across a cluster, on core NATS: each room's news goes on its presence subject to the
// nodes listening to it. At most once, like the shares it carries (the connection is noEcho, so a
// node never hears itself).

import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import type { UserRef } from '../protocol/frames.js';
import { type ClusterNames, publishPlain, subscribePlain } from './nats.js';
import type { PresenceNews } from './presence.js';
import { MemoryPresence } from './presence-memory.js';

type Ref = [id: string, username: string];
type Wire = [node: string, 'p', Ref[], boolean] | [node: string, 't', Ref];

const ref = ([id, username]: Ref): UserRef => ({ id, username });

export class NatsPresence extends MemoryPresence {
  constructor(
    private readonly nc: NatsConnection,
    private readonly names: ClusterNames,
    private readonly log: Logger,
    private readonly nodeId: string,
  ) {
    super((roomId, listeners) => {
      const sub = subscribePlain<Wire>(nc, names.presence(roomId), log, 'presence', { room: roomId }, (w) => {
        const news: PresenceNews = w[1] === 'p' ? { kind: 'present', users: w[2].map(ref), ask: w[3] === true } : { kind: 'typing', user: ref(w[2]) };
        for (const l of listeners) l(w[0], news);
      });
      return () => sub.unsubscribe();
    });
  }

  override share(roomId: string, users: UserRef[], ask: boolean): void {
    this.send(roomId, [this.nodeId, 'p', users.map((u): Ref => [u.id, u.username]), ask]);
  }

  override typing(roomId: string, user: UserRef): void {
    this.send(roomId, [this.nodeId, 't', [user.id, user.username]]);
  }

  /** A lost share is healed by the next periodic one, and typing is best effort. */
  private send(roomId: string, wire: Wire): void {
    publishPlain(this.nc, this.names.presence(roomId), wire, this.log, 'presence', { room: roomId });
  }
}
