// The single-node Bus: durability is the PostgreSQL (or PGlite) group commit, and "every node" is
// this process, so listeners are called right after the commit.

import type { Message, SequencedMessage } from '../store/messages.js';
import type { Store } from '../store/store.js';
import type { Bus, BusListener } from './bus.js';

export class MemoryBus implements Bus {
  private readonly listeners = new Map<string, Set<BusListener>>();

  constructor(private readonly store: Store) {}

  async append(roomId: string, batch: SequencedMessage[]): Promise<SequencedMessage[]> {
    const committed = await this.store.messages.insertSequenced(roomId, batch);
    this.announce(roomId, committed);
    return committed;
  }

  announce(roomId: string, batch: Message[]): void {
    for (const l of this.listeners.get(roomId) ?? []) l(batch);
  }

  signal(): void {}

  listen(roomId: string, listener: BusListener): () => void {
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
