// The robot actor: one per robot with a live link or watchers on this node, and the only place its
// live state changes. It knows who may do what (owner, grants; told when they change), whether the
// robot is online, its channels and the latest sample of each, who watches it, who holds the
// control lease, and every command in flight. Telemetry fans out to watchers: `reliable` channels
// through the robot's topic (every frame, in order; a watcher that falls too far behind is cut off
// and re-watches), `latest` channels conflated per watcher (a slow watcher gets the newest sample
// when it drains, never a queue of stale ones). Commands need the operator role and the lease; the
// emergency stop needs only the operator role, goes to the robot before anything is written, and
// ends the lease. Every command is in the audit log, its stages appended as they happen.

import { createHash, randomUUID } from 'node:crypto';
import { notFound, SbError } from '../errors.js';
import type {
  ChannelInfo,
  CommandStageName,
  LeasedFrame,
  LeaseEventFrame,
  LeaseInfo,
  RobotRoleName,
  ServerFrame,
  UserRef,
  WatchingFrame,
} from '../protocol/frames.js';
import { type Channel, type RobotStage, Tag } from '../protocol/robot.js';
import type { CommandStage } from '../store/robots.js';
import type { Store } from '../store/store.js';
import { type Conflater, type Connection, type Fanout, type RobotConnection, robotTopic } from './ports.js';
import type { Actor, ActorContext } from './runtime.js';

/** The user behind a request, as the permission rules need them. */
export interface Requester {
  user: UserRef;
  admin: boolean;
}

export type RobotMsg =
  | { type: 'attach'; conn: RobotConnection; channels: Channel[] }
  | { type: 'detach'; conn: RobotConnection }
  | { type: 'telemetry'; conn: RobotConnection; channel: number; ts: number; payload: unknown }
  | { type: 'status'; conn: RobotConnection; command: string; stage: RobotStage; detail: unknown }
  | { type: 'watch'; conn: Connection; by: Requester; reqId: number; deadline: number }
  | { type: 'unwatch'; conn: Connection }
  /** `deadline`: when the command must have finished, ms on the clock, from when the hub received it. */
  | { type: 'command'; conn: Connection; by: Requester; reqId: number; name: string; args: unknown; deadline: number }
  | { type: 'audited'; id: string; request: Extract<RobotMsg, { type: 'command' }> }
  | { type: 'estop'; conn: Connection; by: Requester; reqId: number; deadline: number }
  | { type: 'lease'; by: Requester; op: 'acquire' | 'renew' | 'release'; ttlMs: number; force: boolean; reqId: number; deadline: number }
  | { type: 'leaseExpired'; token: number }
  | { type: 'commandTimeout'; command: string }
  | { type: 'accessChanged' }
  | { type: 'certificatesChanged' }
  | { type: 'certificatesLoaded'; link: RobotConnection; revoked: boolean }
  | { type: 'deleted' }
  | { type: 'live' };

export interface LiveStatus {
  online: boolean;
  channels: ChannelInfo[];
  lease: LeaseInfo | null;
}

export type RobotReply = LeasedFrame | LiveStatus | undefined;

export interface RobotDeps {
  store: Store;
  fanout: Fanout & Conflater;
  /** Told when the robot's link comes and goes, so listings can say who is online without asking every actor. */
  presence: { online(robotId: string): void; offline(robotId: string): void };
  /** Commands in flight per robot. */
  maxPendingCommands: number;
}

/** How long the robot has to answer an emergency stop. */
const ESTOP_TIMEOUT_MS = 10_000;

interface PendingCommand {
  id: string;
  issuer: Connection;
  timer: unknown;
  /** The audit writes of this command, in order: a stage is appended only after the row exists. */
  audit: Promise<unknown>;
  accepted: boolean;
}

interface Lease {
  holder: UserRef;
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

export class RobotActor implements Actor<RobotMsg, RobotReply> {
  private missing = false;
  private name = '';
  private ownerId = '';
  private grants = new Map<string, 'viewer' | 'operator'>();
  private link: RobotConnection | undefined;
  private channels = new Map<number, Channel>();
  private latest = new Map<number, { ts: number; data: unknown }>();
  private lastSeen: number | null = null;
  private readonly watchers = new Map<string, { conn: Connection; userId: string; admin: boolean }>();
  private lease: Lease | undefined;
  private leaseTokens = 0;
  private readonly commands = new Map<string, PendingCommand>();
  /** Commands whose audit row is being written. */
  private auditing = 0;
  private readonly topic: string;

  constructor(
    private readonly id: string,
    private readonly ctx: ActorContext<RobotMsg, RobotReply>,
    private readonly deps: RobotDeps,
  ) {
    this.topic = robotTopic(id);
  }

  async start(): Promise<void> {
    const robot = await this.deps.store.robots.byId(this.id);
    if (!robot) {
      this.missing = true;
      return;
    }
    this.name = robot.name;
    this.ownerId = robot.ownerId;
    this.lastSeen = robot.lastSeenAt?.getTime() ?? null;
    this.grants = new Map((await this.deps.store.robots.grants(this.id)).map((g) => [g.userId, g.role]));
  }

  /**
   * Always resume: the state is live (the link, watchers, lease, commands in flight) and cannot be
   * reloaded, and every handler checks before it changes anything, so a failed request (refused, or
   * the store unreachable) leaves it intact.
   */
  onError(): 'resume' {
    return 'resume';
  }

  canPassivate(): boolean {
    return !this.link && this.watchers.size === 0 && !this.lease && this.commands.size === 0 && this.auditing === 0;
  }

  async stop(): Promise<void> {
    this.clearLease();
    for (const c of this.commands.values()) this.ctx.clock.clearTimeout(c.timer);
    const pending = [...this.commands.values()];
    if (this.link) this.goOffline(this.link, 'the node shut down before the robot reported an outcome');
    // Their last audit writes (the outcome `lost`) land before the store closes.
    await Promise.all(pending.map((c) => c.audit));
  }

  handle(msg: RobotMsg): RobotReply | Promise<RobotReply> {
    switch (msg.type) {
      case 'attach':
        return this.attach(msg.conn, msg.channels);
      case 'detach':
        if (msg.conn === this.link) this.goOffline(msg.conn, 'the robot disconnected before reporting an outcome');
        return undefined;
      case 'telemetry':
        if (msg.conn === this.link) this.telemetry(msg.channel, msg.ts, msg.payload);
        return undefined;
      case 'status':
        if (msg.conn === this.link) this.robotStatus(msg.command, msg.stage, msg.detail);
        return undefined;
      case 'watch':
        this.inTime(msg.deadline);
        this.watch(msg.conn, msg.by, msg.reqId);
        return undefined;
      case 'unwatch':
        this.unwatch(msg.conn);
        return undefined;
      case 'command':
        this.command(msg);
        return undefined;
      case 'audited':
        this.audited(msg.id, msg.request);
        return undefined;
      case 'estop':
        this.inTime(msg.deadline);
        this.estop(msg.conn, msg.by, msg.reqId);
        return undefined;
      case 'lease':
        this.inTime(msg.deadline);
        return this.leaseOp(msg.by, msg.op, msg.ttlMs, msg.force, msg.reqId);
      case 'leaseExpired':
        if (this.lease?.token === msg.token) this.endLease('expired');
        return undefined;
      case 'commandTimeout':
        this.finish(msg.command, 'timeout', 'completed', 'timeout', 'no outcome before the deadline');
        return undefined;
      case 'accessChanged':
        return this.reloadAccess();
      case 'certificatesChanged':
        this.checkCertificate();
        return undefined;
      case 'certificatesLoaded':
        if (msg.revoked && this.link === msg.link) {
          msg.link.close('CERTIFICATE_REVOKED', 'the certificate of this link was revoked');
          this.goOffline(msg.link, 'the robot certificate was revoked before the command finished');
        }
        return undefined;
      case 'deleted':
        this.deleted();
        return undefined;
      case 'live':
        return {
          online: this.link !== undefined,
          channels: [...this.channels.values()],
          lease: this.leaseInfo(),
        };
    }
  }

  // ---- the robot's side ----

  private attach(conn: RobotConnection, channels: Channel[]): undefined {
    if (this.missing) {
      conn.close('UNKNOWN_CERTIFICATE', 'the robot no longer exists');
      return undefined;
    }
    if (this.link && this.link !== conn) {
      // A second link replaces the first: the robot reconnected before the old one timed out.
      const old = this.link;
      this.failAll('the robot reconnected on a new link before reporting an outcome');
      old.close('REPLACED', 'another connection of this robot replaced this one');
    }
    this.link = conn;
    this.channels = new Map(channels.map((c) => [c.id, c]));
    for (const ch of this.latest.keys()) if (!this.channels.has(ch)) this.latest.delete(ch);
    this.lastSeen = this.ctx.clock.now();
    this.deps.presence.online(this.id);
    this.touch();
    this.ctx.log.info({ link: conn.id, channels: channels.length }, 'robot online');
    this.broadcast({ t: 'robot', robot: this.id, kind: 'online', channels: [...this.channels.values()] });
    return undefined;
  }

  private goOffline(conn: RobotConnection, reason: string): void {
    this.link = undefined;
    this.lastSeen = this.ctx.clock.now();
    this.deps.presence.offline(this.id);
    this.touch();
    this.failAll(reason);
    if (!conn.closed) conn.close('SHUTDOWN', 'the node is shutting down: reconnect');
    this.ctx.log.info({ link: conn.id }, 'robot offline');
    this.broadcast({ t: 'robot', robot: this.id, kind: 'offline', lastSeen: this.lastSeen });
  }

  private touch(): void {
    const at = new Date(this.lastSeen ?? this.ctx.clock.now());
    this.deps.store.robots.touch(this.id, at).catch((e) => this.ctx.log.warn({ err: e }, 'could not record last seen'));
  }

  private telemetry(ch: number, ts: number, data: unknown): void {
    const channel = this.channels.get(ch);
    if (!channel) return;
    this.latest.set(ch, { ts, data });
    if (this.watchers.size === 0) return;
    const frame: ServerFrame = { t: 'tm', robot: this.id, ch, ts, data };
    if (channel.delivery === 'reliable') this.deps.fanout.publish(this.topic, frame);
    else this.deps.fanout.conflate(this.conns(), `${this.id}:${ch}`, frame);
  }

  private *conns(): Iterable<Connection> {
    for (const w of this.watchers.values()) yield w.conn;
  }

  private robotStatus(command: string, stage: RobotStage, detail: unknown): void {
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

  // ---- the users' side ----

  /** The caller's role, or null for an admin without one; NOT_FOUND for anyone else. */
  private roleOf(by: Requester): RobotRoleName | null {
    if (this.missing) throw notFound('robot');
    if (by.user.id === this.ownerId) return 'owner';
    const granted = this.grants.get(by.user.id);
    if (granted) return granted;
    if (by.admin) return null;
    throw notFound('robot');
  }

  /** Owner, operator or admin (whatever grant an admin also holds): may drive the robot. */
  private requireOperator(by: Requester, what: string): void {
    if (this.roleOf(by) === 'viewer' && !by.admin) throw new SbError('FORBIDDEN', `viewers cannot ${what}: it needs the operator role`);
  }

  private watch(conn: Connection, by: Requester, reqId: number): void {
    const role = this.roleOf(by);
    if (conn.closed) return;
    const frame: WatchingFrame = {
      t: 'watching',
      id: reqId,
      robot: this.id,
      name: this.name,
      role,
      online: this.link !== undefined,
      lastSeen: this.lastSeen,
      channels: [...this.channels.values()],
      latest: [...this.latest].map(([ch, s]) => ({ ch, ts: s.ts, data: s.data })),
      lease: this.leaseInfo(),
    };
    conn.send(frame);
    conn.subscribe(this.topic);
    this.watchers.set(conn.id, { conn, userId: by.user.id, admin: by.admin });
  }

  private unwatch(conn: Connection): void {
    if (this.watchers.delete(conn.id)) conn.unsubscribe(this.topic);
  }

  /**
   * Checks a command and records it in the audit log. The insert runs beside the mailbox, so
   * telemetry and an emergency stop never wait for the database; the `audited` step then sends it,
   * or refuses it if the robot, the lease or the deadline moved meanwhile. Either way this actor
   * answers the request itself (`queued` or an error frame), exactly once.
   */
  private command(m: Extract<RobotMsg, { type: 'command' }>): void {
    this.requireOperator(m.by, 'send commands');
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
    const audited: Extract<RobotMsg, { type: 'audited' }> = { type: 'audited', id, request: m };
    this.deps.store.robots
      .insertCommand({ id, robotId: this.id, userId: m.by.user.id, command: m.name, argsDigest: digest(m.args), issuedAt: new Date(now) })
      .then(
        () => {
          if (!this.ctx.self.tell(audited))
            this.audited(audited.id, audited.request, new SbError('UNAVAILABLE', 'the robot is overloaded; the command was not sent'));
        },
        (e: unknown) => {
          this.ctx.log.warn({ err: e }, 'command refused: the audit log cannot be written');
          this.auditing--;
          m.conn.send({
            t: 'error',
            id: m.reqId,
            code: 'UNAVAILABLE',
            message: 'the command could not be recorded in the audit log, so it was not sent; retry',
          });
        },
      );
  }

  /** The command's audit row exists: send it, unless something changed while it was written. */
  private audited(id: string, m: Extract<RobotMsg, { type: 'command' }>, refusal?: SbError): void {
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

  private estop(conn: Connection, by: Requester, reqId: number): void {
    this.requireOperator(by, 'send an emergency stop');
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
    this.dispatch(id, conn, reqId, ESTOP_TIMEOUT_MS, audit, () => link.send({ tag: Tag.ESTOP, command: id }));
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

  private leaseOp(by: Requester, op: 'acquire' | 'renew' | 'release', ttlMs: number, force: boolean, reqId: number): LeasedFrame {
    this.requireOperator(by, 'hold the control lease');
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
          const role = this.roleOf(by);
          if (!force) throw new SbError('LEASE_HELD', `${this.lease.holder.username} holds the control lease`, { holder: this.lease.holder });
          if (role !== 'owner' && !by.admin) throw new SbError('FORBIDDEN', "only the robot's owner or an admin can take over the lease");
          this.setLease(by, now + ttlMs, 'taken_over');
          return reply();
        }
        this.setLease(by, now + ttlMs, mine ? 'renewed' : 'acquired');
        return reply();
      }
    }
  }

  private setLease(by: Requester, expiresAt: number, reason: LeaseEventFrame['reason']): void {
    this.clearLease();
    const token = ++this.leaseTokens;
    const timer = this.ctx.clock.setTimeout(() => this.ctx.self.tell({ type: 'leaseExpired', token }), expiresAt - this.ctx.clock.now());
    this.lease = { holder: by.user, admin: by.admin, expiresAt, timer, token };
    this.broadcast({ t: 'lease', robot: this.id, lease: this.leaseInfo(), reason });
  }

  private endLease(reason: LeaseEventFrame['reason']): void {
    this.clearLease();
    this.broadcast({ t: 'lease', robot: this.id, lease: null, reason });
  }

  private clearLease(): void {
    if (!this.lease) return;
    this.ctx.clock.clearTimeout(this.lease.timer);
    this.lease = undefined;
  }

  private leaseInfo(): LeaseInfo | null {
    return this.lease ? { holder: this.lease.holder, expiresAt: this.lease.expiresAt } : null;
  }

  // ---- changes made elsewhere ----

  /** Grants or ownership changed: watchers and the lease holder who lost access are dropped. */
  /**
   * A request that waited in the mailbox past its deadline is refused: its requester's ask has
   * timed out (it outlives the deadline), so it was answered already and must not take effect.
   */
  private inTime(deadline: number): void {
    if (this.ctx.clock.now() >= deadline) throw new SbError('TIMEOUT', 'the robot did not take the request in time; it had no effect');
  }

  /**
   * Grants or ownership changed: re-read them inside the mailbox step, so that a request the change
   * allows, sent right after it (a grantee's first watch), is judged by the new rules. Rare, and a
   * millisecond's read: an e-stop may wait behind it, never behind a command's audit write.
   */
  private async reloadAccess(): Promise<undefined> {
    const { robots } = this.deps.store;
    const [robot, grants] = await Promise.all([robots.byId(this.id), robots.grants(this.id)]);
    this.accessLoaded(robot, new Map(grants.map((g) => [g.userId, g.role])));
    return undefined;
  }

  /** Applies reloaded grants: watchers and the lease holder who lost access are dropped. */
  private accessLoaded(robot: { name: string; ownerId: string } | undefined, grants: Map<string, 'viewer' | 'operator'>): void {
    if (!robot) return this.deleted();
    this.missing = false;
    this.name = robot.name;
    this.ownerId = robot.ownerId;
    this.grants = grants;
    const allowed = (userId: string, admin: boolean) => userId === this.ownerId || this.grants.has(userId) || admin;
    for (const [id, w] of this.watchers) {
      if (allowed(w.userId, w.admin)) continue;
      this.watchers.delete(id);
      w.conn.send({ t: 'robot', robot: this.id, kind: 'access_revoked' });
      w.conn.unsubscribe(this.topic);
    }
    const l = this.lease;
    if (l && !l.admin && l.holder.id !== this.ownerId && this.grants.get(l.holder.id) !== 'operator') this.endLease('access_revoked');
  }

  /** A certificate was revoked: a link authenticated with it is closed (checked beside the mailbox). */
  private checkCertificate(): void {
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

  private deleted(): void {
    this.missing = true;
    if (this.link) {
      const link = this.link;
      link.close('UNKNOWN_CERTIFICATE', 'the robot was deleted');
      this.goOffline(link, 'the robot was deleted');
    }
    this.clearLease();
    this.broadcast({ t: 'robot', robot: this.id, kind: 'deleted' });
    for (const w of this.watchers.values()) w.conn.unsubscribe(this.topic);
    this.watchers.clear();
  }

  private broadcast(frame: ServerFrame): void {
    if (this.watchers.size) this.deps.fanout.publish(this.topic, frame);
  }
}
