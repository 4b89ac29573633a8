// Whether the two members of a direct room have blocked each other, as its room actor knows it:
// read at start, set when people news says it changed, and read again from the store when older
// than BLOCK_TTL_MS, so a notice lost between nodes (or two arriving out of order) is wrong for
// seconds at most.

import { SbError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { Clock } from './runtime.js';

export const BLOCK_TTL_MS = 5_000;

export class DirectBlock {
  private blocked = false;
  private at = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly roomId: string,
    private readonly store: Store,
    private readonly clock: Clock,
    /** Told when the state changes (the room hides presence while blocked). */
    private readonly changed: (blocked: boolean) => void,
  ) {}

  set(blocked: boolean): void {
    const was = this.blocked;
    this.blocked = blocked;
    this.at = this.clock.now();
    if (was !== blocked) this.changed(blocked);
  }

  /** Reads the state from the store now (at the room's start). */
  async load(): Promise<void> {
    this.set(await this.store.contacts.directRoomBlocked(this.roomId));
  }

  /** Runs `then` unless the members blocked each other (FORBIDDEN); reads the store first when stale. */
  guard<T>(then: () => T | Promise<T>): T | Promise<T> {
    if (this.clock.now() - this.at <= BLOCK_TTL_MS) {
      if (this.blocked) throw new SbError('FORBIDDEN', 'you cannot message this person');
      return then();
    }
    return this.store.contacts.directRoomBlocked(this.roomId).then((b) => {
      this.set(b);
      return this.guard(then);
    });
  }
}

/** Runs `then` unless `block` (a direct room's) says its members blocked each other. */
export const unblocked = <T>(block: DirectBlock | undefined, then: () => T | Promise<T>): T | Promise<T> => (block ? block.guard(then) : then());
