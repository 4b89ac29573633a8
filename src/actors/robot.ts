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
import { NoAnswerError, NobodyHomeError, notFound, SbError } from '../errors.js';
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
import {
  type Conflater,
  type Connection,
  type Fanout,
  type RemoteRequest,
  type RobotCluster,
  type RobotConnection,
  type RobotEvent,
  robotTopic,
} from './ports.js';
import { type Actor, type ActorContext, ActorStoppedError } from './runtime.js';

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
  | { type: 'live' }
  /** A request of another node's actor: this node is the robot's home. */
  | { type: 'remote'; req: RemoteRequest; arrivedAt: number }
  /** An event of the robot's home on another node; a node left the cluster; this node's NATS link came back. */
  | { type: 'remoteEvent'; event: RobotEvent | { lost: string } | { reconnected: true } }
  /** A command sent through the home got no final stage in time. */
  | { type: 'remoteTimeout'; command: string }
  /** Another node became the robot's home while this one was. */
  | { type: 'moved'; node: string };

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
  /** The other nodes, in a cluster. */
  cluster?: RobotCluster;
  /** Told when this node starts or stops holding the robot's lease (a draining node waits for them to move). */
  leaseHeld?(robotId: string, held: boolean): void;
}

/** The robot's live state as its home sends it to a node that starts following it. */
interface Snapshot {
  node: string;
  epoch: string;
  seq: number;
  online: boolean;
  lastSeen: number | null;
  channels: Channel[];
  latest: [number, number, unknown][];
  lease: LeaseInfo | null;
}

/** What the home hands to the node the robot attached to instead. */
interface Handoff {
  lease: { holder: UserRef; admin: boolean; expiresAt: number } | null;
}

/**
 * A node that is not the robot's home follows it: the home's events update this copy of the live
 * state and reach this node's watchers; answers to this node's requests come back among them.
 */
interface Remote {
  /** The home whose events apply (undefined: nobody is home, or not known yet), and its stint. */
  node: string | undefined;
  epoch: string;
  /** The last of its events applied. */
  seq: number;
  /** When an unknown home's event last made this node sync (at most once per RESYNC_EVERY_MS). */
  resyncedAt: number;
  online: boolean;
  lease: LeaseInfo | null;
  unfollow: () => void;
  /** Commands and stops this node's connections sent through the home, by `<conn>:<reqId>` until their `queued` (or error) arrives, with when their outcome is due. */
  waiting: Map<string, { conn: Connection; reqId: number; outcomeBy: number; timer: unknown }>;
  /** Their commands until the final stage: the issuer and a timer for a home that never answers. */
  commands: Map<string, { conn: Connection; timer: unknown }>;
}

/** `homeNode()`: this node decides (one node, or this node is the robot's home). Not a string: any string may be a node id. */
const HERE = Symbol('here');

/** A command's final stages. */
const FINAL = new Set<CommandStageName>(['completed', 'rejected', 'failed', 'timeout', 'lost']);
/** How long past its deadline a command sent through another node waits for its outcome. */
const REMOTE_GRACE_MS = 2_000;
/** How long a sync, handoff or forwarded request may take at most. */
const REMOTE_MS = 2_000;
/** A forwarded request the home takes this close to the asker's patience is refused: the answer might come too late. */
const PATIENCE_MARGIN_MS = 250;
/** Events of a home this node does not know make it sync at most this often (its telemetry would otherwise ask once per frame). */
const RESYNC_EVERY_MS = 1_000;

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
  /** In a cluster: this node is the robot's home (it holds the link, or the lease). */
  private homed = false;
  /** Events sent to followers while home, numbered within this stint as home. */
  private evSeq = 0;
  private epoch = '';
  /** In a cluster, while another node is (or may become) the robot's home and this one has watchers or commands there. */
  private remote: Remote | undefined;

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
    return (
      !this.link &&
      this.watchers.size === 0 &&
      !this.lease &&
      this.commands.size === 0 &&
      this.auditing === 0 &&
      !this.remote?.commands.size &&
      !this.remote?.waiting.size
    );
  }

  /** A robot that does not exist (or was deleted) is not kept for whoever asked about it. */
  passivateNow(): boolean {
    return this.missing && this.canPassivate();
  }

  async stop(): Promise<void> {
    // The other nodes' watchers learn that the lease ends with this node's stint as home.
    if (this.lease && this.homed) this.broadcast({ t: 'lease', robot: this.id, lease: null, reason: 'node_lost' });
    this.clearLease();
    for (const c of this.commands.values()) this.ctx.clock.clearTimeout(c.timer);
    const pending = [...this.commands.values()];
    if (this.link) this.goOffline(this.link, 'the node shut down before the robot reported an outcome');
    this.stopFollowing('the node shut down before the outcome arrived');
    if (this.homed) this.deps.cluster?.release(this.id);
    this.homed = false;
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
        return this.knowing(msg.by, () => this.watch(msg.conn, msg.by, msg.reqId, msg.deadline));
      case 'unwatch':
        this.unwatch(msg.conn);
        return undefined;
      case 'command':
        return this.knowing(msg.by, () => this.command(msg));
      case 'audited':
        this.audited(msg.id, msg.request);
        return undefined;
      case 'estop':
        this.inTime(msg.deadline);
        return this.knowing(msg.by, () => this.estop(msg.conn, msg.by, msg.reqId, msg.deadline));
      case 'lease':
        this.inTime(msg.deadline);
        return this.knowing(msg.by, () => this.leaseRequest(msg));
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
        return this.live();
      case 'remote':
        return this.knowing('by' in msg.req ? msg.req.by : undefined, () => this.serve(msg.req, msg.arrivedAt) as Promise<RobotReply>);
      case 'remoteEvent':
        return this.onRemote(msg.event);
      case 'remoteTimeout':
        this.remoteTimeout(msg.command);
        return undefined;
      case 'moved':
        this.moved(msg.node);
        return undefined;
    }
  }

  // ---- the robot's side ----

  private async attach(conn: RobotConnection, channels: Channel[]): Promise<undefined> {
    if (this.missing) {
      conn.close('UNKNOWN_CERTIFICATE', 'the robot no longer exists');
      return undefined;
    }
    const cluster = this.deps.cluster;
    if (cluster && !this.homed) await this.moveHere(cluster);
    else cluster?.setOnline(this.id, true);

    if (this.link && this.link !== conn) {
      // A second link replaces the first: the robot reconnected before the old one timed out.
      const old = this.link;
      this.failAll('the robot reconnected on a new link before reporting an outcome');
      old.close('REPLACED', 'another connection of this robot replaced this one');
    }
    this.link = conn;
    this.cameOnline(channels);
    this.deps.presence.online(this.id);
    this.touch();
    this.ctx.log.info({ link: conn.id, channels: channels.length }, 'robot online');
    this.broadcast({ t: 'robot', robot: this.id, kind: 'online', channels: [...this.channels.values()] });
    // It went away while this node became its home (its close came before the attach, so no detach follows).
    if (conn.closed) this.goOffline(conn, 'the robot disconnected before reporting an outcome');
    return undefined;
  }

  private goOffline(conn: RobotConnection, reason: string): void {
    this.link = undefined;
    this.lastSeen = this.ctx.clock.now();
    this.deps.presence.offline(this.id);
    if (this.homed) this.deps.cluster?.setOnline(this.id, false);
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
    const frame: ServerFrame = { t: 'tm', robot: this.id, ch, ts, data };
    this.emit(frame);
    this.fan(channel, frame);
  }

  /** Telemetry to this node's watchers: every frame of a reliable channel, the newest of a latest one. */
  private fan(channel: Channel, frame: ServerFrame): void {
    if (this.watchers.size === 0) return;
    if (channel.delivery === 'reliable') this.deps.fanout.publish(this.topic, frame);
    else this.deps.fanout.conflate(this.conns(), `${this.id}:${channel.id}`, frame);
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

  /**
   * Runs `then` once the cached grants can judge `by`: a user they do not name (neither the owner
   * nor a grantee nor an admin) has them re-read first, in this mailbox step, so a grant made
   * through another node whose notice has not arrived here (or was lost) is honoured, not refused.
   */
  private knowing<T>(by: Requester | undefined, then: () => T | Promise<T>): T | Promise<T> {
    if (!by || this.missing || by.admin || by.user.id === this.ownerId || this.grants.has(by.user.id)) return then();
    return this.reloadAccess().then(then);
  }

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

  private async watch(conn: Connection, by: Requester, reqId: number, deadline: number): Promise<undefined> {
    const role = this.roleOf(by);
    try {
      await this.view(deadline);
    } catch (e) {
      this.unfollowIfIdle();
      throw e;
    }
    if (conn.closed) {
      this.unfollowIfIdle();
      return undefined;
    }
    const frame: WatchingFrame = {
      t: 'watching',
      id: reqId,
      robot: this.id,
      name: this.name,
      role,
      online: this.online(),
      lastSeen: this.lastSeen,
      channels: [...this.channels.values()],
      latest: [...this.latest].map(([ch, s]) => ({ ch, ts: s.ts, data: s.data })),
      lease: this.leaseInfo(),
    };
    conn.send(frame);
    conn.subscribe(this.topic);
    this.watchers.set(conn.id, { conn, userId: by.user.id, admin: by.admin });
    // The view may have found nobody home and stopped following; a watcher always hears the robot come online.
    if (this.deps.cluster && !this.homed) this.follow();
    return undefined;
  }

  private unwatch(conn: Connection): void {
    if (this.watchers.delete(conn.id)) conn.unsubscribe(this.topic);
    this.unfollowIfIdle();
  }

  /** Follows the robot's home only while this node has watchers of it or commands through it. */
  private unfollowIfIdle(): void {
    const r = this.remote;
    if (r && this.watchers.size === 0 && r.commands.size === 0 && r.waiting.size === 0) this.stopFollowing('');
  }

  private online(): boolean {
    return this.link !== undefined || (this.remote?.online ?? false);
  }

  /** The robot (re)connected, here or at its home, with these channels: older samples of channels it dropped go. */
  private cameOnline(channels: Channel[]): void {
    this.channels = new Map(channels.map((c) => [c.id, c]));
    for (const ch of this.latest.keys()) if (!this.channels.has(ch)) this.latest.delete(ch);
    this.lastSeen = this.ctx.clock.now();
  }

  /** Live state for REST. */
  private async live(): Promise<LiveStatus> {
    try {
      await this.view(this.ctx.clock.now() + REMOTE_MS);
      return { online: this.online(), channels: [...this.channels.values()], lease: this.leaseInfo() };
    } finally {
      this.unfollowIfIdle();
    }
  }

  /**
   * Checks a command and records it in the audit log. The insert runs beside the mailbox, so
   * telemetry and an emergency stop never wait for the database; the `audited` step then sends it,
   * or refuses it if the robot, the lease or the deadline moved meanwhile. Either way this actor
   * answers the request itself (`queued` or an error frame), exactly once.
   */
  private async command(m: Extract<RobotMsg, { type: 'command' }>): Promise<undefined> {
    this.requireOperator(m.by, 'send commands');
    const home = this.homeNode();
    if (home !== HERE) {
      if (!home) throw new SbError('ROBOT_OFFLINE', 'the robot is offline');
      const req = { op: 'cmd', by: m.by, node: this.nodeId(), conn: m.conn.id, reqId: m.reqId, name: m.name, args: m.args ?? null } as const;
      await this.forward(home, m.conn, m.reqId, m.deadline, m.deadline, req);
      return undefined;
    }
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
    return undefined;
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

  private async estop(conn: Connection, by: Requester, reqId: number, deadline: number): Promise<undefined> {
    this.requireOperator(by, 'send an emergency stop');
    const home = this.homeNode();
    if (home !== HERE && home !== undefined) {
      const req = { op: 'estop', by, node: this.nodeId(), conn: conn.id, reqId } as const;
      try {
        await this.forward(home, conn, reqId, deadline, this.ctx.clock.now() + ESTOP_TIMEOUT_MS, req);
        return undefined;
      } catch (e) {
        // Nobody home after all: recorded here, as a stop to an offline robot.
        if (!(e instanceof NobodyHomeError)) throw e;
      }
    }
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

  /** `reason`: what the watchers are told (none for a lease handed over from another node). */
  private setLease(by: Requester, expiresAt: number, reason: LeaseEventFrame['reason'] | undefined): void {
    this.clearLease();
    const token = ++this.leaseTokens;
    const timer = this.ctx.clock.setTimeout(() => this.ctx.self.tell({ type: 'leaseExpired', token }), expiresAt - this.ctx.clock.now());
    this.lease = { holder: by.user, admin: by.admin, expiresAt, timer, token };
    this.deps.leaseHeld?.(this.id, true);
    if (reason) this.broadcast({ t: 'lease', robot: this.id, lease: this.leaseInfo(), reason });
  }

  private endLease(reason: LeaseEventFrame['reason']): void {
    this.clearLease();
    this.broadcast({ t: 'lease', robot: this.id, lease: null, reason });
  }

  private clearLease(): void {
    if (!this.lease) return;
    this.ctx.clock.clearTimeout(this.lease.timer);
    this.lease = undefined;
    this.deps.leaseHeld?.(this.id, false);
  }

  private leaseInfo(): LeaseInfo | null {
    return this.lease ? { holder: this.lease.holder, expiresAt: this.lease.expiresAt } : (this.remote?.lease ?? null);
  }

  // ---- the cluster: this node as the robot's home, or following the home on another node ----

  private nodeId(): string {
    return (this.deps.cluster as RobotCluster).nodeId;
  }

  /** Where the robot's requests are decided: here (one node, or this node is home), on another node, or nowhere yet. */
  private homeNode(): typeof HERE | string | undefined {
    const c = this.deps.cluster;
    if (!c || this.homed) return HERE;
    const home = c.home(this.id);
    return home === c.nodeId ? undefined : home;
  }

  /** Brings the live state up to date before it is shown, when another node is the robot's home. */
  private async view(deadline: number): Promise<void> {
    const home = this.homeNode();
    if (home === HERE) return;
    // Followed even while nobody is home: the robot coming online anywhere is heard here.
    if (home) await this.syncWith(home, deadline);
    else this.follow();
  }

  private follow(): Remote {
    if (this.remote) return this.remote;
    const unfollow = (this.deps.cluster as RobotCluster).follow(this.id, (event) => {
      if (!this.ctx.self.tell({ type: 'remoteEvent', event })) this.ctx.log.warn('robot mailbox full; an event of its home was dropped');
    });
    this.remote = {
      node: undefined,
      epoch: '',
      seq: 0,
      resyncedAt: 0,
      online: false,
      lease: null,
      unfollow,
      waiting: new Map(),
      commands: new Map(),
    };
    return this.remote;
  }

  /** Follows the robot and, unless already following `home` (and not `again`), takes its state from there. */
  private async syncWith(home: string, deadline: number, again = false): Promise<Remote> {
    const r = this.follow();
    if (r.node === home && !again) return r;
    const now = this.ctx.clock.now();
    try {
      // Subscribed first, asked after: every event after the snapshot arrives, and those before it are skipped by seq.
      const s = (await (this.deps.cluster as RobotCluster).request(this.id, { op: 'sync' }, Math.min(REMOTE_MS, deadline - now))) as Snapshot;
      if (r.node !== undefined && r.node !== s.node) this.failRemote(r, 'the robot moved to another node before reporting an outcome');
      const { online, lease } = r;
      r.node = s.node;
      r.epoch = s.epoch;
      r.seq = s.seq;
      r.online = s.online;
      r.lease = s.lease;
      this.lastSeen = s.lastSeen;
      this.channels = new Map(s.channels.map((c) => [c.id, c]));
      this.latest = new Map(s.latest.map(([ch, ts, data]) => [ch, { ts, data }]));
      this.tellChanges(online, lease);
    } catch (e) {
      if (!(e instanceof NobodyHomeError)) throw e;
      // Nobody is home after all (the home let go of an offline robot, or its node just died).
      if (r.node !== undefined) this.homeLost(r);
    }
    return r;
  }

  /**
   * Sends a command or stop to the robot's home, which answers the issuer through its events:
   * `queued` and the stages, or an error. A home that falls silent is reported here, after
   * `outcomeBy` and a grace period, as `lost` (or as an error if it never queued the command).
   */
  private async forward(
    home: string,
    conn: Connection,
    reqId: number,
    deadline: number,
    outcomeBy: number,
    req: Omit<Extract<RemoteRequest, { op: 'cmd' } | { op: 'estop' }>, 'remainingMs' | 'patienceMs'>,
  ): Promise<void> {
    const r = await this.syncWith(home, deadline);
    if (r.node === undefined) throw new NobodyHomeError();
    const now = this.ctx.clock.now();
    const key = `${conn.id}:${reqId}`;
    r.waiting.set(key, {
      conn,
      reqId,
      outcomeBy,
      timer: this.ctx.clock.setTimeout(() => this.ctx.self.tell({ type: 'remoteTimeout', command: key }), outcomeBy - now + REMOTE_GRACE_MS),
    });
    const patienceMs = Math.min(REMOTE_MS, deadline - now);
    try {
      await (this.deps.cluster as RobotCluster).request(this.id, { ...req, remainingMs: deadline - now, patienceMs } as RemoteRequest, patienceMs);
    } catch (e) {
      // No answer: the home may still have taken it, so its `queued` (or the timer) answers the issuer.
      if (e instanceof NoAnswerError) return;
      const w = r.waiting.get(key);
      // Answered already, among the home's events (a refusal it also sent that way).
      if (!w) return;
      this.ctx.clock.clearTimeout(w.timer);
      r.waiting.delete(key);
      this.unfollowIfIdle();
      throw e;
    }
  }

  private async leaseRequest(m: Extract<RobotMsg, { type: 'lease' }>): Promise<LeasedFrame> {
    let home = this.homeNode();
    const here = () => this.leaseOp(m.by, m.op, m.ttlMs, m.force, m.reqId);
    if (home === HERE) return here();
    this.requireOperator(m.by, 'hold the control lease');
    for (let attempt = 0; attempt < 2; attempt++) {
      if (home === undefined) {
        // Nobody is home: this node becomes it, to hold the lease of an offline robot.
        if (m.op !== 'acquire' || (await this.claimHome(false, false))) return here();
        home = this.homeNode();
        if (home === HERE) return here();
        if (home === undefined) break;
      }
      const { by, op, ttlMs, force, reqId } = m;
      try {
        const remainingMs = m.deadline - this.ctx.clock.now();
        const patienceMs = Math.min(REMOTE_MS, remainingMs);
        const req = { op: 'lease', by, lease: op, ttlMs, force, reqId, remainingMs, patienceMs } as const;
        return (await (this.deps.cluster as RobotCluster).request(this.id, req, patienceMs)) as LeasedFrame;
      } catch (e) {
        if (!(e instanceof NobodyHomeError)) throw e;
        home = undefined;
      }
    }
    throw new SbError('UNAVAILABLE', 'the control lease of this robot is moving between nodes; retry');
  }

  /** A request of another node: this node is the robot's home. */
  private async serve(req: RemoteRequest, arrivedAt: number): Promise<unknown> {
    if (!this.homed) throw new NobodyHomeError();
    // A stop is never refused for being late: sent late is better than not at all, and its asker
    // keeps waiting for the outcome.
    const margin = req.op === 'sync' || req.op === 'handoff' ? 0 : Math.min(PATIENCE_MARGIN_MS, req.patienceMs / 4);
    if (req.op !== 'sync' && req.op !== 'handoff' && req.op !== 'estop' && this.ctx.clock.now() - arrivedAt > req.patienceMs - margin) {
      throw this.refuse(req, new SbError('TIMEOUT', "the robot's node was too busy to take the request in time; it had no effect"));
    }
    const now = arrivedAt;
    switch (req.op) {
      case 'sync':
        return {
          node: this.nodeId(),
          epoch: this.epoch,
          seq: this.evSeq,
          online: this.link !== undefined,
          lastSeen: this.lastSeen,
          channels: [...this.channels.values()],
          latest: [...this.latest].map(([ch, s]) => [ch, s.ts, s.data]),
          lease: this.leaseInfo(),
        } satisfies Snapshot;
      case 'handoff':
        return this.handOff();
      case 'lease':
        this.inTime(now + req.remainingMs);
        return this.leaseOp(req.by, req.lease, req.ttlMs, req.force, req.reqId);
      case 'cmd': {
        const conn = this.issuer(req.node, req.conn, req.by.user);
        return this.command({ type: 'command', conn, by: req.by, reqId: req.reqId, name: req.name, args: req.args, deadline: now + req.remainingMs });
      }
      case 'estop':
        try {
          this.inTime(now + req.remainingMs);
        } catch (e) {
          throw this.refuse(req, e as SbError);
        }
        return this.estop(this.issuer(req.node, req.conn, req.by.user), req.by, req.reqId, now + req.remainingMs);
    }
  }

  /**
   * A refusal of a command or stop also goes to its issuer among the events: its node may have
   * stopped waiting for the reply (then this is how it learns that the request had no effect).
   */
  private refuse(req: RemoteRequest, e: SbError): SbError {
    if (req.op === 'cmd' || req.op === 'estop')
      this.issuer(req.node, req.conn, req.by.user).send({ t: 'error', id: req.reqId, code: e.code, message: e.message });
    return e;
  }

  /** A connection on another node, as this node's commands see their issuer: what it is sent goes out as an event. */
  private issuer(node: string, conn: string, user: UserRef): Connection {
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

  /** To the nodes that follow the robot, in order: every event while home; a connection's answers even just after. */
  private emit(frame: ServerFrame, extra: { to?: { node: string; conn: string }; lease?: LeaseInfo | null } = {}): void {
    if (this.homed || extra.to) this.deps.cluster?.emit(this.id, { epoch: this.epoch, seq: ++this.evSeq, frame, ...extra });
  }

  /** The robot attached here: this node becomes its home, taking the lease over from the previous one. */
  private async moveHere(cluster: RobotCluster): Promise<void> {
    const previous = cluster.home(this.id);
    let handed: Handoff | undefined;
    if (previous && previous !== cluster.nodeId) {
      try {
        handed = (await cluster.request(this.id, { op: 'handoff' }, REMOTE_MS)) as Handoff;
      } catch (e) {
        this.ctx.log.info({ err: e, from: previous }, 'no handoff from the previous home of the robot; its lease, if any, is lost');
      }
    }
    if (!(await this.claimHome(true, true))) throw new SbError('UNAVAILABLE', 'the robot directory cannot be written');
    const l = handed?.lease;
    if (l && l.expiresAt > this.ctx.clock.now()) this.setLease({ user: l.holder, admin: l.admin }, l.expiresAt, undefined);
  }

  /** `online`: the robot is attaching here. */
  private async claimHome(online: boolean, force: boolean): Promise<boolean> {
    const claimed = await (this.deps.cluster as RobotCluster).claim(this.id, {
      online,
      force,
      serve: (req, arrivedAt) =>
        this.ctx.self.ask({ type: 'remote', req, arrivedAt }, REMOTE_MS + 1_000).catch((e: unknown) => {
          // Stopping (passivated or shutting down): not home any more.
          throw e instanceof ActorStoppedError ? new NobodyHomeError() : e;
        }),
      moved: (node) => this.ctx.self.tell({ type: 'moved', node }),
    });
    if (claimed) {
      if (!this.homed) {
        this.epoch = randomUUID();
        this.evSeq = 0;
      }
      this.homed = true;
      this.stopFollowing('the robot moved to this node before the outcome arrived');
    }
    return claimed;
  }

  /** The robot attached to another node: its link here (if any) is replaced and the lease goes there. */
  private handOff(): Handoff {
    const l = this.lease;
    const handoff: Handoff = { lease: l ? { holder: l.holder, admin: l.admin, expiresAt: l.expiresAt } : null };
    this.clearLease();
    this.leaveHome();
    return handoff;
  }

  /** Another node wrote itself into the directory as the robot's home while this one was. */
  private moved(node: string): void {
    if (!this.homed) return;
    this.ctx.log.warn({ to: node }, 'another node took over the robot');
    this.clearLease();
    this.leaveHome();
  }

  private leaveHome(): void {
    this.homed = false;
    (this.deps.cluster as RobotCluster).release(this.id);
    if (this.link) {
      const old = this.link;
      old.close('REPLACED', 'another connection of this robot replaced this one');
      this.goOffline(old, 'the robot reconnected to another node before reporting an outcome');
    }
    // This node's watchers now hear the new home.
    if (this.watchers.size) this.follow();
  }

  private onRemote(e: RobotEvent | { lost: string } | { reconnected: true }): undefined | Promise<undefined> {
    const r = this.remote;
    if (!r) return;
    if ('lost' in e) {
      if (e.lost === r.node) this.homeLost(r);
      return;
    }
    if ('reconnected' in e) return this.afterReconnect(r);
    if (e.node !== r.node || e.epoch !== r.epoch) {
      if (e.frame.t !== 'robot' || e.frame.kind !== 'online') {
        // Lost track of the home (its node seemed gone for a while, nobody was home when this node
        // began to follow and then a node took the lease, or the home began a new stint): catch up.
        if ((r.node === undefined || e.node === r.node) && this.ctx.clock.now() - r.resyncedAt >= RESYNC_EVERY_MS) return this.resync(r, e);
        return;
      }
      // An attach moves the home; what was sent through the old one will not hear from it again.
      if (r.node !== undefined) this.failRemote(r, 'the robot moved to another node before reporting an outcome');
      r.node = e.node;
      r.epoch = e.epoch;
    } else if (e.seq <= r.seq) {
      return;
    }
    r.seq = e.seq;
    if (e.to) {
      if (e.to.node === this.nodeId()) this.deliver(r, e.to.conn, e.frame);
      return;
    }
    const f = e.frame;
    switch (f.t) {
      case 'tm': {
        this.latest.set(f.ch, { ts: f.ts, data: f.data });
        const channel = this.channels.get(f.ch);
        if (channel) this.fan(channel, f);
        return;
      }
      case 'robot':
        if (f.kind === 'deleted') {
          this.deleted();
          return;
        }
        if (f.kind === 'online') {
          r.online = true;
          const lease = r.lease;
          r.lease = e.lease ?? null;
          this.cameOnline(f.channels ?? []);
          if (this.watchers.size) this.deps.fanout.publish(this.topic, f);
          // A lease this node had not heard of comes after the robot's `online`.
          this.tellChanges(true, lease);
          return;
        }
        if (f.kind === 'offline') {
          r.online = false;
          this.lastSeen = f.lastSeen ?? this.ctx.clock.now();
        }
        break;
      case 'lease':
        r.lease = f.lease;
        break;
      default:
        return;
    }
    if (this.watchers.size) this.deps.fanout.publish(this.topic, f);
  }

  private async resync(r: Remote, e: RobotEvent): Promise<undefined> {
    r.resyncedAt = this.ctx.clock.now();
    await this.syncWith(e.node, this.ctx.clock.now() + REMOTE_MS, true);
    // The event itself, if the snapshot predates it.
    return r.node === e.node && r.epoch === e.epoch ? this.onRemote(e) : undefined;
  }

  /** This node's NATS link was down: whatever it missed of the home, a snapshot brings back. */
  private async afterReconnect(r: Remote): Promise<undefined> {
    const home = this.homeNode();
    if (home === undefined && r.node !== undefined) this.homeLost(r);
    else if (home !== undefined && home !== HERE) await this.syncWith(home, this.ctx.clock.now() + REMOTE_MS, true);
    return undefined;
  }

  /** After a snapshot: this node's watchers hear what changed since they last heard. */
  private tellChanges(online: boolean, lease: LeaseInfo | null): void {
    const r = this.remote;
    if (!r || this.watchers.size === 0) return;
    if (r.online !== online) {
      const frame: ServerFrame = r.online
        ? { t: 'robot', robot: this.id, kind: 'online', channels: [...this.channels.values()] }
        : { t: 'robot', robot: this.id, kind: 'offline', lastSeen: this.lastSeen ?? this.ctx.clock.now() };
      this.deps.fanout.publish(this.topic, frame);
    }
    if (r.lease?.holder.id !== lease?.holder.id || r.lease?.expiresAt !== lease?.expiresAt) {
      // Taken or ended while this node did not know the robot's home.
      this.deps.fanout.publish(this.topic, { t: 'lease', robot: this.id, lease: r.lease, reason: r.lease ? 'acquired' : 'released' });
    }
  }

  /** An answer of the home to one of this node's connections. */
  private deliver(r: Remote, connId: string, frame: ServerFrame): void {
    let conn: Connection;
    if (frame.t === 'queued' || frame.t === 'error') {
      const key = `${connId}:${frame.id}`;
      const w = r.waiting.get(key);
      if (!w) return; // already reported as unknown
      conn = w.conn;
      this.ctx.clock.clearTimeout(w.timer);
      r.waiting.delete(key);
      if (frame.t === 'queued') {
        const wait = w.outcomeBy - this.ctx.clock.now() + REMOTE_GRACE_MS;
        r.commands.set(frame.cmd, { conn, timer: this.ctx.clock.setTimeout(() => this.ctx.self.tell({ type: 'remoteTimeout', command: frame.cmd }), wait) });
      }
    } else if (frame.t === 'cmd') {
      const c = r.commands.get(frame.cmd);
      if (!c) return; // already reported as lost
      conn = c.conn;
      if (FINAL.has(frame.stage)) {
        this.ctx.clock.clearTimeout(c.timer);
        r.commands.delete(frame.cmd);
      }
    } else {
      return;
    }
    conn.send(frame);
    this.unfollowIfIdle();
  }

  /** No final stage (or no `queued`) came from the home in time. */
  private remoteTimeout(key: string): void {
    const r = this.remote;
    if (!r) return;
    const unknown = "no outcome came from the robot's node; it is unknown whether the command ran";
    const c = r.commands.get(key);
    if (c) {
      r.commands.delete(key);
      c.conn.send({ t: 'cmd', robot: this.id, cmd: key, stage: 'lost', ts: this.ctx.clock.now(), detail: unknown });
      this.unfollowIfIdle();
      return;
    }
    const w = r.waiting.get(key);
    if (!w) return;
    r.waiting.delete(key);
    w.conn.send({ t: 'error', id: w.reqId, code: 'UNAVAILABLE', message: `${unknown}; check the audit log before sending it again` });
    this.unfollowIfIdle();
  }

  /** Ends what was sent through the home: it will not report on it. */
  private failRemote(r: Remote, reason: string): void {
    const now = this.ctx.clock.now();
    for (const [id, c] of r.commands) {
      this.ctx.clock.clearTimeout(c.timer);
      c.conn.send({ t: 'cmd', robot: this.id, cmd: id, stage: 'lost', ts: now, detail: reason });
    }
    for (const w of r.waiting.values()) {
      this.ctx.clock.clearTimeout(w.timer);
      w.conn.send({ t: 'error', id: w.reqId, code: 'UNAVAILABLE', message: `${reason}; check the audit log before sending it again` });
    }
    r.commands.clear();
    r.waiting.clear();
  }

  /** The home's node left the cluster: the robot is offline until it attaches elsewhere, and its lease is gone. */
  private homeLost(r: Remote): void {
    r.node = undefined;
    this.failRemote(r, "the robot's node left the cluster before reporting an outcome; it is unknown whether the command ran");
    if (r.online) {
      r.online = false;
      this.lastSeen = this.ctx.clock.now();
      if (this.watchers.size) this.deps.fanout.publish(this.topic, { t: 'robot', robot: this.id, kind: 'offline', lastSeen: this.lastSeen });
    }
    if (r.lease) {
      r.lease = null;
      if (this.watchers.size) this.deps.fanout.publish(this.topic, { t: 'lease', robot: this.id, lease: null, reason: 'node_lost' });
    }
    this.unfollowIfIdle();
  }

  private stopFollowing(reason: string): void {
    const r = this.remote;
    if (!r) return;
    this.failRemote(r, reason);
    r.unfollow();
    this.remote = undefined;
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
    if (!robot) {
      this.deleted();
      return;
    }
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
    this.stopFollowing('the robot was deleted');
    if (this.homed) this.deps.cluster?.release(this.id);
    this.homed = false;
  }

  /** To this node's watchers, and to the other nodes' if this one is the robot's home. */
  private broadcast(frame: ServerFrame): void {
    if (this.watchers.size) this.deps.fanout.publish(this.topic, frame);
    this.emit(frame, frame.t === 'robot' && frame.kind === 'online' ? { lease: this.leaseInfo() } : {});
  }
}
