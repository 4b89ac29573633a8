// Who on this node listens to each room, for the Bus and Presence implementations. A room's first
// listener opens what the implementation needs for it (a NATS subscription), its last one leaving
// closes it. Invariant: a room is in the map exactly while it has listeners and is open.

/** Opens a room's feed; the returned function closes it. `listeners` is live: read it per message. */
export type OpenRoom<L> = (roomId: string, listeners: ReadonlySet<L>) => () => void;

export class RoomListeners<L> {
  private readonly rooms = new Map<string, { listeners: Set<L>; close: () => void }>();

  constructor(private readonly open: OpenRoom<L> = () => () => {}) {}

  /** Adds `listener` to `roomId`; the returned function removes it. */
  add(roomId: string, listener: L): () => void {
    let room = this.rooms.get(roomId);
    if (!room) {
      const listeners = new Set<L>();
      room = { listeners, close: this.open(roomId, listeners) };
      this.rooms.set(roomId, room);
    }
    const r = room;
    r.listeners.add(listener);
    return () => {
      if (!r.listeners.delete(listener) || r.listeners.size > 0 || this.rooms.get(roomId) !== r) return;
      this.rooms.delete(roomId);
      r.close();
    };
  }

  /** The listeners of `roomId` (none when nobody listens). */
  of(roomId: string): Iterable<L> {
    return this.rooms.get(roomId)?.listeners ?? [];
  }

  /** Every listener of every room. */
  *all(): Iterable<L> {
    for (const r of this.rooms.values()) yield* r.listeners;
  }

  /** Closes every room and forgets its listeners. */
  clear(): void {
    for (const r of this.rooms.values()) r.close();
    this.rooms.clear();
  }
}
