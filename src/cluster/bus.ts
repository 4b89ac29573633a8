// The Bus: how a room's sequencer makes messages durable and how every node with local subscribers
// receives them. The room actor talks only to this interface, so the single-node build
// (bus-memory.ts) and the cluster build (bus-nats.ts) run the same actor code.

import type { UserRef } from '../protocol/frames.js';
import type { Message, SequencedMessage } from '../store/messages.js';

export type BusListener = (messages: Message[]) => void;
/**
 * Ephemeral room news between the nodes of a cluster: a node's users present in the room (the whole
 * set; `ask`: that node wants everyone's now), or someone typing.
 */
export type RoomSignal = { kind: 'presence'; users: UserRef[]; ask: boolean } | { kind: 'typing'; user: UserRef };
export type SignalListener = (node: string, signal: RoomSignal) => void;

export interface Bus {
  /**
   * Makes a batch of sequenced messages durable, in order, provided the room's last durable seq is
   * still `expectedLastSeq` (otherwise rejects: another sequencer wrote). Resolves once durable;
   * then every listener of the room, on every node, receives the batch in seq order.
   */
  append(roomId: string, batch: SequencedMessage[], expectedLastSeq: number): Promise<void>;
  /**
   * Fans already durable messages out again, e.g. a retried publish found in the store: its first
   * attempt may have committed without reaching every node. Listeners ignore seqs they have.
   */
  announce(roomId: string, batch: Message[]): void;
  /** Registers this node's interest in a room's messages (and other nodes' signals); returns the unsubscribe function. */
  listen(roomId: string, listener: BusListener, signals?: SignalListener): () => void;
  /** Tells the other nodes (at most once; no-op on a single node). */
  signal(roomId: string, signal: RoomSignal): void;
  close(): Promise<void>;
}
