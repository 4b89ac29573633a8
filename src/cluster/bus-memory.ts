// The single-node Bus: "every node" is this process, so an announced batch goes straight to the
// room's listeners (the room actor calls it right after its commit) and nothing is ever missed.

import type { Message } from '../store/messages.js';
import type { Bus, RoomListener } from './bus.js';

export class MemoryBus implements Bus {
  private readonly listeners = new Map<string, Set<RoomListener>>();

  announce(roomId: string, batch: Message[]): void {
    for (const l of this.listeners.get(roomId) ?? []) l.messages(batch);
  }

  signal(): void {}

  listen(roomId: string, listener: RoomListener): () => void {
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

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
