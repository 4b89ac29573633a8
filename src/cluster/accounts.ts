// Account news: sessions that ended (a logout, a revoked device, a password change) and accounts
// that went. Every node closes the WebSockets it holds for them. Between nodes this rides core NATS,
// at most once: a node that misses a notice still refuses the session's access tokens at their next
// check (every REST request; a WebSocket's `auth` when its token expires).

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import type { SessionsEnded } from '../store/sessions.js';
import { publishPlain, subscribePlain } from './nats.js';

export class AccountNews {
  private readonly sub: Subscription | undefined;

  constructor(
    private readonly local: (e: SessionsEnded) => void,
    private readonly log: Logger,
    private readonly cluster?: { nc: NatsConnection; subject: string },
  ) {
    this.sub =
      cluster &&
      subscribePlain<SessionsEnded>(cluster.nc, cluster.subject, log, 'account news', {}, (e) => {
        if (typeof e?.userId === 'string' && (e.sessions === 'all' || Array.isArray(e.sessions))) local(e);
      });
  }

  /** Acts on this node at once and tells the others. */
  sessionsEnded(e: SessionsEnded): void {
    if (e.sessions !== 'all' && e.sessions.length === 0) return;
    this.local(e);
    if (this.cluster) publishPlain(this.cluster.nc, this.cluster.subject, e, this.log, 'account news', { user: e.userId });
  }

  close(): void {
    this.sub?.unsubscribe();
  }
}
