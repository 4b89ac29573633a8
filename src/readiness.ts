// Whether a node should take traffic (/readyz): not shutting down, NATS connected in a cluster, and
// the store answering with the schema this build expects. A JetStream election is reported, not a
// reason: JetStream only carries membership and robot homes (PostgreSQL acks messages), so taking
// every node out of rotation for it would turn a hiccup into an outage.

import type { Membership } from './cluster/membership.js';
import type { NatsLink } from './cluster/nats.js';
import type { Logger } from './log.js';
import type { Store } from './store/store.js';

export interface Readiness {
  ok: boolean;
  detail: Record<string, unknown>;
}

export function readiness(deps: {
  store: Store;
  nats: NatsLink | undefined;
  membership: () => Membership | undefined;
  clusterName: string;
  closing: () => boolean;
  log: Logger;
}): () => Promise<Readiness> {
  return async () => {
    if (deps.closing()) return { ok: false, detail: { reason: 'shutting down' } };
    if (deps.nats && !deps.nats.up) return { ok: false, detail: { reason: 'NATS unreachable' } };
    try {
      const r = await deps.store.ready();
      const m = deps.membership();
      const cluster = m && {
        name: deps.clusterName,
        nodes: m.nodes().map((n) => n.id),
        jetstream: m.jetstreamUp ? 'ok' : 'failing',
        ...(m.jetstreamFailure ? { jetstreamFailure: m.jetstreamFailure } : {}),
      };
      return { ok: r.ok, detail: { schema: r.schema, expectedSchema: r.expected, ...(cluster ? { cluster } : {}) } };
    } catch (e) {
      deps.log.warn({ err: e }, 'readiness check: store unreachable');
      return { ok: false, detail: { reason: 'store unreachable' } };
    }
  };
}
