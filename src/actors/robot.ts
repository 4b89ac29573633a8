// The robot actor: one per robot with a live link or watchers on this node, and the only place its
// live state changes on this node. It knows who may do what (owner, grants; told when they change)
// and routes each request to where it is decided: the robot's home (robot-home.ts: link, lease,
// commands, audit), here or, through the robot cluster port, on another node, which this node then
// follows (robot-follower.ts). On one node the port says this node is every robot's home, so the
// same code runs alone and in a cluster.

import { randomUUID } from 'node:crypto';
import {
  defaultRobotTimings,
  type RemoteReplies,
  type RemoteReply,
  type RemoteRequest,
  type Requester,
  type RobotCluster,
  type RobotTimings,
} from '../cluster/robots.js';
import { NobodyHomeError, notFound, SbError } from '../errors.js';
import { CloseCode, type LeasedFrame, type LeaseInfo, type RobotRoleName } from '../protocol/frames.js';
import { type Channel, type RobotStage, Tag } from '../protocol/robot.js';
import { canView, mayHoldLease, requireOperator, roleOf } from '../robots/robot-rules.js';
import type { LiveStatus } from '../robots/robots-service.js';
import type { Conflater, Connection, Fanout, RobotConnection } from './ports.js';
import { type FollowerMsg, RobotFollower } from './robot-follower.js';
import { type CommandRequest, type HomeDeps, type HomeMsg, RobotHome } from './robot-home.js';
import { fenceReplay, replay } from './robot-replay.js';
import { RobotView, type Watcher } from './robot-view.js';
import { type Actor, type ActorContext, ActorStoppedError } from './runtime.js';

export type { Requester };

export type RobotMsg =
  | HomeMsg
  | FollowerMsg
  | { type: 'attach'; conn: RobotConnection; channels: Channel[] }
  | { type: 'detach'; conn: RobotConnection }
  /** The robot advertised or withdrew channels: its whole channel list now. */
  | { type: 'channels'; conn: RobotConnection; channels: Channel[] }
  | { type: 'telemetry'; conn: RobotConnection; channel: number; ts: number; payload: unknown; seq?: number | undefined }
  | { type: 'status'; conn: RobotConnection; command: string; stage: RobotStage; detail: unknown }
  | {
      type: 'watch';
      conn: Connection;
      by: Requester;
      reqId: number;
      deadline: number;
      channels?: string[] | undefined;
      /** Replay each named reliable channel's stored samples after this seq first. */
      since?: Record<string, number> | undefined;
    }
  | { type: 'unwatch'; conn: Connection }
  /** A watcher's `since` replay is over: its held live frames go out and it joins the live stream. */
  | { type: 'caughtUp'; watcher: Watcher; upTo: Map<string, number> }
  | ({ type: 'command' } & CommandRequest)
  | { type: 'estop'; conn: Connection; by: Requester; reqId: number; deadline: number }
  | { type: 'lease'; by: Requester; op: 'acquire' | 'renew' | 'release'; ttlMs: number; force: boolean; reqId: number; deadline: number }
  | { type: 'accessChanged' }
  | { type: 'certificatesChanged' }
  | { type: 'deleted' }
  | { type: 'live' }
  /** A request of another node's actor: this node is the robot's home. */
  | { type: 'remote'; req: RemoteRequest; arrivedAt: number }
  /** Another node became the robot's home while this one was. */
  | { type: 'moved'; node: string };

/** The reply to each message that has one (the others answer undefined). */
export interface RobotReplies {
  /** [channelId, lastStoredSeq] of the robot's reliable channels with stored samples, for WELCOME. */
  attach: [number, number][];
  lease: LeasedFrame;
  live: LiveStatus;
  remote: RemoteReply;
}
export type RobotReply = RobotReplies[keyof RobotReplies] | undefined;

export interface RobotDeps extends Omit<HomeDeps, 'timings'> {
  fanout: Fanout & Conflater;
  /** The robot's other nodes (robots-local.ts on one node). */
  cluster: RobotCluster;
  timings?: Partial<RobotTimings>;
}

/** `homeNode()`: this node decides (one node, or this node is the robot's home). Not a string: any string may be a node id. */
const HERE = Symbol('here');
/** How long an attaching robot's numbering waits for the write in flight of its previous link, ms. */
const QUIESCE_MS = 5_000;

export class RobotActor implements Actor<RobotMsg, RobotReply> {
  private missing = false;
  private name = '';
  private ownerId = '';
  private grants = new Map<string, 'viewer' | 'operator'>();
  private readonly view: RobotView;
  private readonly home: RobotHome;
  /** While another node is (or may become) the robot's home and this one has watchers or commands there. */
  private follower: RobotFollower | undefined;
  private readonly timings: RobotTimings;
  private readonly cluster: RobotCluster;

  constructor(
    private readonly id: string,
    private readonly ctx: ActorContext<RobotMsg, RobotReply, RobotReplies>,
    private readonly deps: RobotDeps,
  ) {
    this.timings = { ...defaultRobotTimings, ...deps.timings };
    this.cluster = deps.cluster;
    this.view = new RobotView(id, deps.fanout);
    this.home = new RobotHome(this.view, ctx, { ...deps, timings: this.timings }, (by) => this.roleOf(by));
  }

  async start(): Promise<void> {
    const robot = await this.deps.store.robots.byId(this.id);
    if (!robot) {
      this.missing = true;
      return;
    }
    this.name = robot.name;
    this.ownerId = robot.ownerId;
    this.view.lastSeen = robot.lastSeenAt?.getTime() ?? null;
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
    return this.home.idle() && this.view.watchers.size === 0 && (this.follower?.idle() ?? true);
  }

  /** A robot that does not exist (or was deleted) is not kept for whoever asked about it. */
  passivateNow(): boolean {
    return this.missing && this.canPassivate();
  }

  async stop(): Promise<void> {
    // The other nodes' watchers learn that the lease ends with this node's stint as home.
    if (this.home.leaseInfo()) this.home.emit(this.view.leaseFrame(null, 'node_lost'));
    const audits = this.home.shutDown('the node shut down before the robot reported an outcome');
    this.stopFollowing('the node shut down before the outcome arrived');
    this.leaveHomeQuietly();
    // Their last audit writes (the outcome `lost`) land before the store closes.
    await audits;
  }

  handle(msg: RobotMsg): RobotReply | Promise<RobotReply> {
    switch (msg.type) {
      case 'attach':
        return this.attach(msg.conn, msg.channels);
      case 'detach':
        if (msg.conn === this.home.link) this.home.goOffline(msg.conn, 'the robot disconnected before reporting an outcome');
        return undefined;
      case 'channels':
        return this.channels(msg.conn, msg.channels);
      case 'telemetry':
        if (msg.conn === this.home.link) this.home.telemetry(msg.channel, msg.ts, msg.payload, msg.seq);
        return undefined;
      case 'status':
        if (msg.conn === this.home.link) this.home.robotStatus(msg.command, msg.stage, msg.detail);
        return undefined;
      case 'watch':
        this.inTime(msg.deadline);
        return this.knowing(msg.by, () => this.watch(msg.conn, msg.by, msg.reqId, msg.deadline, msg.channels, msg.since));
      case 'unwatch':
        this.view.removeWatcher(msg.conn);
        this.unfollowIfIdle();
        return undefined;
      case 'caughtUp':
        this.view.caughtUp(msg.watcher, msg.upTo);
        return undefined;
      case 'command':
        return this.knowing(msg.by, () => this.command(msg));
      case 'estop':
        this.inTime(msg.deadline);
        return this.knowing(msg.by, () => this.estop(msg.conn, msg.by, msg.reqId, msg.deadline));
      case 'lease':
        this.inTime(msg.deadline);
        return this.knowing(msg.by, () => this.leaseRequest(msg));
      case 'audited':
      case 'leaseExpired':
      case 'commandTimeout':
      case 'certificatesLoaded':
      case 'uplinkStored':
      case 'uplinkFailed':
        this.home.handle(msg);
        return undefined;
      case 'accessChanged':
        return this.reloadAccess();
      case 'certificatesChanged':
        this.home.checkCertificate();
        return undefined;
      case 'deleted':
        this.deleted();
        return undefined;
      case 'live':
        return this.live();
      case 'remote':
        return this.knowing('by' in msg.req ? msg.req.by : undefined, () => this.serve(msg.req, msg.arrivedAt));
      case 'remoteEvent':
      case 'remoteTimeout':
        return this.follower?.handle(msg);
      case 'moved':
        this.moved(msg.node);
        return undefined;
    }
  }

  // ---- access ----

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
    return roleOf(this.ownerId, this.grants.get(by.user.id), { id: by.user.id, admin: by.admin });
  }

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
    if (!robot) {
      this.deleted();
      return undefined;
    }
    this.missing = false;
    this.name = robot.name;
    this.ownerId = robot.ownerId;
    this.grants = new Map(grants.map((g) => [g.userId, g.role]));
    // Watchers and the lease holder who lost access are dropped.
    this.view.dropWatchers((w) => canView(this.ownerId, this.grants.get(w.userId), { id: w.userId, admin: w.admin }), {
      t: 'robot',
      robot: this.id,
      kind: 'access_revoked',
    });
    this.home.checkLease((h) => mayHoldLease(this.ownerId, this.grants.get(h.user.id), { id: h.user.id, admin: h.admin }));
    return undefined;
  }

  private deleted(): void {
    this.missing = true;
    if (this.home.link) {
      const link = this.home.link;
      link.close('UNKNOWN_CERTIFICATE', 'the robot was deleted');
      this.home.goOffline(link, 'the robot was deleted');
    }
    this.home.clearLease();
    this.home.broadcast({ t: 'robot', robot: this.id, kind: 'deleted' });
    this.view.dropWatchers(() => false, undefined);
    this.stopFollowing('the robot was deleted');
    this.leaveHomeQuietly();
  }

  // ---- the users' side ----

  private online(): boolean {
    return this.home.link !== undefined || (this.follower?.online ?? false);
  }

  private leaseInfo(): LeaseInfo | null {
    return this.home.leaseInfo() ?? this.follower?.lease ?? null;
  }

  private async watch(
    conn: Connection,
    by: Requester,
    reqId: number,
    deadline: number,
    channels: string[] | undefined,
    since: Record<string, number> | undefined,
  ): Promise<undefined> {
    const role = this.roleOf(by);
    try {
      await this.sync(deadline);
    } catch (e) {
      this.unfollowIfIdle();
      throw e;
    }
    if (conn.closed) {
      this.unfollowIfIdle();
      return undefined;
    }
    const chosen = channels ? new Set(channels) : undefined;
    // The replay's fence is taken in the same mailbox step that registers the watcher with those
    // channels' live frames held: none falls between replay and live, and none comes twice.
    const unstored = this.homeNode() === HERE ? this.home.uplink.unstored() : [];
    const parts = since ? fenceReplay(this.view, since, chosen, unstored) : [];
    const w: Watcher = { conn, userId: by.user.id, admin: by.admin, ...(chosen ? { channels: chosen } : {}) };
    this.view.addWatcher(
      w,
      { t: 'watching', id: reqId, name: this.name, role, online: this.online(), lease: this.leaseInfo() },
      parts.map((p) => p.name),
    );
    if (parts.length) {
      // Beside the mailbox, at the socket's pace; `caughtUp` (a mailbox step) then releases the held frames.
      const upTo = new Map(parts.flatMap((p): [string, number][] => (p.fence === undefined ? [] : [[p.name, p.fence]])));
      replay(this.id, this.deps.store, conn, parts, upTo, () => this.view.current(w))
        .catch((e: unknown) => this.ctx.log.warn({ err: e, conn: conn.id }, 'a watch replay failed; the watcher goes on live past a jump in seq'))
        .finally(() => {
          // Not taken (the mailbox is full): a watcher still replaying would wait forever; one that left has nothing to wait for.
          if (!this.ctx.self.tell({ type: 'caughtUp', watcher: w, upTo }) && this.view.current(w))
            conn.close(CloseCode.SLOW_CONSUMER, 'the robot is overloaded: reconnect and watch again');
        });
    }
    // The sync may have found nobody home and stopped following; a watcher always hears the robot come online.
    if (this.homeNode() !== HERE) this.follow();
    return undefined;
  }

  /** Live state for REST. */
  private async live(): Promise<LiveStatus> {
    try {
      await this.sync(this.ctx.clock.now() + this.timings.remoteMs);
      return { online: this.online(), channels: [...this.view.channels.values()], lease: this.leaseInfo() };
    } finally {
      this.unfollowIfIdle();
    }
  }

  private async command(m: Extract<RobotMsg, { type: 'command' }>): Promise<undefined> {
    requireOperator(this.roleOf(m.by), m.by.admin, 'send commands');
    const home = this.homeNode();
    if (home === HERE) return this.home.command(m);
    if (!home) throw new SbError('ROBOT_OFFLINE', 'the robot is offline');
    const req = { op: 'cmd', by: m.by, node: this.cluster.nodeId, conn: m.conn.id, reqId: m.reqId, name: m.name, args: m.args ?? null } as const;
    await this.follow().forward(home, m.conn, m.deadline, m.deadline, req);
    return undefined;
  }

  private async estop(conn: Connection, by: Requester, reqId: number, deadline: number): Promise<undefined> {
    requireOperator(this.roleOf(by), by.admin, 'send an emergency stop');
    const home = this.homeNode();
    if (home !== HERE && home !== undefined) {
      const req = { op: 'estop', by, node: this.cluster.nodeId, conn: conn.id, reqId } as const;
      try {
        await this.follow().forward(home, conn, deadline, this.ctx.clock.now() + this.timings.estopTimeoutMs, req);
        return undefined;
      } catch (e) {
        // Nobody home after all: recorded here, as a stop to an offline robot.
        if (!(e instanceof NobodyHomeError)) throw e;
      }
    }
    return this.home.estop(conn, by, reqId);
  }

  private async leaseRequest(m: Extract<RobotMsg, { type: 'lease' }>): Promise<LeasedFrame> {
    let home = this.homeNode();
    const here = () => this.home.leaseOp(m.by, m.op, m.ttlMs, m.force, m.reqId);
    if (home === HERE) return here();
    requireOperator(this.roleOf(m.by), m.by.admin, 'hold the control lease');
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
        const patienceMs = Math.min(this.timings.remoteMs, remainingMs);
        return await this.cluster.request(this.id, { op: 'lease', by, lease: op, ttlMs, force, reqId, remainingMs, patienceMs }, patienceMs);
      } catch (e) {
        if (!(e instanceof NobodyHomeError)) throw e;
        home = undefined;
      }
    }
    throw new SbError('UNAVAILABLE', 'the control lease of this robot is moving between nodes; retry');
  }

  // ---- where the robot is decided: here, at another node (followed), or nowhere yet ----

  /** Where the robot's requests are decided: here (one node, or this node is home), on another node, or nowhere yet. */
  private homeNode(): typeof HERE | string | undefined {
    if (this.home.homed) return HERE;
    const home = this.cluster.home(this.id);
    return home === this.cluster.nodeId ? HERE : home;
  }

  /** Brings the live state up to date before it is shown, when another node is the robot's home. */
  private async sync(deadline: number): Promise<void> {
    const home = this.homeNode();
    if (home === HERE) return;
    // Followed even while nobody is home: the robot coming online anywhere is heard here.
    const f = this.follow();
    if (home) await f.syncWith(home, deadline);
  }

  private follow(): RobotFollower {
    this.follower ??= new RobotFollower(this.view, this.ctx, this.cluster, this.timings, {
      deleted: () => this.deleted(),
      maybeIdle: () => this.unfollowIfIdle(),
      home: () => {
        const h = this.homeNode();
        return h === HERE ? this.cluster.nodeId : h;
      },
    });
    return this.follower;
  }

  /** Follows the robot's home only while this node has watchers of it or commands through it. */
  private unfollowIfIdle(): void {
    if (this.follower && this.view.watchers.size === 0 && this.follower.idle()) this.stopFollowing('');
  }

  private stopFollowing(reason: string): void {
    this.follower?.stop(reason);
    this.follower = undefined;
  }

  /** The robot attached here: this node becomes its home (taking the lease over from the previous one), then holds its link. */
  private async attach(conn: RobotConnection, channels: Channel[]): Promise<[number, number][]> {
    if (this.missing) {
      conn.close('UNKNOWN_CERTIFICATE', 'the robot no longer exists');
      return [];
    }
    if (!this.home.homed) await this.moveHere();
    else this.cluster.setOnline(this.id, true);
    // Where the numbering of its reliable channels stands, before any of its samples is taken
    // (once the previous link's write in flight, if any, is in the store).
    await this.home.uplink.quiesce(QUIESCE_MS);
    const lastStored = await this.home.uplink.load(channels);
    this.home.attached(conn, channels);
    return lastStored;
  }

  /** The robot advertised or withdrew channels: new reliable ones' numbering is read first. */
  private async channels(conn: RobotConnection, channels: Channel[]): Promise<undefined> {
    if (conn !== this.home.link) return undefined;
    const added = channels.filter((c) => c.delivery === 'reliable' && this.view.channels.get(c.id)?.name !== c.name);
    const stored = added.length ? await this.home.uplink.load(added) : [];
    if (conn !== this.home.link) return undefined;
    // A robot numbers above any ACK it has received: one that restarted learns where to continue.
    for (const [channel, seq] of stored) conn.send({ tag: Tag.ACK, channel, seq });
    this.home.channelsChanged(channels);
    return undefined;
  }

  private async moveHere(): Promise<void> {
    const previous = this.cluster.home(this.id);
    let handed: RemoteReplies['handoff'] | undefined;
    if (previous && previous !== this.cluster.nodeId) {
      try {
        handed = await this.cluster.request(this.id, { op: 'handoff' }, this.timings.remoteMs);
      } catch (e) {
        this.ctx.log.info({ err: e, from: previous }, 'no handoff from the previous home of the robot; its lease, if any, is lost');
      }
    }
    if (!(await this.claimHome(true, true))) throw new SbError('UNAVAILABLE', 'the robot directory cannot be written');
    const l = handed?.lease;
    if (l && l.expiresAt > this.ctx.clock.now()) this.home.setLease({ user: l.holder, admin: l.admin }, l.expiresAt, undefined);
  }

  /** `online`: the robot is attaching here. */
  private async claimHome(online: boolean, force: boolean): Promise<boolean> {
    const claimed = await this.cluster.claim(this.id, {
      online,
      force,
      serve: (req, arrivedAt) =>
        this.ctx.self.ask({ type: 'remote', req, arrivedAt }, this.timings.remoteMs + 1_000).catch((e: unknown) => {
          // Stopping (passivated or shutting down): not home any more.
          throw e instanceof ActorStoppedError ? new NobodyHomeError() : e;
        }),
      moved: (node) => this.ctx.self.tell({ type: 'moved', node }),
    });
    if (claimed) {
      if (!this.home.homed) {
        this.home.epoch = randomUUID();
        this.home.evSeq = 0;
      }
      this.home.homed = true;
      this.stopFollowing('the robot moved to this node before the outcome arrived');
    }
    return claimed;
  }

  /** A request of another node: this node is the robot's home. */
  private serve(req: RemoteRequest, arrivedAt: number): RemoteReply | Promise<RemoteReply> {
    if (!this.home.homed) throw new NobodyHomeError();
    if (req.op === 'sync') return this.home.snapshot();
    if (req.op === 'handoff') {
      // The robot attached to another node: its link here (if any) is replaced and the lease goes there.
      const handoff = { lease: this.home.leaseHandoff() };
      this.home.clearLease();
      this.leaveHome();
      // The next home reads where the numbering stands once this node's write in flight is stored.
      return this.home.uplink.quiesce(Math.min(QUIESCE_MS, this.timings.remoteMs / 2)).then(() => handoff);
    }
    const deadline = arrivedAt + req.remainingMs;
    // The asker gave up waiting (minus a margin for the answer's way back): taking it now would act
    // behind its back. A stop is never refused for being late: sent late is better than not at all.
    const late = () => {
      const margin = Math.min(this.timings.patienceMarginMs, req.patienceMs / 4);
      if (this.ctx.clock.now() - arrivedAt > req.patienceMs - margin) {
        throw new SbError('TIMEOUT', "the robot's node was too busy to take the request in time; it had no effect");
      }
    };
    if (req.op === 'lease') {
      late();
      this.inTime(deadline);
      return this.home.leaseOp(req.by, req.lease, req.ttlMs, req.force, req.reqId);
    }
    const issuer = this.home.issuer(req.node, req.conn, req.by.user);
    try {
      if (req.op === 'cmd') late();
      else this.inTime(deadline);
    } catch (e) {
      // The issuer also hears the refusal among the events: its node may have stopped waiting for the reply.
      if (e instanceof SbError) issuer.send({ t: 'error', id: req.reqId, code: e.code, message: e.message });
      throw e;
    }
    if (req.op === 'estop') return this.home.estop(issuer, req.by, req.reqId);
    return this.home.command({ conn: issuer, by: req.by, reqId: req.reqId, name: req.name, args: req.args, deadline });
  }

  /** Another node wrote itself into the directory as the robot's home while this one was. */
  private moved(node: string): void {
    if (!this.home.homed) return;
    this.ctx.log.warn({ to: node }, 'another node took over the robot');
    this.home.clearLease();
    this.leaveHome();
  }

  private leaveHome(): void {
    this.leaveHomeQuietly();
    const link = this.home.link;
    if (link) {
      link.close('REPLACED', 'another connection of this robot replaced this one');
      this.home.goOffline(link, 'the robot reconnected to another node before reporting an outcome');
    }
    // This node's watchers now hear the new home.
    if (this.view.watchers.size) this.follow();
  }

  private leaveHomeQuietly(): void {
    if (this.home.homed) this.cluster.release(this.id);
    this.home.homed = false;
  }
}
