// What only a robot's home owns: its link, the control lease, the commands in flight and their
// audit. Commands need the operator role and the lease; the emergency stop needs only the operator
// role, goes to the robot before anything is written, and ends the lease. Every command is in the
// audit log, its stages appended as they happen. While home in a cluster, every change goes out as
// a numbered event to the nodes that follow the robot, and their requests are served here.

import { createHash, randomUUID } from 'node:crypto';
import type { Requester, RobotCluster, RobotTimings, Snapshot } from '../cluster/robots.js';
import { SbError } from '../errors.js';
import type { CommandStageName, LeasedFrame, LeaseEventFrame, LeaseInfo, RobotRoleName, ServerFrame } from '../protocol/frames.js';
import { type Channel, type RobotStage, Tag } from '../protocol/robot.js';
import { isManager, requireOperator } from '../robots/robot-rules.js';
import type { CommandStage } from '../store/robots.js';
import type { Store } from '../store/store.js';
import type { Connection, RobotConnection } from './ports.js';
import { defaultHistory, type HistoryLimits, RobotUplink, type UplinkMsg } from './robot-uplink.js';
import type { RobotView } from './robot-view.js';
import type { PartContext } from './runtime.js';

/** A command as the home takes it: from this node's connection, or another node's issuer. */
export interface CommandRequest {
  conn: Connection;
  by: Requester;
  reqId: number;
  name: string;
  args: unknown;
  /** When the command must have finished, ms on the clock, from when the hub received it. */
  deadline: number;
}

/** What the home sends itself through the actor's mailbox (timers, and writes that finished beside it). */
export type HomeMsg =
  | { type: 'audited'; id: string; request: CommandRequest }
  | { type: 'leaseExpired'; token: number }
  | { type: 'commandTimeout'; command: string }
  | { type: 'certificatesLoaded'; link: RobotConnection; revoked: boolean }
  | UplinkMsg;

/** What the home may send its actor besides its own messages: the grants need re-reading. */
type ToActor = HomeMsg | { type: 'accessChanged' };

export interface HomeDeps {
  store: Store;
  cluster: RobotCluster;
  timings: RobotTimings;
  /** Commands in flight per robot. */
  maxPendingCommands: number;
  /** Told when the robot's link comes and goes, so listings can say who is online without asking every actor. */
  presence: { online(robotId: string): void; offline(robotId: string): void };
  /** Told when this node starts or stops holding the robot's lease (a draining node waits for them to move). */
  leaseHeld?(robotId: string, held: boolean): void;
  /** How long, and how many, numbered samples of reliable channels are kept. */
  history?: HistoryLimits;
}

interface PendingCommand {
  id: string;
  issuer: Connection;
  timer: unknown;
  /** The audit writes of this command, in order: a stage is appended only after the row exists. */
  audit: Promise<unknown>;
  accepted: boolean;
}

interface Lease {
  holder: Requester['user'];
  /** The holder is an admin: keeps the lease whatever their grant. */
  admin: boolean;
  expiresAt: number;
  timer: unknown;
  token: number;
}

const digest = (args: unknown): Buffer =>
  createHash('sha256')
    .update(JSON.stringify(args ?? null))
    .digest();

/** A robot's reported stage as the issuer sees it, and the audit stage and outcome it writes. */
const STAGE: Record<RobotStage, { stage: CommandStageName; audit: CommandStage; outcome?: string }> = {
  accepted: { stage: 'accepted', audit: 'accepted' },
  rejected: { stage: 'rejected', audit: 'completed', outcome: 'rejected' },
  completed: { stage: 'completed', audit: 'completed', outcome: 'completed' },
  failed: { stage: 'failed', audit: 'completed', outcome: 'failed' },
};

export class RobotHome {
  link: RobotConnection | undefined;
  private lease: Lease | undefined;
  private leaseTokens = 0;
  private readonly commands = new Map<string, PendingCommand>();
  /** Commands whose audit row is being written. */
  private auditing = 0;
  /** In a cluster: this node is the robot's home (it holds the link, or the lease). */
  homed = false;
  /** Events sent to followers while home, numbered within this stint as home. */
  evSeq = 0;
  epoch = '';
  /** Numbered samples of reliable channels: stored, then acknowledged. */
  readonly uplink: RobotUplink;

  constructor(
    private readonly view: RobotView,
    private readonly ctx: PartContext<ToActor>,
    private readonly deps: HomeDeps,
    /** The caller's role on the robot (NOT_FOUND when they have none). */
    private readonly roleOf: (by: Requester) => RobotRoleName | null,
  ) {
    this.uplink = new RobotUplink(
      view.id,
      ctx,
      deps.store,
      deps.history ?? defaultHistory,
      () => this.link,
      (name, seq) => {
        if (seq > (view.numbered.get(name) ?? -1)) view.numbered.set(name, seq);
      },
    );
  }

  private get id(): string {
    return this.view.id;
  }

  /** Nothing here keeps the actor alive. */
  idle(): boolean {
    return !this.link && !this.lease && this.commands.size === 0 && this.auditing === 0 && this.uplink.idle();
  }

  handle(msg: HomeMsg): void {
    switch (msg.type) {
      case 'audited':
        this.audited(msg.id, msg.request);
        return;
      case 'leaseExpired':
        if (this.lease?.token === msg.token) this.endLease('expired');
        return;
      case 'commandTimeout':
        this.finish(msg.command, 'timeout', 'completed', 'timeout', 'no outcome before the deadline');
        return;
      case 'certificatesLoaded':
        if (msg.revoked && this.link === msg.link) {
          msg.link.close('CERTIFICATE_REVOKED', 'the certificate of this link was revoked');
          this.goOffline(msg.link, 'the robot certificate was revoked before the command finished');
        }
        return;
      case 'uplinkStored':
      case 'uplinkFailed':
        this.uplink.handle(msg);
        return;
    }
  }

  // ---- the robot's side ----

  /** The robot attached here; the caller made this node its home first. */
  attached(conn: RobotConnection, channels: Channel[]): void {
    if (this.link && this.link !== conn) {
      // A second link replaces the first: the robot reconnected before the old one timed out.
      const old = this.link;
      this.failAll('the robot reconnected on a new link before reporting an outcome');
      old.close('REPLACED', 'another connection of this robot replaced this one');
    }
    this.link = conn;
    this.view.cameOnline(channels, this.ctx.clock.now());
    this.deps.presence.online(this.id);
    this.touch();
    this.ctx.log.info({ link: conn.id, channels: channels.length }, 'robot online');
    this.broadcast(this.view.onlineFrame());
    // It went away while this node became its home (its close came before the attach, so no detach follows).
    if (conn.closed) this.goOffline(conn, 'the robot disconnected before reporting an outcome');
  }

  goOffline(conn: RobotConnection, reason: string): void {
    this.link = undefined;
    this.view.lastSeen = this.ctx.clock.now();
    this.deps.presence.offline(this.id);
    if (this.homed) this.deps.cluster.setOnline(this.id, false);
    this.touch();
    this.failAll(reason);
    if (!conn.closed) conn.close('SHUTDOWN', 'the node is shutting down: reconnect');
    this.ctx.log.info({ link: conn.id }, 'robot offline');
    this.broadcast({ t: 'robot', robot: this.id, kind: 'offline', lastSeen: this.view.lastSeen });
  }

  private touch(): void {
    const at = new Date(this.view.lastSeen ?? this.ctx.clock.now());
    this.deps.store.robots.touch(this.id, at).catch((e) => this.ctx.log.warn({ err: e }, 'could not record last seen'));
  }

  /** The robot advertised or withdrew channels: every watcher (here and on the followers) gets the new list. */
  channelsChanged(channels: Channel[]): void {
    this.view.setChannels(channels);
    this.broadcast({ t: 'channels', robot: this.id, channels });
  }

  /** A sample; a numbered one (`seq`, reliable channels) is stored and acknowledged, and a duplicate dropped. */
  telemetry(ch: number, ts: number, data: unknown, seq?: number): void {
    const channel = this.view.channels.get(ch);
    if (!channel) return;
    if (seq !== undefined && (channel.delivery !== 'reliable' || !this.uplink.accept(channel, seq, ts, data))) return;
    const frame: ServerFrame = { t: 'tm', robot: this.id, ch, ts, data, ...(seq === undefined ? {} : { seq }) };
    this.emit(frame);
    this.view.sample(ch, ts, data, frame);
  }

  robotStatus(command: string, stage: RobotStage, detail: unknown): void {
    const pending = this.commands.get(command);
    if (!pending) {
      this.link?.send({ tag: Tag.ERROR, code: 'UNKNOWN_COMMAND', message: 'no such command in flight (finished, timed out or never sent)', ref: command });
      return;
    }
    const s = STAGE[stage];
    if (stage === 'accepted') {
      if (pending.accepted) return; // reported twice: the first report stands
      pending.accepted = true;
      this.appendAudit(pending, 'accepted');
      this.notify(pending, 'accepted');
      return;
    }
    this.finish(command, s.stage, s.audit, s.outcome as string, detail);
  }

  /** A certificate was revoked: a link authenticated with it is closed (checked beside the mailbox). */
  checkCertificate(): void {
    const link = this.link;
    if (!link) return;
    this.deps.store.robots.certificates(this.id).then(
      (certs) => {
        const current = certs.find((c) => c.fingerprint.toString('hex') === link.fingerprint);
        this.ctx.self.tell({ type: 'certificatesLoaded', link, revoked: !current || current.revokedAt !== null });
      },
      (e: unknown) => this.ctx.log.warn({ err: e }, 'could not check the robot certificate'),
    );
  }

  // ---- commands ----

  /**
   * Checks a command and records it in the audit log. The insert runs beside the mailbox, so
   * telemetry and an emergency stop never wait for the database; the `audited` step then sends it,
   * or refuses it if the robot, the lease or the deadline moved meanwhile. Either way the home
   * answers the request itself (`queued` or an error frame), exactly once.
   */
  command(m: CommandRequest): undefined {
    requireOperator(this.roleOf(m.by), m.by.admin, 'send commands');
    if (this.lease?.holder.id !== m.by.user.id) {
      throw new SbError('LEASE_REQUIRED', this.lease ? `${this.lease.holder.username} holds the control lease` : 'acquire the control lease first');
    }
    this.requireOnline();
    if (this.commands.size + this.auditing >= this.deps.maxPendingCommands) {
      throw new SbError('RATE_LIMITED', `at most ${this.deps.maxPendingCommands} commands in flight per robot`);
    }
    const now = this.ctx.clock.now();
    if (now >= m.deadline) throw new SbError('TIMEOUT', 'the deadline passed before the command could be sent');
    const id = randomUUID();
    this.auditing++;
    const audited: HomeMsg = { type: 'audited', id, request: m };
    const record = { id, robotId: this.id, userId: m.by.user.id, command: m.name, argsDigest: digest(m.args), issuedAt: new Date(now) };
    // An admin may command without a role; anyone else must still be the owner or an operator in
    // the store (the cached grants may predate a revocation made through another node).
    (m.by.admin ? this.deps.store.robots.insertCommand(record) : this.deps.store.robots.insertOperatorCommand(record)).then(
      (written) => {
        if (!written) {
          this.auditing--;
          m.conn.send({ t: 'error', id: m.reqId, code: 'FORBIDDEN', message: 'commands need the operator role, which you no longer hold' });
          this.ctx.self.tell({ type: 'accessChanged' });
          return;
        }
        if (!this.ctx.self.tell(audited)) this.audited(id, m, new SbError('UNAVAILABLE', 'the robot is overloaded; the command was not sent'));
      },
      (e: unknown) => {
        this.ctx.log.warn({ err: e }, 'command refused: the audit log cannot be written');
        this.auditing--;
        m.conn.send({ t: 'error', id: m.reqId, code: 'UNAVAILABLE', message: 'the command could not be recorded in the audit log, so it was not sent; retry' });
      },
    );
    return undefined;
  }

  /** The command's audit row exists: send it, unless something changed while it was written. */
  private audited(id: string, m: CommandRequest, refusal?: SbError): void {
    this.auditing--;
    const remaining = m.deadline - this.ctx.clock.now();
    const link = this.link;
    refusal ??= !link
      ? new SbError('ROBOT_OFFLINE', 'the robot went offline; the command was not sent')
      : this.lease?.holder.id !== m.by.user.id
        ? new SbError('LEASE_REQUIRED', 'the control lease was lost; the command was not sent')
        : remaining <= 0
          ? new SbError('TIMEOUT', 'the deadline passed before the command could be sent')
          : undefined;
    if (refusal || !link) {
      this.deps.store.robots
        .markCommand(id, 'completed', new Date(this.ctx.clock.now()), 'not_sent')
        .catch((e) => this.ctx.log.warn({ err: e, command: id }, 'audit write failed'));
      m.conn.send({ t: 'error', id: m.reqId, code: refusal?.code ?? 'ROBOT_OFFLINE', message: refusal?.message ?? 'the robot is offline' });
      return;
    }
    this.dispatch(id, m.conn, m.reqId, remaining, Promise.resolve(), () =>
      link.send({ tag: Tag.COMMAND, command: id, name: m.name, args: m.args ?? null, timeoutMs: remaining }),
    );
  }

  /** The emergency stop, decided here: ends the lease, goes to the robot at once, is audited after. */
  estop(conn: Connection, by: Requester, reqId: number): undefined {
    requireOperator(this.roleOf(by), by.admin, 'send an emergency stop');
    if (this.lease) this.endLease('estop');
    const now = this.ctx.clock.now();
    const id = randomUUID();
    const audit = this.deps.store.robots.insertCommand({
      id,
      robotId: this.id,
      userId: by.user.id,
      command: 'estop',
      argsDigest: digest(null),
      issuedAt: new Date(now),
    });
    if (this.link?.closed) this.goOffline(this.link, 'the robot disconnected before reporting an outcome');
    const link = this.link;
    if (!link) {
      audit
        .then(() => this.deps.store.robots.markCommand(id, 'completed', new Date(this.ctx.clock.now()), 'offline'))
        .catch((e) => this.ctx.log.warn({ err: e, command: id }, 'audit write failed'));
      throw new SbError('ROBOT_OFFLINE', 'the robot is offline; the control lease was released');
    }
    // Sent first, audited after: the stop must not wait for the database.
    this.dispatch(id, conn, reqId, this.deps.timings.estopTimeoutMs, audit, () => link.send({ tag: Tag.ESTOP, command: id }));
    return undefined;
  }

  /** Tracks a command, answers `queued`, sends it and reports `delivered`. */
  private dispatch(id: string, issuer: Connection, reqId: number, timeoutMs: number, audit: Promise<unknown>, send: () => boolean): void {
    const pending: PendingCommand = {
      id,
      issuer,
      timer: this.ctx.clock.setTimeout(() => this.ctx.self.tell({ type: 'commandTimeout', command: id }), timeoutMs),
      audit: audit.catch((e) => this.ctx.log.warn({ err: e, command: id }, 'audit write failed')),
      accepted: false,
    };
    this.commands.set(id, pending);
    issuer.send({ t: 'queued', id: reqId, robot: this.id, cmd: id });
    if (send()) {
      this.appendAudit(pending, 'delivered');
      this.notify(pending, 'delivered');
    } else {
      this.finish(id, 'lost', 'completed', 'lost', 'the robot link closed while sending');
    }
  }

  private requireOnline(): RobotConnection {
    // A link that closed without its detach reaching us (a full mailbox) is offline all the same.
    if (this.link?.closed) this.goOffline(this.link, 'the robot disconnected before reporting an outcome');
    if (!this.link) throw new SbError('ROBOT_OFFLINE', 'the robot is offline');
    return this.link;
  }

  private notify(c: PendingCommand, stage: CommandStageName, detail?: unknown): void {
    c.issuer.send({ t: 'cmd', robot: this.id, cmd: c.id, stage, ts: this.ctx.clock.now(), ...(detail === undefined ? {} : { detail }) });
  }

  private appendAudit(c: PendingCommand, stage: CommandStage, outcome?: string): void {
    const at = new Date(this.ctx.clock.now());
    c.audit = c.audit
      .then(() => this.deps.store.robots.markCommand(c.id, stage, at, outcome))
      .catch((e) => this.ctx.log.warn({ err: e, command: c.id }, 'audit write failed'));
  }

  /** Ends a command with its final stage: tells the issuer and writes the outcome. */
  private finish(id: string, stage: CommandStageName, audit: CommandStage, outcome: string, detail: unknown): void {
    const c = this.commands.get(id);
    if (!c) return;
    this.commands.delete(id);
    this.ctx.clock.clearTimeout(c.timer);
    this.appendAudit(c, audit, outcome);
    this.notify(c, stage, detail);
  }

  private failAll(reason: string): void {
    for (const id of [...this.commands.keys()]) this.finish(id, 'lost', 'completed', 'lost', reason);
  }

  // ---- the control lease ----

  leaseOp(by: Requester, op: 'acquire' | 'renew' | 'release', ttlMs: number, force: boolean, reqId: number): LeasedFrame {
    const role = this.roleOf(by);
    requireOperator(role, by.admin, 'hold the control lease');
    const now = this.ctx.clock.now();
    const mine = this.lease?.holder.id === by.user.id;
    const reply = (): LeasedFrame => ({ t: 'leased', id: reqId, robot: this.id, lease: this.leaseInfo() });
    switch (op) {
      case 'release':
        if (mine) this.endLease('released');
        return reply();
      case 'renew':
        if (!mine) throw new SbError('LEASE_REQUIRED', 'you do not hold the control lease; acquire it');
        this.setLease(by, now + ttlMs, 'renewed');
        return reply();
      case 'acquire': {
        if (this.lease && !mine) {
          if (!force) throw new SbError('LEASE_HELD', `${this.lease.holder.username} holds the control lease`, { holder: this.lease.holder });
          if (!isManager(role, by.admin)) throw new SbError('FORBIDDEN', "only the robot's owner or an admin can take over the lease");
          this.setLease(by, now + ttlMs, 'taken_over');
          return reply();
        }
        this.setLease(by, now + ttlMs, mine ? 'renewed' : 'acquired');
        return reply();
      }
    }
  }

  /** `reason`: what the watchers are told (none for a lease handed over from another node). */
  setLease(by: Requester, expiresAt: number, reason: LeaseEventFrame['reason'] | undefined): void {
    this.clearLease();
    const token = ++this.leaseTokens;
    const timer = this.ctx.clock.setTimeout(() => this.ctx.self.tell({ type: 'leaseExpired', token }), expiresAt - this.ctx.clock.now());
    this.lease = { holder: by.user, admin: by.admin, expiresAt, timer, token };
    this.deps.leaseHeld?.(this.id, true);
    if (reason) this.broadcast(this.view.leaseFrame(this.leaseInfo(), reason));
  }

  endLease(reason: LeaseEventFrame['reason']): void {
    this.clearLease();
    this.broadcast(this.view.leaseFrame(null, reason));
  }

  clearLease(): void {
    if (!this.lease) return;
    this.ctx.clock.clearTimeout(this.lease.timer);
    this.lease = undefined;
    this.deps.leaseHeld?.(this.id, false);
  }

  leaseInfo(): LeaseInfo | null {
    return this.lease ? { holder: this.lease.holder, expiresAt: this.lease.expiresAt } : null;
  }

  /** The lease as it is handed to another node. */
  leaseHandoff(): { holder: Requester['user']; admin: boolean; expiresAt: number } | null {
    const l = this.lease;
    return l ? { holder: l.holder, admin: l.admin, expiresAt: l.expiresAt } : null;
  }

  /** Grants changed: a holder who may no longer drive the robot loses the lease. */
  checkLease(mayHold: (holder: Requester) => boolean): void {
    const l = this.lease;
    if (l && !mayHold({ user: l.holder, admin: l.admin })) this.endLease('access_revoked');
  }

  // ---- to the other nodes ----

  /** To this node's watchers, and to the other nodes' if this one is the robot's home. */
  broadcast(frame: ServerFrame): void {
    this.view.publish(frame);
    this.emit(frame, frame.t === 'robot' && frame.kind === 'online' ? { lease: this.leaseInfo() } : {});
  }

  /** To the nodes that follow the robot, in order: every event while home; a connection's answers even just after. */
  emit(frame: ServerFrame, extra: { to?: { node: string; conn: string }; lease?: LeaseInfo | null } = {}): void {
    if (this.homed || extra.to) this.deps.cluster.emit(this.id, { epoch: this.epoch, seq: ++this.evSeq, frame, ...extra });
  }

  /** Ends everything here: the node stops, or the robot was deleted or moved away. */
  shutDown(reason: string): Promise<unknown> {
    this.clearLease();
    for (const c of this.commands.values()) this.ctx.clock.clearTimeout(c.timer);
    const pending = [...this.commands.values()];
    if (this.link) this.goOffline(this.link, reason);
    return Promise.all(pending.map((c) => c.audit));
  }

  /** The robot's live state for a node that starts following it. */
  snapshot(): Snapshot {
    return {
      node: this.deps.cluster.nodeId,
      epoch: this.epoch,
      seq: this.evSeq,
      online: this.link !== undefined,
      lastSeen: this.view.lastSeen,
      channels: [...this.view.channels.values()],
      latest: [...this.view.latest].map(([ch, s]) => [ch, s.ts, s.data]),
      lease: this.leaseInfo(),
      numbered: [...this.view.numbered],
      unstored: this.uplink.unstored().map((s) => [s.channel, s.seq, s.ts, s.data]),
    };
  }

  /** A connection on another node, as this node's commands see their issuer: what it is sent goes out as an event. */
  issuer(node: string, conn: string, user: Requester['user']): Connection {
    const to = { node, conn };
    return {
      id: `${node}/${conn}`,
      user,
      closed: false,
      send: (frame) => this.emit(frame, { to }),
      writable: () => Promise.resolve(),
      subscribe() {},
      unsubscribe() {},
      close() {},
    };
  }
}
