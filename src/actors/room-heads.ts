// The stored last seq of rooms, read for the room actors' anti-entropy (the Bus's `missed`). Every
// listened room is told at once, so the reads asked for in one turn go out as one query, not one
// per room.

import type { Store } from '../store/store.js';

type Waiter = { resolve(seq: number | undefined): void; reject(e: unknown): void };

const readers = new WeakMap<Store, (roomId: string) => Promise<number | undefined>>();

/** The room's stored last seq (undefined: no such room), batched with the other rooms asking in this turn. */
export function storedHead(store: Store, roomId: string): Promise<number | undefined> {
  let read = readers.get(store);
  if (!read) {
    read = batched(store);
    readers.set(store, read);
  }
  return read(roomId);
}

function batched(store: Store): (roomId: string) => Promise<number | undefined> {
  let waiting: Map<string, Waiter[]> | undefined;
  const flush = async (batch: Map<string, Waiter[]>) => {
    try {
      const heads = await store.rooms.lastSeqs([...batch.keys()]);
      for (const [id, ws] of batch) for (const w of ws) w.resolve(heads.get(id));
    } catch (e) {
      for (const ws of batch.values()) for (const w of ws) w.reject(e);
    }
  };
  return (roomId) =>
    new Promise((resolve, reject) => {
      if (!waiting) {
        const batch = new Map<string, Waiter[]>();
        waiting = batch;
        setImmediate(() => {
          waiting = undefined;
          void flush(batch);
        });
      }
      const ws = waiting.get(roomId);
      if (ws) ws.push({ resolve, reject });
      else waiting.set(roomId, [{ resolve, reject }]);
    });
}
