// What the actors need from the transport, as interfaces (the transport implements them; actors
// never import it): a client connection, and topic fan-out that encodes each frame once.

import type { LeaseInfo, ServerFrame, UserRef } from '../protocol/frames.js';
import type { HubFrame } from '../protocol/robot.js';

export interface Connection {
  readonly id: string;
  readonly user: UserRef;
  readonly closed: boolean;
  /** Sends one frame to this client (dropped if the connection has closed). */
  send(frame: ServerFrame): void;
  /** Resolves when the connection can take more without building backpressure (or has closed). */
  writable(): Promise<void>;
  /** Adds this connection to a topic's audience (its own encoding's variant of the topic). */
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Closes with a code from CloseCode. */
  close(code: number, reason: string): void;
}

/** A connection as its session sees it. */
export type ClientConnection = Connection;

export interface Fanout {
  /** Encodes the frame once per encoding and sends it to every subscriber of the topic, except `except`. */
  publish(topic: string, frame: ServerFrame, except?: Connection): void;
}

/** The topic a room's deliveries, presence and events go to. */
export const roomTopic = (roomId: string) => `room:${roomId}`;

/**
 * Sends `frame` to each connection unless that connection is congested; a congested one keeps only
 * the newest frame per `key` and gets it when it drains. For state-like data (a robot's `latest`
 * telemetry), where a slow reader wants the current value, not every value.
 */
export interface Conflater {
  conflate(conns: Iterable<Connection>, key: string, frame: ServerFrame): void;
}

/** The topic a robot's reliable telemetry, presence and lease changes go to. */
export const robotTopic = (robotId: string) => `robot:${robotId}`;

/** A robot's live link to this node, as its actor sees it. */
export interface RobotConnection {
  readonly id: string;
  readonly robotId: string;
  /** SHA-256 of the certificate it authenticated with, hex. */
  readonly fingerprint: string;
  readonly closed: boolean;
  /** Writes one frame; false when the link is closed (or was just closed for being too far behind). */
  send(frame: HubFrame): boolean;
  /** Sends an ERROR frame with this code and message, then closes. */
  close(code: string, message: string): void;
}

/**
 * A robot's home in a cluster: the node that holds its link (or, while it is offline, its control
 * lease). Only the home's actor changes the robot's live state; the other nodes' actors follow its
 * events for their own watchers and forward requests to it.
 */
export interface RobotCluster {
  readonly nodeId: string;
  /** The robot's home if it is a live node, per the directory. */
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
  emit(robotId: string, event: Omit<RobotEvent, 'node'>): void;
  /**
   * Receives the events of whichever node is the robot's home, `{ lost }` when a node leaves, and
   * `{ reconnected }` after this node's own NATS connection was down (events may be missing).
   */
  follow(robotId: string, listener: (e: RobotEvent | { lost: string } | { reconnected: true }) => void): () => void;
  /** Asks the robot's home; rejects with ROBOT_OFFLINE when no node serves it, TIMEOUT after `timeoutMs`. */
  request(robotId: string, req: RemoteRequest, timeoutMs: number): Promise<unknown>;
}

/** Answers a request of another node; `arrivedAt`: when it reached this node (ms on its clock). */
export type RemoteServer = (req: RemoteRequest, arrivedAt: number) => Promise<unknown>;

/**
 * A request of another node's actor to the robot's home. `remainingMs`: the time left of its
 * deadline; `patienceMs`: how long the asking node waits for the answer (the home refuses a
 * request that waited longer, since the asker has given up on it).
 */
export type RemoteRequest =
  | { op: 'sync' }
  | { op: 'handoff' }
  | ({ remainingMs: number; patienceMs: number; by: { user: UserRef; admin: boolean }; reqId: number } & (
      | { op: 'lease'; lease: 'acquire' | 'renew' | 'release'; ttlMs: number; force: boolean }
      | { op: 'cmd'; node: string; conn: string; name: string; args: unknown }
      | { op: 'estop'; node: string; conn: string }
    ));

/**
 * What a robot's home tells its followers, in order (`seq` counts per home): a frame for every
 * watcher, or (`to`) for one connection on one node. An `online` frame carries the `lease`.
 */
export interface RobotEvent {
  node: string;
  /** The home's stint: a node that stops being home and becomes it again starts a new one (and seq again). */
  epoch: string;
  seq: number;
  frame: ServerFrame;
  to?: { node: string; conn: string };
  lease?: LeaseInfo | null;
}
