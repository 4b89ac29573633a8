// Robots over the client's one connection: watching a robot (its state, telemetry, online/offline,
// lease changes), commands and their stages, the emergency stop and the control lease.
// Invariants: a watched robot is watched again after every reconnect, and its state is replaced by
// the hub's `watching` answer; every command() and estop() settles exactly once; the client never
// sends a command twice (commands are not idempotent): one whose outcome this connection can no
// longer learn (the connection dropped, no answer in time) resolves with stage `lost`.

import type {
  ChannelInfo,
  CommandStageName,
  CommandStatusFrame,
  LeaseEventFrame,
  LeaseFrame,
  LeaseInfo,
  RobotEventFrame,
  RobotRoleName,
  TelemetryFrame,
  WatchingFrame,
} from '../protocol/frames.js';
import { Emitter } from './emitter.js';
import { asSwitchboardError, SwitchboardError } from './errors.js';
import { type ReplyFrame, type RequestBody, type Requests, serverError } from './requests.js';

/**
 * Where a handle's watch stands:
 * - `idle`: not watched (never, or after unwatch());
 * - `pending`: watch() called, the hub has not answered yet (or the client is not connected);
 * - `watching`: live: state, telemetry and events arrive;
 * - `resuming`: the connection dropped; the robot is watched again on the next one;
 * - `ended`: the hub ended the watch (robot deleted, access revoked), a re-watch was refused, or
 *   the client closed. watch() may be called again (except on a closed client).
 */
export type RobotWatchStatus = 'idle' | 'pending' | 'watching' | 'resuming' | 'ended';

/** One telemetry sample. */
export interface TelemetrySample {
  robot: string;
  /** The channel id. */
  ch: number;
  /** The channel's name, when the channel is known. */
  channel: string | undefined;
  /** The robot's own timestamp for the sample, ms. */
  ts: number;
  data: unknown;
}

/** What is known of a watched robot: the hub's `watching` answer, kept current by live frames. */
export interface RobotState {
  id: string;
  name: string;
  /** Your role on the robot; null for an admin without one. */
  role: RobotRoleName | null;
  online: boolean;
  /** When the robot last had a live link, ms since the epoch (hub clock), or null if never. */
  lastSeen: number | null;
  /** The channels the robot advertised when it connected. */
  channels: ChannelInfo[];
  /** The newest sample of every channel that has one, by channel id. */
  latest: ReadonlyMap<number, TelemetrySample>;
  /** Who holds the control lease, or null. */
  lease: LeaseInfo | null;
}

/** Why the lease changed: the hub's reason, or `resync` when a re-watch after a reconnect found it changed. */
export type LeaseChangeReason = LeaseEventFrame['reason'] | 'resync';

/** Why a watch ended; see RobotWatchStatus `ended`. */
export type RobotEndReason = 'deleted' | 'access_revoked' | 'refused' | 'closed';

/** Stages before the outcome: `queued` (the hub has the command; its id is known), `delivered` (sent to the robot), `accepted` (the robot said so). */
export type CommandProgressStage = 'queued' | 'delivered' | 'accepted';

/**
 * A command's outcome: `completed` (detail: the robot's result), `rejected` / `failed` (detail: the
 * robot's reason), `timeout` (no outcome by the deadline), `lost` (unknown: the robot link dropped,
 * or this client's connection did; it may have run).
 */
export type CommandOutcomeStage = 'completed' | 'rejected' | 'failed' | 'timeout' | 'lost';

/** One stage of a command, as command()'s onStage and the handle's `command` event report it. */
export interface CommandStage {
  robot: string;
  /** The command's name (`estop` for the emergency stop). */
  name: string;
  /** The command id (UUID) the hub gave it; undefined until `queued`, and in a `lost` outcome when the hub never answered. */
  cmd: string | undefined;
  stage: CommandProgressStage | CommandOutcomeStage;
  /** When the stage happened, ms since the epoch: the hub's clock, or this client's for `queued` and for a `lost` it concluded itself. */
  ts: number;
  /** completed: the robot's result; rejected / failed: its reason; lost: why the outcome is unknown (`{ code, message }` when the client concluded it). */
  detail?: unknown;
}

/** What command() and estop() resolve with. */
export interface CommandOutcome extends CommandStage {
  stage: CommandOutcomeStage;
  /** stage === 'completed'. */
  ok: boolean;
  /**
   * True when the hub reported the outcome. False for a `lost` this client concluded (the connection
   * dropped, or no answer in time): the command may still have run; its outcome is in the robot's
   * audit log (GET /api/v1/robots/{id}/audit) under `cmd`, when that is known.
   */
  fromHub: boolean;
}

export interface CommandOptions {
  /** The deadline, ms from now: 100 to 600 000 (the hub's default 10 000). */
  timeoutMs?: number;
  /** Called for each stage, `queued` first, the outcome last. */
  onStage?: (s: CommandStage) => void;
}

export interface LeaseAcquireOptions {
  /** Lease lifetime, ms: 1 000 to 300 000 (the hub's default 30 000). */
  ttlMs?: number;
  /** Owner or admin: take the lease from its current holder. */
  force?: boolean;
  /**
   * Renew the lease every ttlMs/3 until release(), or until it is lost (taken over, e-stop, expired,
   * access revoked): seen in a `lease` event while watching, else as a refused renewal, reported as
   * an `error` event on the handle. A lost lease is never re-acquired by itself.
   */
  autoRenew?: boolean;
}

export interface RobotEvents {
  /** The hub answered a watch (the first, and each re-watch after a reconnect): the state now. */
  watching: (s: RobotState) => void;
  /** A live sample (samples sent while the connection was down are not replayed: the re-watch's state has the newest of each channel). */
  telemetry: (s: TelemetrySample) => void;
  online: (channels: ChannelInfo[]) => void;
  offline: (lastSeen: number | null) => void;
  lease: (lease: LeaseInfo | null, reason: LeaseChangeReason) => void;
  /** Every stage of every command and e-stop sent through this handle. */
  command: (s: CommandStage) => void;
  /** The watch ended (see RobotWatchStatus); `error` says why for `refused` and `closed`. */
  ended: (reason: RobotEndReason, error?: SwitchboardError) => void;
  /** Failures not tied to a call: an automatic lease renewal refused. */
  error: (e: SwitchboardError) => void;
}

export interface RobotsHost {
  isOpen(): boolean;
  readonly timeoutMs: number;
  readonly requests: Requests;
  /** The user the connection authenticated as. */
  userId(): string | undefined;
  /** The client's end, once it has ended. */
  ended(): SwitchboardError | undefined;
  /** A failure for the client's `error` event. */
  report(err: SwitchboardError): void;
  /** The delay before retry number `attempt` (1 for the first) of a transiently refused watch, ms. */
  retryDelay(attempt: number): number;
}

/** Watch refusals worth asking again after a delay. */
const TRANSIENT_WATCH = new Set(['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED']);
/** Renewal failures after which automatic renewal tries again soon. */
const TRANSIENT_RENEW = new Set(['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED', 'RATE_LIMITED', 'DISCONNECTED']);
/** The hub's defaults, for the client's own deadlines. */
const HUB_COMMAND_TIMEOUT_MS = 10_000;
const HUB_ESTOP_TIMEOUT_MS = 10_000;
const HUB_LEASE_TTL_MS = 30_000;

const noop = () => {};

interface Waiter {
  resolve(s: RobotState): void;
  reject(e: SwitchboardError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** @internal A command awaiting its outcome. */
export interface Pending {
  readonly entry: RobotEntry;
  readonly name: string;
  cmd: string | undefined;
  reqId: number | undefined;
  /** The deadline for `queued`, then for the outcome. */
  timer: ReturnType<typeof setTimeout> | undefined;
  settled: boolean;
  onStage: ((s: CommandStage) => void) | undefined;
  resolve(o: CommandOutcome): void;
  reject(e: SwitchboardError): void;
}

type Emit = <K extends keyof RobotEvents>(event: K, ...args: Parameters<RobotEvents[K]>) => void;

/** Calls `fn` without letting it break the client: its exception surfaces on a fresh microtask. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}

/** The client's robots: one entry (and handle) per robot id, and the commands awaiting an outcome. */
export class Robots {
  private readonly entries = new Map<string, RobotEntry>();
  /** Commands the hub queued, by command id, until their outcome. */
  private readonly queued = new Map<string, Pending>();

  constructor(private readonly host: RobotsHost) {}

  /** The handle for `id` (the same one every time). */
  handle(id: string): RobotHandle {
    let e = this.entries.get(id);
    if (!e) {
      e = new RobotEntry(id, this.host, this.queued);
      this.entries.set(id, e);
    }
    return e.handle;
  }

  /** A new connection is up: watch again every robot that was watched. */
  resume(): void {
    for (const e of this.entries.values()) e.resume();
  }

  /** The connection dropped: nothing is live, and no queued command's outcome can arrive any more. */
  lost(): void {
    for (const e of this.entries.values()) e.lost();
    for (const p of [...this.queued.values()]) {
      p.entry.conclude(p, 'DISCONNECTED', 'the connection dropped before the outcome arrived; the command may still run (see the audit log)');
    }
  }

  /** The client ended: watches end, pending calls fail, commands in flight resolve as `lost`. */
  failAll(err: SwitchboardError): void {
    for (const p of [...this.queued.values()]) p.entry.conclude(p, err.code, `the client ended before the outcome arrived: ${err.message}`);
    for (const e of this.entries.values()) e.fail(err);
  }

  onTelemetry(f: TelemetryFrame): void {
    this.entries.get(f.robot)?.onTelemetry(f);
  }

  onRobotEvent(f: RobotEventFrame): void {
    this.entries.get(f.robot)?.onRobotEvent(f);
  }

  onLease(f: LeaseEventFrame): void {
    this.entries.get(f.robot)?.onLease(f);
  }

  onCommandStage(f: CommandStatusFrame): void {
    const p = this.queued.get(f.cmd);
    if (p && p.entry.id === f.robot) p.entry.onStage(p, f);
  }
}

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
   */
  watch(): Promise<Readonly<RobotState>> {
    return this.entry.watch();
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

/** @internal One robot's bookkeeping; its handle is the public face. */
export class RobotEntry {
  readonly handle: RobotHandle;
  status: RobotWatchStatus = 'idle';
  state: RobotState | undefined;
  /** The lease as last known. */
  lease: LeaseInfo | null = null;
  private readonly emit: Emit;
  private readonly latest = new Map<number, TelemetrySample>();
  /** The application wants the robot watched (again after a reconnect). */
  private wanted = false;
  /** `watching` came at least once since watch() was called. */
  private confirmed = false;
  private reqId: number | undefined;
  private reqTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retries = 0;
  private readonly waiters = new Set<Waiter>();
  private renewTtl = 0;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped on every start and stop of automatic renewal, so a stale renewal does nothing. */
  private renewGen = 0;

  constructor(
    readonly id: string,
    private readonly host: RobotsHost,
    private readonly queued: Map<string, Pending>,
  ) {
    const handle = new RobotHandle(id, this);
    this.handle = handle;
    // The entry emits the handle's events (Emitter.emit is protected: not for applications).
    this.emit = (event, ...args) => (handle as unknown as { emit: Emit }).emit(event, ...args);
  }

  get autoRenewing(): boolean {
    return this.renewTtl > 0;
  }

  leaseHeld(): boolean {
    const me = this.host.userId();
    return me !== undefined && this.lease?.holder.id === me;
  }

  // ---- watching ----

  watch(): Promise<RobotState> {
    const ended = this.host.ended();
    if (ended) return Promise.reject(ended);
    if (this.status === 'watching' && this.state) return Promise.resolve(this.state);
    this.wanted = true;
    if (this.status === 'idle' || this.status === 'ended') {
      this.confirmed = false;
      this.setStatus('pending');
    }
    return new Promise<RobotState>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          // A watch never confirmed is abandoned, not left pending.
          if (!this.confirmed && this.waiters.size === 0 && this.wanted) this.abandon();
          reject(new SwitchboardError('TIMEOUT', `no reply to watch within ${this.host.timeoutMs} ms`, { robot: this.id }));
        }, this.host.timeoutMs),
      };
      this.waiters.add(w);
      if (this.reqId === undefined) this.request();
    });
  }

  async unwatch(): Promise<void> {
    const ended = this.host.ended();
    if (ended) throw ended;
    const tell = (this.status === 'watching' || this.reqId !== undefined) && this.host.isOpen();
    this.wanted = false;
    this.confirmed = false;
    this.cancelRequest();
    this.rejectWaiters(new SwitchboardError('CLOSED', 'unwatched before the watch was confirmed', { robot: this.id }));
    if (this.status !== 'ended') this.setStatus('idle');
    if (tell) expect(await this.host.requests.call({ t: 'unwatch', robot: this.id }, { resend: false }), 'ok');
  }

  resume(): void {
    if (this.wanted && this.reqId === undefined) this.request();
  }

  lost(): void {
    this.cancelRequest();
    if (this.status === 'watching') this.setStatus('resuming');
  }

  fail(err: SwitchboardError): void {
    this.cancelRequest();
    this.stopAutoRenew();
    this.rejectWaiters(err);
    const was = this.wanted;
    this.wanted = false;
    if (was) {
      this.setStatus('ended');
      this.emit('ended', 'closed', err);
    }
  }

  onTelemetry(f: TelemetryFrame): void {
    if (this.status !== 'watching' || !this.state) return;
    const s: TelemetrySample = { robot: this.id, ch: f.ch, channel: this.channelName(f.ch), ts: f.ts, data: f.data };
    this.latest.set(f.ch, s);
    this.emit('telemetry', s);
  }

  onRobotEvent(f: RobotEventFrame): void {
    const state = this.state;
    if (this.status !== 'watching' || !state) return;
    switch (f.kind) {
      case 'online':
        state.online = true;
        state.channels = f.channels ?? [];
        for (const ch of [...this.latest.keys()]) if (!state.channels.some((c) => c.id === ch)) this.latest.delete(ch);
        this.emit('online', state.channels);
        break;
      case 'offline':
        state.online = false;
        if (f.lastSeen !== undefined) state.lastSeen = f.lastSeen;
        this.emit('offline', state.lastSeen);
        break;
      case 'deleted':
      case 'access_revoked':
        this.end(f.kind);
        break;
    }
  }

  onLease(f: LeaseEventFrame): void {
    if (this.status !== 'watching') return;
    this.setLease(f.lease);
    this.emit('lease', f.lease, f.reason);
  }

  private request(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.host.isOpen()) return;
    let id: number;
    try {
      id = this.host.requests.send(
        { t: 'watch', robot: this.id },
        {
          reply: (f) => this.onWatchReply(id, f),
          lost: () => this.cancelRequest(),
          fail: () => this.cancelRequest(),
        },
      );
    } catch (e) {
      this.host.report(asSwitchboardError(e, 'DISCONNECTED', `watch ${this.id} not sent`));
      return;
    }
    this.reqId = id;
    // No reply in time: ask again (the hub answers a repeated watch as a fresh one).
    this.reqTimer = setTimeout(() => {
      if (this.reqId !== id) return;
      this.host.requests.forget(id);
      this.reqId = undefined;
      if (this.wanted) this.request();
    }, this.host.timeoutMs);
  }

  private onWatchReply(id: number, f: ReplyFrame): void {
    if (this.reqId !== id) return;
    this.cancelRequest();
    if (!this.wanted) return;
    if (f.t === 'error' && TRANSIENT_WATCH.has(f.code)) {
      this.retryTimer = setTimeout(
        () => {
          this.retryTimer = undefined;
          if (this.wanted && this.reqId === undefined) this.request();
        },
        this.host.retryDelay(++this.retries),
      );
      return;
    }
    if (f.t !== 'watching') {
      const err =
        f.t === 'error'
          ? serverError(f, undefined, this.id)
          : new SwitchboardError('BAD_FRAME', `unexpected ${f.t} in reply to watch`, { robot: this.id, requestId: id });
      const waited = this.waiters.size > 0;
      this.rejectWaiters(err);
      if (this.confirmed) {
        // A re-watch after a reconnect: the robot is gone, or so is your access.
        this.end('refused', err);
        if (!waited) this.host.report(err);
      } else {
        this.wanted = false;
        this.setStatus('idle');
      }
      return;
    }
    this.apply(f);
  }

  /** A `watching` answer: the state now, replacing what was known. */
  private apply(f: WatchingFrame): void {
    const prev = this.confirmed ? this.state : undefined;
    const channels = f.channels;
    this.latest.clear();
    for (const s of f.latest) this.latest.set(s.ch, { robot: this.id, ch: s.ch, channel: channels.find((c) => c.id === s.ch)?.name, ts: s.ts, data: s.data });
    const state: RobotState = {
      id: this.id,
      name: f.name,
      role: f.role,
      online: f.online,
      lastSeen: f.lastSeen,
      channels,
      latest: this.latest,
      lease: f.lease,
    };
    this.state = state;
    const prevLease = this.lease;
    this.setLease(f.lease);
    this.confirmed = true;
    this.retries = 0;
    this.setStatus('watching');
    for (const w of [...this.waiters]) {
      clearTimeout(w.timer);
      w.resolve(state);
    }
    this.waiters.clear();
    this.emit('watching', state);
    if (!prev) return;
    // Re-watched after a reconnect: report what changed meanwhile.
    if (prev.online !== state.online) {
      if (state.online) this.emit('online', state.channels);
      else this.emit('offline', state.lastSeen);
    }
    if (prevLease?.holder.id !== f.lease?.holder.id || prevLease?.expiresAt !== f.lease?.expiresAt) this.emit('lease', f.lease, 'resync');
  }

  /** The hub ended the watch, or refused to renew it. */
  private end(reason: RobotEndReason, err?: SwitchboardError): void {
    this.wanted = false;
    this.confirmed = false;
    this.cancelRequest();
    this.rejectWaiters(err ?? new SwitchboardError('CLOSED', `the watch ended: ${reason}`, { robot: this.id }));
    this.setStatus('ended');
    if (reason === 'deleted' || reason === 'access_revoked') {
      this.stopAutoRenew();
      this.setLease(null);
      // The hub's session still counts the watch against its limit until told.
      if (this.host.isOpen()) this.host.requests.call({ t: 'unwatch', robot: this.id }, { resend: false }).catch(noop);
    }
    this.emit('ended', reason, err);
  }

  /** A first watch nobody waits for any more. */
  private abandon(): void {
    const inFlight = this.reqId !== undefined;
    this.wanted = false;
    this.cancelRequest();
    this.setStatus('idle');
    if (inFlight && this.host.isOpen()) this.host.requests.call({ t: 'unwatch', robot: this.id }, { resend: false }).catch(noop);
  }

  private cancelRequest(): void {
    if (this.reqId !== undefined) this.host.requests.forget(this.reqId);
    this.reqId = undefined;
    clearTimeout(this.reqTimer);
    this.reqTimer = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private rejectWaiters(err: SwitchboardError): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters.clear();
  }

  private setStatus(s: RobotWatchStatus): void {
    this.status = s;
  }

  private channelName(ch: number): string | undefined {
    return this.state?.channels.find((c) => c.id === ch)?.name;
  }

  private setLease(l: LeaseInfo | null): void {
    this.lease = l;
    if (this.state) this.state.lease = l;
    if (this.renewTtl > 0 && !this.leaseHeld()) this.stopAutoRenew();
  }

  // ---- commands ----

  /** Sends a command (`name`) or, without a name, the e-stop. */
  send(name: string | undefined, args: unknown, opts: CommandOptions): Promise<CommandOutcome> {
    const ended = this.host.ended();
    if (ended) return Promise.reject(ended);
    const kind = name === undefined ? 'estop' : 'cmd';
    if (!this.host.isOpen()) return Promise.reject(new SwitchboardError('DISCONNECTED', `not connected: ${kind} not sent`, { robot: this.id }));
    const body: RequestBody =
      name === undefined
        ? { t: 'estop', robot: this.id }
        : {
            t: 'cmd',
            robot: this.id,
            name,
            // Only the fields that are set: MessagePack would encode an undefined one, and the hub refuses it.
            ...(args === undefined ? {} : { args }),
            ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
          };
    const outcomeMs = (name === undefined ? HUB_ESTOP_TIMEOUT_MS : (opts.timeoutMs ?? HUB_COMMAND_TIMEOUT_MS)) + this.host.timeoutMs;
    return new Promise<CommandOutcome>((resolve, reject) => {
      const p: Pending = {
        entry: this,
        name: name ?? 'estop',
        cmd: undefined,
        reqId: undefined,
        timer: undefined,
        settled: false,
        onStage: opts.onStage,
        resolve,
        reject,
      };
      let id: number;
      try {
        id = this.host.requests.send(body, {
          reply: (f) => this.onQueued(p, id, f, outcomeMs),
          lost: () => this.conclude(p, 'DISCONNECTED', `the connection dropped before the hub answered the ${kind}; it may have been queued`),
          fail: (err) => this.conclude(p, err.code, `the client ended before the hub answered the ${kind}: ${err.message}`),
        });
      } catch (e) {
        p.settled = true;
        reject(asSwitchboardError(e, 'DISCONNECTED', `${kind} not sent`));
        return;
      }
      p.reqId = id;
      p.timer = setTimeout(() => {
        this.host.requests.forget(id);
        this.conclude(p, 'TIMEOUT', `no reply to the ${kind} within ${this.host.timeoutMs} ms; it may have been queued`);
      }, this.host.timeoutMs);
    });
  }

  private onQueued(p: Pending, id: number, f: ReplyFrame, outcomeMs: number): void {
    if (p.settled) return;
    clearTimeout(p.timer);
    p.reqId = undefined;
    if (f.t === 'queued') {
      p.cmd = f.cmd;
      this.queued.set(f.cmd, p);
      p.timer = setTimeout(() => this.conclude(p, 'TIMEOUT', `no outcome from the hub within ${outcomeMs} ms`), outcomeMs);
      this.report(p, { robot: this.id, name: p.name, cmd: f.cmd, stage: 'queued', ts: Date.now() });
      return;
    }
    if (f.t === 'error' && f.code !== 'TIMEOUT') {
      p.settled = true;
      p.reject(serverError(f, undefined, this.id));
      return;
    }
    // The hub's TIMEOUT: its request timed out while the robot actor may still queue the command.
    const why = f.t === 'error' ? `the hub answered ${f.code} (${f.message}); the command may still be queued` : `unexpected ${f.t} in reply to the command`;
    this.conclude(p, f.t === 'error' ? f.code : 'BAD_FRAME', why, id);
  }

  onStage(p: Pending, f: CommandStatusFrame): void {
    if (p.settled) return;
    const stage: CommandStage = { robot: this.id, name: p.name, cmd: f.cmd, stage: f.stage, ts: f.ts, ...(f.detail === undefined ? {} : { detail: f.detail }) };
    if (f.stage === 'delivered' || f.stage === 'accepted') {
      this.report(p, stage);
      return;
    }
    this.settle(p, { ...stage, stage: f.stage as Exclude<CommandStageName, 'delivered' | 'accepted'>, ok: f.stage === 'completed', fromHub: true });
  }

  /** The outcome is unknown to this client: resolves as `lost`, never resends. */
  conclude(p: Pending, code: string, message: string, requestId?: number): void {
    if (p.settled) return;
    if (p.reqId !== undefined) this.host.requests.forget(p.reqId);
    const detail = requestId === undefined ? { code, message } : { code, message, requestId };
    this.settle(p, { robot: this.id, name: p.name, cmd: p.cmd, stage: 'lost', ts: Date.now(), detail, ok: false, fromHub: false });
  }

  private settle(p: Pending, outcome: CommandOutcome): void {
    p.settled = true;
    clearTimeout(p.timer);
    if (p.cmd !== undefined) this.queued.delete(p.cmd);
    this.report(p, outcome);
    p.resolve(outcome);
  }

  private report(p: Pending, s: CommandStage): void {
    const { onStage } = p;
    if (onStage) safely(() => onStage(s));
    this.emit('command', s);
  }

  // ---- the control lease ----

  async leaseOp(op: LeaseFrame['op'], ttlMs: number | undefined, force: boolean | undefined): Promise<LeaseInfo | null> {
    const ended = this.host.ended();
    if (ended) throw ended;
    const body: RequestBody = {
      t: 'lease',
      robot: this.id,
      op,
      ...(ttlMs === undefined ? {} : { ttlMs }),
      ...(force === undefined ? {} : { force }),
    };
    const f = expect(await this.host.requests.call(body), 'leased');
    // While watching, the hub's lease events are the truth: a reply may be older than the latest event.
    if (this.status !== 'watching') this.setLease(f.lease);
    return f.lease;
  }

  expectLease(l: LeaseInfo | null): LeaseInfo {
    if (!l) throw new SwitchboardError('BAD_FRAME', 'the hub answered without a lease', { robot: this.id });
    return l;
  }

  async acquire(opts: LeaseAcquireOptions): Promise<LeaseInfo> {
    const lease = this.expectLease(await this.leaseOp('acquire', opts.ttlMs, opts.force));
    if (opts.autoRenew) this.startAutoRenew(opts.ttlMs ?? HUB_LEASE_TTL_MS);
    else this.stopAutoRenew();
    return lease;
  }

  private startAutoRenew(ttlMs: number): void {
    this.stopAutoRenew();
    this.renewTtl = ttlMs;
    this.scheduleRenew(ttlMs / 3, this.renewGen);
  }

  stopAutoRenew(): void {
    this.renewGen++;
    this.renewTtl = 0;
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
  }

  private scheduleRenew(ms: number, gen: number): void {
    this.renewTimer = setTimeout(() => {
      this.renewTimer = undefined;
      if (gen !== this.renewGen) return;
      const ttl = this.renewTtl;
      this.leaseOp('renew', ttl, undefined).then(
        () => {
          if (gen === this.renewGen) this.scheduleRenew(ttl / 3, gen);
        },
        (e: unknown) => {
          if (gen !== this.renewGen) return;
          const err = asSwitchboardError(e, 'DISCONNECTED', 'lease renewal failed');
          if (TRANSIENT_RENEW.has(err.code)) {
            this.scheduleRenew(Math.min(ttl / 6, 1_000), gen);
            return;
          }
          this.stopAutoRenew();
          this.emit('error', err);
        },
      );
    }, ms);
  }
}

/** Narrows a reply to the expected frame type (an unexpected one is a hub bug, reported as BAD_FRAME). */
function expect<T extends ReplyFrame['t']>(f: ReplyFrame, t: T): Extract<ReplyFrame, { t: T }> {
  if (f.t !== t) throw new SwitchboardError('BAD_FRAME', `expected ${t} in reply, got ${f.t}`);
  return f as Extract<ReplyFrame, { t: T }>;
}
