// The Bus: how news of a room travels to every node with local subscribers. It carries news only:
// the room actor owns the store (it commits, and reads whatever news was lost), so the single-node
// build (bus-memory.ts) and the cluster build (bus-nats.ts) differ only in how the news travels.

import type { UserRef } from '../protocol/frames.js';
import type { Message } from '../store/messages.js';

/**
 * Room news between the nodes of a cluster: a member who joined or left, the room deleted. It only
 * updates the other nodes' caches and ends their live subscriptions promptly: what a removal
 * forbids is enforced by the store at commit, and a join is found by a cache miss re-checking the
 * store, so a lost signal costs neither safety nor access.
 */
export type RoomSignal = { kind: 'member'; op: 'joined' | 'left'; user: UserRef } | { kind: 'deleted' };

/** What one node's room hears. Called on the Bus's own schedule: hand it to a mailbox, never block. */
export interface RoomListener {
  /** Committed messages, in seq order within a batch. A batch may repeat seqs already seen or follow a gap. */
  messages(batch: Message[]): void;
  /**
   * News of this room may have been lost with no later batch to show it (the Bus's link was down,
   * or a node died between its commit and its announcement): compare with the store.
   */
  missed(): void;
  /** Another node's signal (a node never hears its own). */
  signal(node: string, signal: RoomSignal): void;
}

export interface Bus {
  /**
   * Carries a committed batch (or messages found committed, e.g. a retried publish whose first
   * attempt may not have reached every node) to every listener of the room, on every node, this one
   * included, at most once each.
   */
  announce(roomId: string, batch: Message[]): void;
  /** Registers this node's interest in a room's news; returns the unsubscribe function. */
  listen(roomId: string, listener: RoomListener): () => void;
  /** Tells the other nodes (at most once; no-op on a single node). */
  signal(roomId: string, signal: RoomSignal): void;
  close(): Promise<void>;
}
