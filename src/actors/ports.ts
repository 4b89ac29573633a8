// What the actors need from the transport, as interfaces (the transport implements them; actors
// never import it): a client connection, and topic fan-out that encodes each frame once.

import type { ServerFrame, UserRef } from '../protocol/frames.js';
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

/** The topic a robot's presence, channel list and lease changes go to. */
export const robotTopic = (robotId: string) => `robot:${robotId}`;

/** The topic of one channel's reliable samples: only the watchers who chose the channel are in it. */
export const robotChannelTopic = (robotId: string, channel: string) => `robot:${robotId}/ch:${channel}`;

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
