// People news, to every node: sessions that ended (a logout, a revoked device, a password change)
// and accounts that went, whose WebSockets every node closes; people the server API disconnects; frames for a person's sockets
// wherever they are (contact changes); and direct rooms whose members blocked each other, whose
// room actor refuses posts. Between nodes this rides core NATS, at most once: a node that misses an
// ended session still refuses its tokens at their next check (every REST request; a WebSocket's
// `auth` when its token expires), and a room actor reads the block state again when it restarts.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { SessionsEnded } from '../store/sessions.js';
import { publishPlain, subscribePlain } from './nats.js';

export type PeopleNewsItem =
  | ({ kind: 'ended' } & SessionsEnded)
  | { kind: 'enabled'; userId: string }
  | { kind: 'disconnect'; userId: string }
  | { kind: 'frame'; userId: string; frame: ServerFrame }
  | { kind: 'direct'; roomId: string; blocked: boolean };

const KINDS = new Set(['ended', 'enabled', 'disconnect', 'frame', 'direct']);

export class PeopleNews {
  private readonly sub: Subscription | undefined;

  constructor(
    private readonly local: (item: PeopleNewsItem) => void,
    private readonly log: Logger,
    private readonly cluster?: { nc: NatsConnection; subject: string },
  ) {
    this.sub =
      cluster &&
      subscribePlain<PeopleNewsItem>(cluster.nc, cluster.subject, log, 'people news', {}, (item) => {
        if (item && KINDS.has(item.kind)) local(item);
      });
  }

  /** Acts on this node at once and tells the others. */
  announce(item: PeopleNewsItem): void {
    if (item.kind === 'ended' && item.sessions !== 'all' && item.sessions.length === 0) return;
    this.local(item);
    if (this.cluster) publishPlain(this.cluster.nc, this.cluster.subject, item, this.log, 'people news', {});
  }

  close(): void {
    this.sub?.unsubscribe();
  }
}
