// Robots over the client's one connection: watching a robot (its state, telemetry, online/offline,
// lease changes), commands and their stages, the emergency stop and the control lease.
// Invariants: a watched robot is watched again after every reconnect, and its state is replaced by
// the hub's `watching` answer; every command() and estop() settles exactly once; the client never
// sends a command twice (commands are not idempotent): one whose outcome this connection can no
// longer learn (the connection dropped, no answer in time) resolves with stage `lost`.

import type {
  ChannelsFrame,
  CommandStageName,
  CommandStatusFrame,
  LeaseEventFrame,
  LeaseFrame,
  LeaseInfo,
  RobotEventFrame,
  TelemetryFrame,
  WatchingFrame,
} from '../protocol/frames.js';
import { safely } from './emitter.js';
import { asSwitchboardError, SwitchboardError } from './errors.js';
import { type ReplyFrame, type RequestBody, serverError } from './requests.js';
import { RetriedRequest, Waiters } from './retried-request.js';
import { RobotHandle } from './robot-handle.js';
import type {
  CommandOptions,
  CommandOutcome,
  CommandStage,
  LeaseAcquireOptions,
  RobotEndReason,
  RobotEvents,
  RobotState,
  RobotsHost,
  RobotWatchOptions,
  RobotWatchStatus,
  TelemetrySample,
} from './robot-types.js';

/** Watch refusals worth asking again after a delay. */
const TRANSIENT_WATCH = new Set(['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED']);
/** Renewal failures after which automatic renewal tries again soon. */
const TRANSIENT_RENEW = new Set(['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED', 'RATE_LIMITED', 'DISCONNECTED']);
/** The hub's defaults, for the client's own deadlines. */
const HUB_COMMAND_TIMEOUT_MS = 10_000;
const HUB_ESTOP_TIMEOUT_MS = 10_000;
const HUB_LEASE_TTL_MS = 30_000;

const noop = () => {};
/** Names a `watch`'s `since` may carry (the hub's limit, a robot's channels at most). */
const MAX_SINCE = 64;

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

  /** A watched robot's lease or channel list changed. */
  onRobotChange(f: LeaseEventFrame | ChannelsFrame): void {
    const e = this.entries.get(f.robot);
    if (f.t === 'lease') e?.onLease(f);
    else e?.onChannels(f);
  }

  onCommandStage(f: CommandStatusFrame): void {
    const p = this.queued.get(f.cmd);
    if (p && p.entry.id === f.robot) p.entry.onStage(p, f);
  }
}

const sameSelection = (a: string[] | undefined, b: string[] | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((n) => b.includes(n)));

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
  /** The channel names asked for (undefined: all), and those the `watch` in flight asked for. */
  selection: string[] | undefined;
  private asked: string[] | undefined;
  /** By channel name: where a replay starts (the caller's `since`, then the last seq received). */
  private readonly since = new Map<string, number>();
  /** The `watch` request, asked again on a timeout or a transient refusal. */
  private readonly req: RetriedRequest;
  private readonly waiters = new Waiters<RobotState>();
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
    this.req = new RetriedRequest(host, {
      frame: () => {
        this.asked = this.selection;
        // `watch` takes at most MAX_SINCE names: the oldest go first (the robot's channels are pruned to already).
        for (const name of [...this.since.keys()].slice(0, Math.max(0, this.since.size - MAX_SINCE))) this.since.delete(name);
        const since = this.since.size ? { since: Object.fromEntries(this.since) } : {};
        return { t: 'watch', robot: id, ...(this.selection ? { channels: this.selection } : {}), ...since };
      },
      wanted: () => this.wanted,
      retryable: (f) => f.t === 'error' && TRANSIENT_WATCH.has(f.code),
      answer: (f, reqId) => this.onWatchReply(reqId, f),
      unsent: (e) => this.host.report(e),
    });
  }

  get autoRenewing(): boolean {
    return this.renewTtl > 0;
  }

  leaseHeld(): boolean {
    const me = this.host.userId();
    return me !== undefined && this.lease?.holder.id === me;
  }

  // ---- watching ----

  watch(opts: RobotWatchOptions = {}): Promise<RobotState> {
    const ended = this.host.ended();
    if (ended) return Promise.reject(ended);
    const selection = opts.channels && [...new Set(opts.channels)];
    const same = sameSelection(selection, this.selection) && !opts.since;
    this.selection = selection;
    for (const [name, seq] of Object.entries(opts.since ?? {})) this.since.set(name, seq);
    if (this.status === 'watching' && this.state && same) return Promise.resolve(this.state);
    this.wanted = true;
    if (this.status === 'idle' || this.status === 'ended') {
      this.confirmed = false;
      this.setStatus('pending');
    }
    const state = this.waiters.wait(this.host.timeoutMs, () => {
      // A watch never confirmed is abandoned, not left pending.
      if (!this.confirmed && this.waiters.size === 0 && this.wanted) this.abandon();
      return new SwitchboardError('TIMEOUT', `no reply to watch within ${this.host.timeoutMs} ms`, { robot: this.id });
    });
    this.req.send();
    return state;
  }

  async unwatch(): Promise<void> {
    const ended = this.host.ended();
    if (ended) throw ended;
    const tell = (this.status === 'watching' || this.req.inFlight) && this.host.isOpen();
    this.wanted = false;
    this.confirmed = false;
    this.since.clear();
    this.req.cancel();
    this.waiters.rejectAll(new SwitchboardError('CLOSED', 'unwatched before the watch was confirmed', { robot: this.id }));
    if (this.status !== 'ended') this.setStatus('idle');
    if (tell) expect(await this.host.requests.call({ t: 'unwatch', robot: this.id }, { resend: false }), 'ok');
  }

  resume(): void {
    this.req.send();
  }

  lost(): void {
    if (this.status === 'watching') this.setStatus('resuming');
  }

  fail(err: SwitchboardError): void {
    this.req.cancel();
    this.stopAutoRenew();
    this.waiters.rejectAll(err);
    const was = this.wanted;
    this.wanted = false;
    if (was) {
      this.setStatus('ended');
      this.emit('ended', 'closed', err);
    }
  }

  onTelemetry(f: TelemetryFrame): void {
    if (this.status !== 'watching' || !this.state) return;
    const s: TelemetrySample = {
      robot: this.id,
      ch: f.ch,
      channel: this.channelName(f.ch),
      ts: f.ts,
      data: f.data,
      ...(f.seq === undefined ? {} : { seq: f.seq }),
    };
    if (f.seq !== undefined && s.channel !== undefined) {
      // At or below the last seen: a sample the hub sent again (the robot replayed it after its
      // link was closed before the ACK); the application has it already.
      if (f.seq <= (this.since.get(s.channel) ?? -1)) return;
      this.since.set(s.channel, f.seq);
    }
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
        this.pruneSince(state.channels);
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

  onChannels(f: ChannelsFrame): void {
    const state = this.state;
    if (this.status !== 'watching' || !state) return;
    state.channels = f.channels;
    for (const ch of [...this.latest.keys()]) if (!f.channels.some((c) => c.id === ch)) this.latest.delete(ch);
    this.pruneSince(f.channels);
    this.emit('channels', f.channels);
  }

  /** Replay points of channels the robot no longer has go (names can be cycled; `since` is bounded). */
  private pruneSince(channels: readonly { name: string }[]): void {
    for (const name of [...this.since.keys()]) if (!channels.some((c) => c.name === name)) this.since.delete(name);
  }

  onLease(f: LeaseEventFrame): void {
    if (this.status !== 'watching') return;
    this.setLease(f.lease);
    this.emit('lease', f.lease, f.reason);
  }

  private onWatchReply(id: number, f: ReplyFrame): void {
    if (!this.wanted) return;
    if (f.t !== 'watching') {
      const err =
        f.t === 'error'
          ? serverError(f, undefined, this.id)
          : new SwitchboardError('BAD_FRAME', `unexpected ${f.t} in reply to watch`, { robot: this.id, requestId: id });
      const waited = this.waiters.size > 0;
      this.waiters.rejectAll(err);
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
    // The choice of channels changed while this watch was in flight: ask again, with the new one.
    if (!sameSelection(this.asked, this.selection)) this.req.send();
    const prev = this.confirmed ? this.state : undefined;
    const channels = f.channels;
    // An online robot's channels are its current ones (an offline robot's may not be known yet).
    if (f.online) this.pruneSince(channels);
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
    this.setStatus('watching');
    this.waiters.resolveAll(state);
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
    this.req.cancel();
    this.waiters.rejectAll(err ?? new SwitchboardError('CLOSED', `the watch ended: ${reason}`, { robot: this.id }));
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
    const inFlight = this.req.inFlight;
    this.wanted = false;
    this.req.cancel();
    this.setStatus('idle');
    if (inFlight && this.host.isOpen()) this.host.requests.call({ t: 'unwatch', robot: this.id }, { resend: false }).catch(noop);
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
