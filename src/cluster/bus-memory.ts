// The single-node Bus: "every node" is this process, so an announced batch goes straight to the
// room's listeners (the room actor calls it right after its commit) and nothing is ever missed.
// The cluster's Bus is this plus the fan-out to other nodes (bus-nats.ts).

import type { Message } from '../store/messages.js';
import type { Bus, RoomListener } from './bus.js';
import { type OpenRoom, RoomListeners } from './room-listeners.js';

export class MemoryBus implements Bus {
  protected readonly listeners: RoomListeners<RoomListener>;

  /** `open` starts hearing a room's batches and signals from elsewhere when its first listener comes. */
  constructor(open?: OpenRoom<RoomListener>) {
    this.listeners = new RoomListeners(open);
  }

  announce(roomId: string, batch: Message[]): void {
    for (const l of this.listeners.of(roomId)) l.messages(batch);
  }

  deleted(_roomId: string): void {}

  listen(roomId: string, listener: RoomListener): () => void {
    return this.listeners.add(roomId, listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
