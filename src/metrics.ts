// Prometheus metrics at /metrics (prom-client: the exposition format, histograms and the process
// metrics every Node service exports). Counters are incremented where things happen (the Bus for
// commits, the WebSocket server for deliveries); gauges are read from their owners at scrape time.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Bus } from './cluster/bus.js';

/** What the gauges read at scrape time. */
export interface MetricSources {
  wsConnections(): number;
  robotLinks(): number;
  actors(): { actors: number; mailboxMax: number; mailboxTotal: number; handled: number; failed: number };
  /** Undefined on a single node. */
  cluster(): { natsUp: boolean; jetstreamUp: boolean; nodes: number } | undefined;
  /** Whether the store answers (a cheap query with a short timeout). */
  storeUp(): Promise<boolean>;
}

export class HubMetrics {
  readonly registry = new Registry();
  readonly published = new Counter({
    name: 'sb_messages_published_total',
    help: 'Chat messages made durable (acked) by this node',
    registers: [this.registry],
  });
  readonly commitSeconds = new Histogram({
    name: 'sb_commit_seconds',
    help: 'Time to make one group commit durable (the Bus append)',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly commitFailures = new Counter({
    name: 'sb_commit_failures_total',
    help: 'Group commits that failed (publishers were nacked or the batch retried)',
    registers: [this.registry],
  });
  readonly deliveries = new Counter({ name: 'sb_deliveries_total', help: 'Frames handed to WebSocket subscribers through topics', registers: [this.registry] });

  constructor(sources: MetricSources) {
    const r = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'sb_ws_connections', help: 'Open WebSocket connections', registers: r, collect: gauge(sources.wsConnections) });
    new Gauge({ name: 'sb_robot_links', help: 'Connected robots', registers: r, collect: gauge(sources.robotLinks) });
    new Gauge({ name: 'sb_actors', help: 'Live actors (rooms and robots)', registers: r, collect: gauge(() => sources.actors().actors) });
    new Gauge({ name: 'sb_actor_mailbox_depth_max', help: 'Deepest actor mailbox', registers: r, collect: gauge(() => sources.actors().mailboxMax) });
    new Gauge({
      name: 'sb_actor_mailbox_depth_total',
      help: 'Messages queued in all actor mailboxes',
      registers: r,
      collect: gauge(() => sources.actors().mailboxTotal),
    });
    new Gauge({ name: 'sb_actor_messages_handled', help: 'Actor messages handled since start', registers: r, collect: gauge(() => sources.actors().handled) });
    new Gauge({
      name: 'sb_actor_failures',
      help: 'Actor message handlers that failed since start',
      registers: r,
      collect: gauge(() => sources.actors().failed),
    });
    new Gauge({
      name: 'sb_store_up',
      help: '1 when the database answers',
      registers: r,
      async collect() {
        this.set((await sources.storeUp()) ? 1 : 0);
      },
    });
    if (sources.cluster()) {
      new Gauge({ name: 'sb_nats_up', help: '1 while connected to NATS', registers: r, collect: gauge(() => (sources.cluster()?.natsUp ? 1 : 0)) });
      new Gauge({
        name: 'sb_jetstream_up',
        help: "1 while this node's membership heartbeats reach JetStream",
        registers: r,
        collect: gauge(() => (sources.cluster()?.jetstreamUp ? 1 : 0)),
      });
      new Gauge({ name: 'sb_cluster_nodes', help: 'Live nodes in the membership bucket', registers: r, collect: gauge(() => sources.cluster()?.nodes ?? 0) });
    }
  }

  /** The Bus, counting what it commits and timing each commit. */
  instrument(bus: Bus): Bus {
    return {
      append: async (roomId, batch) => {
        const end = this.commitSeconds.startTimer();
        try {
          const committed = await bus.append(roomId, batch);
          this.published.inc(batch.length);
          return committed;
        } catch (e) {
          this.commitFailures.inc();
          throw e;
        } finally {
          end();
        }
      },
      announce: (roomId, batch) => bus.announce(roomId, batch),
      listen: (roomId, listener, signals) => bus.listen(roomId, listener, signals),
      signal: (roomId, s) => bus.signal(roomId, s),
      close: () => bus.close(),
    };
  }
}

function gauge(read: () => number) {
  return function (this: Gauge) {
    this.set(read());
  };
}
