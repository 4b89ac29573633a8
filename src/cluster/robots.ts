// The robot cluster port: how a robot's actors on different nodes reach each other. A robot's home
// is the node that holds its link (or, while it is offline, its control lease); only the home's
// actor changes the robot's live state. The other nodes' actors follow its numbered events for
// their own watchers and send it requests. Like the Bus, the port only carries news between nodes:
// the actors own the store (the home writes the audit log). One node runs robots-local.ts (it is
// every robot's home), a cluster robots-nats.ts; the actor code is the same.

import type { LeasedFrame, LeaseInfo, ServerFrame, UserRef } from '../protocol/frames.js';
import type { Channel } from '../protocol/robot.js';

/** The user behind a request, as the permission rules need them. */
export interface Requester {
  user: UserRef;
  admin: boolean;
}

/**
 * A request of another node's actor to the robot's home. `remainingMs`: the time left of its
 * deadline; `patienceMs`: how long the asking node waits for the answer (the home refuses a
 * request that waited longer, since the asker has given up on it).
 */
export type RemoteRequest = SyncRequest | HandoffRequest | LeaseRemoteRequest | CommandRemoteRequest | EstopRemoteRequest;

/** The robot's live state, for a node that starts following it. */
export interface SyncRequest {
  op: 'sync';
}
/** The robot attached to the asking node: the home gives up its link and hands the lease over. */
export interface HandoffRequest {
  op: 'handoff';
}
interface Timed {
  remainingMs: number;
  patienceMs: number;
  by: Requester;
  reqId: number;
}
export interface LeaseRemoteRequest extends Timed {
  op: 'lease';
  lease: 'acquire' | 'renew' | 'release';
  ttlMs: number;
  force: boolean;
}
/** `node`/`conn`: the issuer, whose answers the home sends among its events. */
export interface CommandRemoteRequest extends Timed {
  op: 'cmd';
  node: string;
  conn: string;
  name: string;
  args: unknown;
}
export interface EstopRemoteRequest extends Timed {
  op: 'estop';
  node: string;
  conn: string;
}

/** The robot's live state as its home sends it to a node that starts following it. */
export interface Snapshot {
  node: string;
  epoch: string;
  /** The home's last event: later ones apply on top of this. */
  seq: number;
  online: boolean;
  lastSeen: number | null;
  channels: Channel[];
  latest: [ch: number, ts: number, data: unknown][];
  lease: LeaseInfo | null;
  /** By channel name, the highest seq of its numbered samples the home has seen or stored. */
  numbered?: [channel: string, seq: number][];
  /** Numbered samples the home accepted but has not stored yet (a `since` replay needs them). */
  unstored?: [channel: string, seq: number, ts: number, data: unknown][];
}

/** What the home hands to the node the robot attached to instead. */
export interface Handoff {
  lease: { holder: UserRef; admin: boolean; expiresAt: number } | null;
}

/** The home's answer to each request: commands and stops are answered among its events (`queued`, stages). */
export interface RemoteReplies {
  sync: Snapshot;
  handoff: Handoff;
  lease: LeasedFrame;
  cmd: undefined;
  estop: undefined;
}
export type ReplyTo<R extends RemoteRequest> = RemoteReplies[R['op']];

export type RemoteReply = RemoteReplies[keyof RemoteReplies];

/** Answers a request of another node; `arrivedAt`: when it reached this node (ms on its clock). */
export type RemoteServer = (req: RemoteRequest, arrivedAt: number) => Promise<RemoteReply>;

/**
 * What a robot's home tells its followers, in order (`seq` counts per stint as home): a frame for
 * every watcher, or (`to`) for one connection on one node. An `online` frame carries the `lease`.
 */
export interface RobotEvent {
  kind: 'event';
  node: string;
  /** The home's stint: a node that stops being home and becomes it again starts a new one (and seq again). */
  epoch: string;
  seq: number;
  frame: ServerFrame;
  to?: { node: string; conn: string };
  lease?: LeaseInfo | null;
}

/** What a follower hears: the home's events; a node that left the cluster; this node's own link back after an outage (events may be missing). */
export type FollowEvent = RobotEvent | { kind: 'lost'; node: string } | { kind: 'reconnected' };

export interface RobotCluster {
  readonly nodeId: string;
  /** The node that decides for the robot: this node's id when it does, another live node's, or undefined when nobody is home. */
  home(robotId: string): string | undefined;
  /**
   * Makes this node the robot's home, recording `online`, and routes the requests of other nodes to
   * `serve`. `force`: take it whoever holds it (a robot attached here); otherwise only when no live
   * node does, resolving false if one does. `moved` is called if another node takes it later.
   */
  claim(robotId: string, o: { online: boolean; force: boolean; serve: RemoteServer; moved: (node: string) => void }): Promise<boolean>;
  /** Records whether the robot is online at its home (this node). */
  setOnline(robotId: string, online: boolean): void;
  /** Stops being the robot's home. */
  release(robotId: string): void;
  /** Sends an event to the nodes following the robot. */
  emit(robotId: string, event: Omit<RobotEvent, 'kind' | 'node'>): void;
  /** Receives whichever home's events, and the news of lost nodes and of this node's reconnection; returns the unfollow function. */
  follow(robotId: string, listener: (e: FollowEvent) => void): () => void;
  /**
   * Asks the robot's home. Rejects with NobodyHomeError when no node serves it, NoAnswerError after
   * `timeoutMs` (the request may still take effect), or the home's own refusal.
   */
  request<R extends RemoteRequest>(robotId: string, req: R, timeoutMs: number): Promise<ReplyTo<R>>;
}

/** The timing of the home/follower protocol, injectable so tests can drive it under a fake clock. */
export interface RobotTimings {
  /** How long a sync, handoff or forwarded request may take at most. */
  remoteMs: number;
  /** How long past its deadline a command sent through another node waits for its outcome. */
  remoteGraceMs: number;
  /** A forwarded request the home takes this close to the asker's patience is refused: the answer might come too late. */
  patienceMarginMs: number;
  /** Events of a home this node does not know make it sync at most this often (its telemetry would otherwise ask once per frame). */
  resyncEveryMs: number;
  /** How long the robot has to answer an emergency stop. */
  estopTimeoutMs: number;
}

export const defaultRobotTimings: RobotTimings = {
  remoteMs: 2_000,
  remoteGraceMs: 2_000,
  patienceMarginMs: 250,
  resyncEveryMs: 1_000,
  estopTimeoutMs: 10_000,
};
