// The Bus: how news of a room travels to every node with local subscribers. It carries news only:
// the room actor owns the store (it commits, and reads whatever news was lost), so the single-node
// build (bus-memory.ts) and the cluster build (bus-nats.ts) differ only in how the news travels.

import type { Message } from '../store/messages.js';

/** What one node's room hears. Called on the Bus's own schedule: hand it to a mailbox, never block. */
export interface RoomListener {
  /** Committed messages, in seq order within a batch. A batch may repeat seqs already seen or follow a gap. */
  messages(batch: Message[]): void;
  /**
   * News of this room may have been lost with no later batch to show it (the Bus's link was down,
   * or a node died between its commit and its announcement): compare with the store.
   */
  missed(): void;
  /**
   * Another node deleted the room (a node never hears its own). It only ends this node's live
   * subscriptions promptly: the store refuses commits to a deleted room, so a lost signal costs no
   * safety. Membership changes need no signal: they are timeline events, carried as messages.
   */
  deleted(node: string): void;
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
  /** Tells the other nodes that the room was deleted (at most once; no-op on a single node). */
  deleted(roomId: string): void;
  close(): Promise<void>;
}
