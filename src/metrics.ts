// Prometheus metrics at /metrics (prom-client: the exposition format, histograms and the process
// metrics every Node service exports). Counters are incremented where things happen (the Bus for
// commits, the HTTP router for requests, the WebSocket server for connections and frames); gauges
// and since-start counts kept by their owners are read at scrape time.
// Invariants: names follow Prometheus conventions (`promtool check metrics` passes: counters end in
// `_total`, nothing else does); every label has a small fixed set of values (route patterns, never
// raw paths; status classes; frame types; close codes), so a client cannot grow the series count.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Figures } from './protocol/node-figures.js';
import type { WsObserver } from './transport/ws-connection.js';
import { VERSION } from './version.js';

/** What the gauges read at scrape time. */
export interface MetricSources {
  wsConnections(): number;
  robotLinks(): number;
  actors(): { actors: number; mailboxMax: number; mailboxTotal: number; handled: number; failed: number };
  /** Undefined on a single node. */
  cluster(): { natsUp: boolean; jetstreamUp: boolean; nodes: number } | undefined;
  /** Group commit calls to the store since start, and the room batches they carried. */
  commits(): { calls: number; rooms: number };
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
  readonly httpRequests = new Counter({
    name: 'sb_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status class',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpSeconds = new Histogram({
    name: 'sb_http_request_duration_seconds',
    help: 'Time from request to response, by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly wsOpened = new Counter({ name: 'sb_ws_connections_opened_total', help: 'WebSocket connections opened', registers: [this.registry] });
  readonly wsClosed = new Counter({
    name: 'sb_ws_connections_closed_total',
    help: 'WebSocket connections closed, by close code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly wsFramesIn = new Counter({
    name: 'sb_ws_frames_received_total',
    help: 'WebSocket frames received, by frame type ("invalid" for frames that failed to decode or validate)',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly wsFramesOut = new Counter({
    name: 'sb_ws_frames_sent_total',
    help: 'WebSocket frames sent, by frame type (a topic publish counts once per subscriber reached)',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  constructor(sources: MetricSources) {
    const r = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // prom-client exposes these sums as gauges named `_total`, which Prometheus reads as counters
    // (`promtool check metrics` fails on them); the same numbers by type remain in
    // nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
    new Gauge({ name: 'sb_build_info', help: 'Always 1; the labels say which build runs', labelNames: ['version', 'node'] as const, registers: r }).set(
      { version: VERSION, node: process.version },
      1,
    );
    new Gauge({ name: 'sb_ws_connections', help: 'Open WebSocket connections', registers: r, collect: gauge(sources.wsConnections) });
    new Gauge({ name: 'sb_robot_links', help: 'Connected robots', registers: r, collect: gauge(sources.robotLinks) });
    new Gauge({ name: 'sb_actors', help: 'Live actors (rooms and robots)', registers: r, collect: gauge(() => sources.actors().actors) });
    new Gauge({ name: 'sb_actor_mailbox_depth_max', help: 'Deepest actor mailbox', registers: r, collect: gauge(() => sources.actors().mailboxMax) });
    new Gauge({
      name: 'sb_actor_mailbox_messages',
      help: 'Messages queued in all actor mailboxes',
      registers: r,
      collect: gauge(() => sources.actors().mailboxTotal),
    });
    new Counter({ name: 'sb_actor_messages_handled_total', help: 'Actor messages handled', registers: r, collect: counter(() => sources.actors().handled) });
    new Counter({ name: 'sb_actor_failures_total', help: 'Actor message handlers that failed', registers: r, collect: counter(() => sources.actors().failed) });
    new Counter({
      name: 'sb_commit_calls_total',
      help: 'Calls that made group commits durable, each one round trip and one transaction for one or more rooms',
      registers: r,
      collect: counter(() => sources.commits().calls),
    });
    new Counter({
      name: 'sb_commit_call_rooms_total',
      help: 'Room batches carried by those calls (divided by sb_commit_calls_total: rooms per call)',
      registers: r,
      collect: counter(() => sources.commits().rooms),
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

  /** This node's figures (protocol/node-figures.ts), read from the registry as a scrape would. */
  async figures(): Promise<Figures> {
    const all = await this.registry.getMetricsAsJSON();
    const sum = (name: string, series = name) =>
      all.find((m) => m.name === name)?.values.reduce((n, v) => n + (((v as { metricName?: string }).metricName ?? name) === series ? v.value : 0), 0) ?? 0;
    return {
      at: Date.now(),
      connections: sum('sb_ws_connections'),
      robots: sum('sb_robot_links'),
      actors: sum('sb_actors'),
      mailboxMax: sum('sb_actor_mailbox_depth_max'),
      published: sum('sb_messages_published_total'),
      deliveries: sum('sb_deliveries_total'),
      framesIn: sum('sb_ws_frames_received_total'),
      framesOut: sum('sb_ws_frames_sent_total'),
      httpRequests: sum('sb_http_requests_total'),
      commits: sum('sb_commit_seconds', 'sb_commit_seconds_count'),
      commitSeconds: sum('sb_commit_seconds', 'sb_commit_seconds_sum'),
      rssBytes: sum('process_resident_memory_bytes'),
      cpuSeconds: sum('process_cpu_seconds_total'),
    };
  }

  /** One HTTP response: `route` is the matched pattern (or a fixed stand-in), never the raw path. */
  httpResponse(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: `${Math.floor(status / 100)}xx` });
    this.httpSeconds.observe({ method, route }, seconds);
  }

  /** What the WebSocket server reports, counted. */
  readonly ws: WsObserver = {
    opened: () => this.wsOpened.inc(),
    closed: (code) => this.wsClosed.inc({ code: String(code) }),
    received: (type) => this.wsFramesIn.inc({ type }),
    sent: (type, n = 1) => this.wsFramesOut.inc({ type }, n),
  };

  /** Wraps a room's group commit of `size` messages: times it, and counts what it committed or that it failed. */
  readonly observeCommit = async <T>(size: number, commit: () => Promise<T>): Promise<T> => {
    const end = this.commitSeconds.startTimer();
    try {
      const committed = await commit();
      this.published.inc(size);
      return committed;
    } catch (e) {
      this.commitFailures.inc();
      throw e;
    } finally {
      end();
    }
  };
}

/** A count its owner keeps since start, exposed as the counter it is. */
function counter(read: () => number) {
  return function (this: Counter) {
    this.reset();
    this.inc(read());
  };
}

function gauge(read: () => number) {
  return function (this: Gauge) {
    this.set(read());
  };
}
