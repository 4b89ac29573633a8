// What an application holds for one robot: a handle to watch it, command it and stop it, and its
// control lease. Both are thin: the client's entry for the robot (robots.ts) does the work.

import type { LeaseInfo } from '../protocol/frames.js';
import { Emitter } from './emitter.js';
import type {
  CommandOptions,
  CommandOutcome,
  LeaseAcquireOptions,
  RobotEvents,
  RobotState,
  RobotWatchOptions,
  RobotWatchStatus,
  TelemetrySample,
} from './robot-types.js';
import type { RobotEntry } from './robots.js';

/**
 * One robot, as seen through this client: its watch, state and events, commands, the e-stop and
 * the control lease. Get it with `client.robot(id)` (or `await client.watchRobot(id)`).
 *
 * @example
 * const robot = await client.watchRobot(robotId);
 * robot.on('telemetry', (s) => console.log(s.channel, s.data));
 * await robot.lease.acquire({ ttlMs: 30_000, autoRenew: true });
 * const out = await robot.command('move', { x: 1 }, { timeoutMs: 5_000, onStage: (s) => console.log(s.stage) });
 * if (out.stage === 'lost' && !out.fromHub) console.warn('outcome unknown', out.cmd);
 */
export class RobotHandle extends Emitter<RobotEvents> {
  /** The control lease: its holder, and acquire / renew / release. */
  readonly lease: RobotLease;

  constructor(
    readonly id: string,
    private readonly entry: RobotEntry,
  ) {
    super();
    this.lease = new RobotLease(entry);
  }

  /** Where the watch stands. */
  get status(): RobotWatchStatus {
    return this.entry.status;
  }

  /** What is known of the robot: undefined until the first `watching`; after unwatch() or an end, the last known state. */
  get state(): Readonly<RobotState> | undefined {
    return this.entry.state;
  }

  /** The newest sample of a channel (by id or name), if the state has one. */
  sample(channel: number | string): TelemetrySample | undefined {
    const s = this.entry.state;
    if (!s) return undefined;
    const ch = typeof channel === 'number' ? channel : s.channels.find((c) => c.name === channel)?.id;
    return ch === undefined ? undefined : s.latest.get(ch);
  }

  /**
   * Watches the robot; resolves with its state once the hub answers (live frames follow). After a
   * reconnect the client watches it again by itself and refreshes the state (`watching` event).
   * Rejects with the hub's code: `NOT_FOUND` (no such robot, or none you hold a role on), … Called
   * while disconnected, it waits for the connection (up to the request timeout).
   * `channels` chooses which channels' samples arrive (default: all); calling watch() again with
   * another choice replaces it (the hub answers with a fresh state).
   */
  watch(opts: RobotWatchOptions = {}): Promise<Readonly<RobotState>> {
    return this.entry.watch(opts);
  }

  /** The channel names the watch asks for; undefined: every channel. */
  get channels(): readonly string[] | undefined {
    return this.entry.selection;
  }

  /** Stops watching (the state stays as last known). Commands and the lease are unaffected. */
  unwatch(): Promise<void> {
    return this.entry.unwatch();
  }

  /**
   * Sends a command (operator role and the control lease needed; watching is not). Resolves with the
   * outcome: completed, rejected, failed, timeout, or lost; `onStage` and the `command` event report
   * every stage, `queued` (with the command id) first.
   *
   * Never sent twice: when the connection drops before the outcome (or the hub does not answer in
   * time), it resolves with stage `lost`, `fromHub: false` and `detail: { code, message }`: the
   * command may have run; look its `cmd` up in the audit log before deciding to send it again.
   *
   * Rejects (the command was not run) when the hub refuses it, with its code and the request id:
   * `LEASE_REQUIRED`, `ROBOT_OFFLINE`, `FORBIDDEN` (a viewer), `NOT_FOUND`, `RATE_LIMITED`,
   * `VALIDATION`, `OVERLOADED`; or when it was not sent: `DISCONNECTED` (not connected: commands do
   * not wait for a connection), `PAYLOAD_TOO_LARGE`, `CLOSED`.
   */
  command(name: string, args?: unknown, opts: CommandOptions = {}): Promise<CommandOutcome> {
    return this.entry.send(name, args, opts);
  }

  /**
   * Emergency stop (operator role; no lease needed; never rate-limited). It ends the control lease,
   * whoever holds it. Resolves with the outcome like command(); rejects with `ROBOT_OFFLINE` when the
   * robot is not connected (the lease is ended anyway), or `DISCONNECTED` when this client is not.
   * The client never resends it; unlike a command, an e-stop is safe to send again, so retry it
   * yourself if the outcome is `lost` or it was not sent.
   */
  estop(opts: Pick<CommandOptions, 'onStage'> = {}): Promise<CommandOutcome> {
    return this.entry.send(undefined, undefined, opts);
  }
}

/** The control lease of one robot: who holds it, and acquire / renew / release. */
export class RobotLease {
  constructor(private readonly entry: RobotEntry) {}

  /** The lease as last known (from the watch's state and events, or from this client's own lease calls). */
  get current(): LeaseInfo | null {
    return this.entry.lease;
  }

  /** Whether this client's user holds the lease, as last known (the hub's expiry clock is not checked). */
  get held(): boolean {
    return this.entry.leaseHeld();
  }

  /** Whether automatic renewal is running. */
  get autoRenewing(): boolean {
    return this.entry.autoRenewing;
  }

  /**
   * Acquires (or, when you already hold it, renews) the lease; resolves with it. Rejects with
   * `LEASE_HELD` (someone else holds it; the owner or an admin may pass `force`), `FORBIDDEN` (a
   * viewer, or `force` without the right), `NOT_FOUND`. Safe to repeat: sent again after a reconnect.
   */
  acquire(opts: LeaseAcquireOptions = {}): Promise<LeaseInfo> {
    return this.entry.acquire(opts);
  }

  /** Extends the lease you hold; rejects with `LEASE_REQUIRED` when you no longer do. */
  renew(opts: { ttlMs?: number } = {}): Promise<LeaseInfo> {
    return this.entry.leaseOp('renew', opts.ttlMs, undefined).then((l) => this.entry.expectLease(l));
  }

  /** Releases the lease if you hold it (a no-op otherwise) and stops automatic renewal. */
  async release(): Promise<void> {
    this.entry.stopAutoRenew();
    await this.entry.leaseOp('release', undefined, undefined);
  }
}
