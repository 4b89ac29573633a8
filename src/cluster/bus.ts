// The Bus: how a room's sequencer makes messages durable and how every node with local subscribers
// receives them. The room actor talks only to this interface, so the single-node build
// (bus-memory.ts) and the cluster build (bus-nats.ts) run the same actor code.

import type { UserRef } from '../protocol/frames.js';
import type { Message, SequencedMessage } from '../store/messages.js';

export type BusListener = (messages: Message[]) => void;
/**
 * Room news between the nodes of a cluster: a node's users present in the room (the whole set;
 * `ask`: that node wants everyone's now), someone typing, a member who joined or left, the room
 * deleted. Membership news only updates the other nodes' caches and ends their live subscriptions
 * promptly: what a removal forbids is enforced by the store at commit, and a join is found by a
 * cache miss re-checking the store, so a lost signal costs neither safety nor access.
 */
export type RoomSignal =
  | { kind: 'presence'; users: UserRef[]; ask: boolean }
  | { kind: 'typing'; user: UserRef }
  | { kind: 'member'; op: 'joined' | 'left'; user: UserRef }
  | { kind: 'deleted' };
export type SignalListener = (node: string, signal: RoomSignal) => void;

export interface Bus {
  /**
   * Makes a batch durable, in order, right after the room's last durable message: resolves once
   * durable with the batch as committed (renumbered if another sequencer wrote since `batch` was
   * numbered); then every listener of the room, on every node, receives it in seq order. Rejects
   * with CommitRefusedError when the room is gone or a sender is no longer a member.
   */
  append(roomId: string, batch: SequencedMessage[]): Promise<SequencedMessage[]>;
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
