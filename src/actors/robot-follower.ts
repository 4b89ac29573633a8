// A node that is not a robot's home follows it while it has watchers of it or requests through it:
// the home's numbered events update this node's picture of the robot and reach its watchers, and
// the answers to this node's commands come back among them. A home that falls silent is reported
// after the command's deadline and a grace period (`lost`); a home whose node leaves the cluster
// takes the robot offline and its lease with it.

import type { CommandRemoteRequest, EstopRemoteRequest, FollowEvent, RobotCluster, RobotEvent, RobotTimings } from '../cluster/robots.js';
import { NoAnswerError, NobodyHomeError } from '../errors.js';
import type { CommandStageName, LeaseInfo, ServerFrame } from '../protocol/frames.js';
import { type Channel, schemaBytes } from '../protocol/robot.js';
import type { Connection } from './ports.js';
import type { RobotView } from './robot-view.js';
import type { PartContext } from './runtime.js';

/** What the follower sends itself through the actor's mailbox. */
export type FollowerMsg =
  /** An event of the robot's home on another node; a node left the cluster; this node's NATS link came back. */
  | { type: 'remoteEvent'; event: FollowEvent }
  /** A command sent through the home got no final stage (or no `queued`) in time. */
  | { type: 'remoteTimeout'; command: string };

export interface FollowerHooks {
  /** The home reported the robot deleted. */
  deleted(): void;
  /** Nothing may be left to follow for: the actor decides whether to stop. */
  maybeIdle(): void;
  /** The robot's home per the directory now (undefined: nobody); asked after a reconnection. */
  home(): string | undefined;
}

/** Whether two channel lists say the same (their schemas compared by size: a changed schema comes with an event anyway). */
function sameChannels(a: Channel[], b: Channel[]): boolean {
  const key = (cs: Channel[]) => JSON.stringify(cs.map((c) => [c.id, c.name, c.encoding, c.schema, c.delivery, c.schemaEncoding ?? null, schemaBytes(c)]));
  return key(a) === key(b);
}

/** A command's final stages. */
const FINAL = new Set<CommandStageName>(['completed', 'rejected', 'failed', 'timeout', 'lost']);

/** A command or stop as this node hands it over, before the time left is known. */
type Forwarded = Omit<CommandRemoteRequest, 'remainingMs' | 'patienceMs'> | Omit<EstopRemoteRequest, 'remainingMs' | 'patienceMs'>;

export class RobotFollower {
  /** The home whose events apply (undefined: nobody is home, or not known yet), and its stint. */
  node: string | undefined;
  private epoch = '';
  /** The last of its events applied. */
  private seq = 0;
  /** When an unknown home's event last made this node sync (at most once per resyncEveryMs). */
  private resyncedAt = -Infinity;
  online = false;
  lease: LeaseInfo | null = null;
  private readonly unfollow: () => void;
  /** Commands and stops this node's connections sent through the home, by `<conn>:<reqId>` until their `queued` (or error) arrives, with when their outcome is due. */
  private readonly waiting = new Map<string, { conn: Connection; reqId: number; outcomeBy: number; timer: unknown }>();
  /** Their commands until the final stage: the issuer and a timer for a home that never answers. */
  private readonly commands = new Map<string, { conn: Connection; timer: unknown }>();

  constructor(
    private readonly view: RobotView,
    private readonly ctx: PartContext<FollowerMsg>,
    private readonly cluster: RobotCluster,
    private readonly timings: RobotTimings,
    private readonly hooks: FollowerHooks,
  ) {
    this.unfollow = cluster.follow(view.id, (event) => {
      if (!ctx.self.tell({ type: 'remoteEvent', event })) ctx.log.warn('robot mailbox full; an event of its home was dropped');
    });
  }

  /** Nothing sent through the home is waiting for an answer. */
  idle(): boolean {
    return this.commands.size === 0 && this.waiting.size === 0;
  }

  handle(msg: FollowerMsg): undefined | Promise<undefined> {
    if (msg.type === 'remoteTimeout') {
      this.remoteTimeout(msg.command);
      return undefined;
    }
    return this.onEvent(msg.event);
  }

  /** Stops following: what was sent through the home ends with `reason`. */
  stop(reason: string): void {
    this.failRemote(reason);
    this.unfollow();
  }

  /** Takes the robot's state from `home`, unless already following it (and not `again`). */
  async syncWith(home: string, deadline: number, again = false): Promise<void> {
    if (this.node === home && !again) return;
    const now = this.ctx.clock.now();
    try {
      // Subscribed first, asked after: every event after the snapshot arrives, and those before it are skipped by seq.
      const s = await this.cluster.request(this.view.id, { op: 'sync' }, Math.min(this.timings.remoteMs, deadline - now));
      if (this.node !== undefined && this.node !== s.node) this.failRemote('the robot moved to another node before reporting an outcome');
      const { online, lease } = this;
      this.node = s.node;
      this.epoch = s.epoch;
      this.seq = s.seq;
      this.online = s.online;
      this.lease = s.lease;
      this.view.lastSeen = s.lastSeen;
      const channelsBefore = [...this.view.channels.values()];
      this.view.setChannels(s.channels);
      this.view.latest = new Map(s.latest.map(([ch, ts, data]) => [ch, { ts, data }]));
      for (const [name, seq] of s.numbered ?? []) if (seq > (this.view.numbered.get(name) ?? -1)) this.view.numbered.set(name, seq);
      for (const [name, seq, ts, data] of s.unstored ?? []) this.view.remember(name, { seq, ts, data });
      this.tellChanges(online, lease);
      // Advertised or withdrawn while this node did not hear it (an `online` above already says so).
      if (online && this.online && !sameChannels(channelsBefore, s.channels)) this.view.publish({ t: 'channels', robot: this.view.id, channels: s.channels });
    } catch (e) {
      if (!(e instanceof NobodyHomeError)) throw e;
      // Nobody is home after all (the home let go of an offline robot, or its node just died).
      if (this.node !== undefined) this.homeLost();
    }
  }

  /**
   * Sends a command or stop to the robot's home, which answers the issuer through its events:
   * `queued` and the stages, or an error. A home that falls silent is reported here, after
   * `outcomeBy` and a grace period, as `lost` (or as an error if it never queued the command).
   * NobodyHomeError: nobody is home after all (the caller decides what that means).
   */
  async forward(home: string, conn: Connection, deadline: number, outcomeBy: number, req: Forwarded): Promise<void> {
    await this.syncWith(home, deadline);
    if (this.node === undefined) throw new NobodyHomeError();
    const now = this.ctx.clock.now();
    const key = `${conn.id}:${req.reqId}`;
    const grace = this.timings.remoteGraceMs;
    this.waiting.set(key, {
      conn,
      reqId: req.reqId,
      outcomeBy,
      timer: this.ctx.clock.setTimeout(() => this.ctx.self.tell({ type: 'remoteTimeout', command: key }), outcomeBy - now + grace),
    });
    const patienceMs = Math.min(this.timings.remoteMs, deadline - now);
    try {
      const timed = { remainingMs: deadline - now, patienceMs };
      await this.cluster.request(this.view.id, req.op === 'cmd' ? { ...req, ...timed } : { ...req, ...timed }, patienceMs);
    } catch (e) {
      // No answer: the home may still have taken it, so its `queued` (or the timer) answers the issuer.
      if (e instanceof NoAnswerError) return;
      const w = this.waiting.get(key);
      // Answered already, among the home's events (a refusal it also sent that way).
      if (!w) return;
      this.ctx.clock.clearTimeout(w.timer);
      this.waiting.delete(key);
      this.hooks.maybeIdle();
      throw e;
    }
  }

  private onEvent(e: FollowEvent): undefined | Promise<undefined> {
    if (e.kind === 'lost') {
      if (e.node === this.node) this.homeLost();
      return undefined;
    }
    if (e.kind === 'reconnected') return this.afterReconnect();
    if (e.node !== this.node || e.epoch !== this.epoch) {
      if (e.frame.t !== 'robot' || e.frame.kind !== 'online') {
        // Lost track of the home (its node seemed gone for a while, nobody was home when this node
        // began to follow and then a node took the lease, or the home began a new stint): catch up.
        if ((this.node === undefined || e.node === this.node) && this.ctx.clock.now() - this.resyncedAt >= this.timings.resyncEveryMs) return this.resync(e);
        return undefined;
      }
      // An attach moves the home; what was sent through the old one will not hear from it again.
      if (this.node !== undefined) this.failRemote('the robot moved to another node before reporting an outcome');
      this.node = e.node;
      this.epoch = e.epoch;
    } else if (e.seq <= this.seq) {
      return undefined;
    }
    this.seq = e.seq;
    if (e.to) {
      if (e.to.node === this.cluster.nodeId) this.deliver(e.to.conn, e.frame);
      return undefined;
    }
    this.apply(e);
    return undefined;
  }

  /** An event for every watcher: this node's picture changes, and its watchers hear it. */
  private apply(e: RobotEvent): void {
    const f = e.frame;
    switch (f.t) {
      case 'tm':
        this.view.sample(f.ch, f.ts, f.data, f);
        return;
      case 'robot':
        if (f.kind === 'deleted') {
          this.hooks.deleted();
          return;
        }
        if (f.kind === 'online') {
          this.online = true;
          const lease = this.lease;
          this.lease = e.lease ?? null;
          this.view.cameOnline(f.channels ?? [], this.ctx.clock.now());
          this.view.publish(f);
          // A lease this node had not heard of comes after the robot's `online`.
          this.tellChanges(true, lease);
          return;
        }
        if (f.kind === 'offline') {
          this.online = false;
          this.view.lastSeen = f.lastSeen ?? this.ctx.clock.now();
        }
        break;
      case 'lease':
        this.lease = f.lease;
        break;
      case 'channels':
        this.view.setChannels(f.channels);
        break;
      default:
        return;
    }
    this.view.publish(f);
  }

  private async resync(e: RobotEvent): Promise<undefined> {
    this.resyncedAt = this.ctx.clock.now();
    await this.syncWith(e.node, this.ctx.clock.now() + this.timings.remoteMs, true);
    // The event itself, if the snapshot predates it.
    return this.node === e.node && this.epoch === e.epoch ? this.onEvent(e) : undefined;
  }

  /** This node's NATS link was down: whatever it missed of the home, a snapshot brings back. */
  private async afterReconnect(): Promise<undefined> {
    const home = this.hooks.home();
    if (home === undefined && this.node !== undefined) this.homeLost();
    else if (home !== undefined && home !== this.cluster.nodeId) await this.syncWith(home, this.ctx.clock.now() + this.timings.remoteMs, true);
    return undefined;
  }

  /** After a snapshot: this node's watchers hear what changed since they last heard. */
  private tellChanges(online: boolean, lease: LeaseInfo | null): void {
    if (this.view.watchers.size === 0) return;
    if (this.online !== online) {
      const frame: ServerFrame = this.online
        ? this.view.onlineFrame()
        : { t: 'robot', robot: this.view.id, kind: 'offline', lastSeen: this.view.lastSeen ?? this.ctx.clock.now() };
      this.view.publish(frame);
    }
    if (this.lease?.holder.id !== lease?.holder.id || this.lease?.expiresAt !== lease?.expiresAt) {
      // Taken or ended while this node did not know the robot's home.
      this.view.publish(this.view.leaseFrame(this.lease, this.lease ? 'acquired' : 'released'));
    }
  }

  /** An answer of the home to one of this node's connections. */
  private deliver(connId: string, frame: ServerFrame): void {
    let conn: Connection;
    if (frame.t === 'queued' || frame.t === 'error') {
      const key = `${connId}:${frame.id}`;
      const w = this.waiting.get(key);
      if (!w) return; // already reported as unknown
      conn = w.conn;
      this.ctx.clock.clearTimeout(w.timer);
      this.waiting.delete(key);
      if (frame.t === 'queued') {
        const wait = w.outcomeBy - this.ctx.clock.now() + this.timings.remoteGraceMs;
        this.commands.set(frame.cmd, { conn, timer: this.ctx.clock.setTimeout(() => this.ctx.self.tell({ type: 'remoteTimeout', command: frame.cmd }), wait) });
      }
    } else if (frame.t === 'cmd') {
      const c = this.commands.get(frame.cmd);
      if (!c) return; // already reported as lost
      conn = c.conn;
      if (FINAL.has(frame.stage)) {
        this.ctx.clock.clearTimeout(c.timer);
        this.commands.delete(frame.cmd);
      }
    } else {
      return;
    }
    conn.send(frame);
    this.hooks.maybeIdle();
  }

  /** No final stage (or no `queued`) came from the home in time. */
  private remoteTimeout(key: string): void {
    const unknown = "no outcome came from the robot's node; it is unknown whether the command ran";
    const c = this.commands.get(key);
    if (c) {
      this.commands.delete(key);
      c.conn.send({ t: 'cmd', robot: this.view.id, cmd: key, stage: 'lost', ts: this.ctx.clock.now(), detail: unknown });
      this.hooks.maybeIdle();
      return;
    }
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    w.conn.send({ t: 'error', id: w.reqId, code: 'UNAVAILABLE', message: `${unknown}; check the audit log before sending it again` });
    this.hooks.maybeIdle();
  }

  /** Ends what was sent through the home: it will not report on it. */
  private failRemote(reason: string): void {
    const now = this.ctx.clock.now();
    for (const [id, c] of this.commands) {
      this.ctx.clock.clearTimeout(c.timer);
      c.conn.send({ t: 'cmd', robot: this.view.id, cmd: id, stage: 'lost', ts: now, detail: reason });
    }
    for (const w of this.waiting.values()) {
      this.ctx.clock.clearTimeout(w.timer);
      w.conn.send({ t: 'error', id: w.reqId, code: 'UNAVAILABLE', message: `${reason}; check the audit log before sending it again` });
    }
    this.commands.clear();
    this.waiting.clear();
  }

  /** The home's node left the cluster: the robot is offline until it attaches elsewhere, and its lease is gone. */
  private homeLost(): void {
    this.node = undefined;
    this.failRemote("the robot's node left the cluster before reporting an outcome; it is unknown whether the command ran");
    if (this.online) {
      this.online = false;
      this.view.lastSeen = this.ctx.clock.now();
      this.view.publish({ t: 'robot', robot: this.view.id, kind: 'offline', lastSeen: this.view.lastSeen });
    }
    if (this.lease) {
      this.lease = null;
      this.view.publish(this.view.leaseFrame(null, 'node_lost'));
    }
    this.hooks.maybeIdle();
  }
}
