// Presence on a single node: there are no other nodes to tell or hear from, so sharing is a no-op
// and listeners hear only of a node leaving (which, with no other nodes, never happens in a hub).

import type { UserRef } from '../protocol/frames.js';
import type { Presence, PresenceListener } from './presence.js';

export class MemoryPresence implements Presence {
  private readonly listeners = new Map<string, Set<PresenceListener>>();

  share(_roomId: string, _users: UserRef[], _ask: boolean): void {}

  typing(_roomId: string, _user: UserRef): void {}

  listen(roomId: string, listener: PresenceListener): () => void {
    let set = this.listeners.get(roomId);
    if (!set) {
      set = new Set();
      this.listeners.set(roomId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(roomId);
    };
  }

  nodeLeft(node: string): void {
    for (const set of this.listeners.values()) for (const l of set) l(node, { kind: 'present', users: [], ask: false });
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
