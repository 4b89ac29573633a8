// The Bus: how a room's sequencer makes messages durable and how every node with local subscribers
// receives them. The room actor talks only to this interface, so the single-node build
// (bus-memory.ts) and the cluster build (NATS JetStream, a later issue) run the same actor code.

import type { SequencedMessage } from '../store/messages.js';

export type BusListener = (messages: SequencedMessage[]) => void;

export interface Bus {
  /**
   * Makes a batch of sequenced messages durable, in order, provided the room's last durable seq is
   * still `expectedLastSeq` (otherwise rejects: another sequencer wrote). Resolves once durable;
   * then every listener of the room, on every node, receives the batch in seq order.
   */
  append(roomId: string, batch: SequencedMessage[], expectedLastSeq: number): Promise<void>;
  /** Registers this node's interest in a room's messages; returns the unsubscribe function. */
  listen(roomId: string, listener: BusListener): () => void;
  close(): Promise<void>;
}
