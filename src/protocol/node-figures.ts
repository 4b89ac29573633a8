// One node's figures, as GET /api/v1/admin/nodes gives them (each node answers for itself over
// NATS) and the console's operators view charts them: gauges as they are now, counters since the
// node started (two answers some seconds apart give the rates), `at` the node's clock.

/** What the metrics registry gives. */
export interface Figures {
  at: number;
  connections: number;
  robots: number;
  actors: number;
  mailboxMax: number;
  published: number;
  deliveries: number;
  framesIn: number;
  framesOut: number;
  httpRequests: number;
  /** Group commits, and the seconds they took in all (their mean over an interval is Δseconds / Δcommits). */
  commits: number;
  commitSeconds: number;
  rssBytes: number;
  cpuSeconds: number;
}

/** A node's whole answer: its figures, who it is and whether it is ready. */
export interface NodeFigures extends Figures {
  node: string;
  url: string;
  startedAt: number;
  version: string;
  ready: boolean;
}

/** Whether a reply off the wire is a node's answer (its shape, as far as the view relies on it). */
export const isNodeFigures = (a: unknown): a is NodeFigures =>
  a !== null && typeof a === 'object' && typeof (a as { node?: unknown }).node === 'string' && typeof (a as { at?: unknown }).at === 'number';
