// What the actors need from the transport, as interfaces (the transport implements them; actors
// never import it): a client connection, and topic fan-out that encodes each frame once.

import type { ServerFrame, UserRef } from '../protocol/frames.js';

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
