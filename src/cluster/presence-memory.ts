// Presence on a single node: there are no other nodes to tell or hear from, so sharing is a no-op
// and listeners hear only of a node leaving (which, with no other nodes, never happens in a hub).
// The cluster's presence is this plus the sharing (presence-nats.ts).

import type { UserRef } from '../protocol/frames.js';
import type { Presence, PresenceListener } from './presence.js';
import { type OpenRoom, RoomListeners } from './room-listeners.js';

export class MemoryPresence implements Presence {
  private readonly listeners: RoomListeners<PresenceListener>;

  /** `open` starts hearing a room's news from elsewhere when its first listener comes. */
  constructor(open?: OpenRoom<PresenceListener>) {
    this.listeners = new RoomListeners(open);
  }

  share(_roomId: string, _users: UserRef[], _ask: boolean): void {}

  typing(_roomId: string, _user: UserRef): void {}

  listen(roomId: string, listener: PresenceListener): () => void {
    return this.listeners.add(roomId, listener);
  }

  nodeLeft(node: string): void {
    for (const l of this.listeners.all()) l(node, { kind: 'present', users: [], ask: false });
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
