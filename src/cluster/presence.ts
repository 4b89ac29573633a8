// Presence: who is present and who is typing in a room, between the nodes of a cluster. Ephemeral
// and at most once: a node shares its whole set (periodically, so a lost share is healed by the
// next), and nothing here is stored. presence-memory.ts is the single node, presence-nats.ts the cluster.

import type { UserRef } from '../protocol/frames.js';

export type PresenceNews =
  /** A node's users present in the room (the whole set); `ask`: that node wants everyone's now. */
  { kind: 'present'; users: UserRef[]; ask: boolean } | { kind: 'typing'; user: UserRef };
/** Another node's news (a node never hears its own). Hand it to a mailbox, never block. */
export type PresenceListener = (node: string, news: PresenceNews) => void;

export interface Presence {
  /** Shares this node's whole set of users present in the room with the other nodes. */
  share(roomId: string, users: UserRef[], ask: boolean): void;
  /** Tells the other nodes that someone here is typing in the room. */
  typing(roomId: string, user: UserRef): void;
  /** Registers this node's interest in the other nodes' presence news of a room; returns the unsubscribe function. */
  listen(roomId: string, listener: PresenceListener): () => void;
  /** A node left the cluster: every room's listeners hear that nobody is present there any more. */
  nodeLeft(node: string): void;
  close(): Promise<void>;
}
