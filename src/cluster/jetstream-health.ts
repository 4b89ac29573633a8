// The one JetStream health state of a node: whether its last membership heartbeat (a write and a
// read of the bucket) succeeded, and is recent. /readyz, `sb_jetstream_up` and the log all read
// it, so they never disagree; the log tells each change of state once, not every heartbeat.

import type { Logger } from '../log.js';

export class JetStreamHealth {
  /** When the last heartbeat succeeded (start counts as one: a node joins only after a heartbeat). */
  private lastOk: number;
  /** Why the last heartbeat failed; undefined while they succeed. */
  private reason: string | undefined;
  private inFlight = false;

  constructor(
    /** The heartbeat interval, ms: a heartbeat older than two of them (+1 s) is overdue. */
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.lastOk = now();
  }

  get up(): boolean {
    return this.reason === undefined && this.now() - this.lastOk < 2 * this.intervalMs + 1_000;
  }

  /** Why JetStream is failing for this node, while it is. */
  get failure(): string | undefined {
    return this.reason ?? (this.up ? undefined : 'node heartbeat overdue');
  }

  /** Runs one heartbeat, unless the previous one is still waiting on JetStream (overdue: a failure too). */
  run(beat: () => Promise<void>): Promise<void> {
    if (this.inFlight) {
      if (!this.up) this.failed('node heartbeat overdue');
      return Promise.resolve();
    }
    this.inFlight = true;
    return beat()
      .then(
        () => this.succeeded(),
        (e: Error) => this.failed(e.message, e),
      )
      .finally(() => {
        this.inFlight = false;
      });
  }

  private succeeded(): void {
    this.lastOk = this.now();
    if (this.reason === undefined) return;
    this.log.info({ failure: this.reason }, 'JetStream recovered: node heartbeats succeed again');
    this.reason = undefined;
  }

  private failed(reason: string, err?: Error): void {
    if (this.reason === undefined) this.log.warn({ err, reason }, 'JetStream failing: node heartbeat failed');
    this.reason = reason;
  }
}
