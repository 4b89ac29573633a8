// A resume's replay, for the room actor: the frames after a subscriber's `since`, from the memory
// tail or page by page from the store, sent at the pace the socket drains, beside the mailbox.
// And how a `sub` whose replay was cut short is answered.

import type { ErrorCode } from '../errors.js';
import type { TimelineFrame } from '../protocol/frames.js';
import type { Message } from '../store/messages.js';
import type { Store } from '../store/store.js';
import type { Connection } from './ports.js';
import { toFrame } from './room-tail.js';

/** Messages read from the store per replay query. */
const REPLAY_PAGE = 200;

/** A connection replaying history before it joins the live stream. */
export interface CatchUp {
  conn: Connection;
  reqId: number;
  /** Deliveries that happened during the replay, sent right after it. */
  held: TimelineFrame[];
  /** It was live before (a re-subscribe with `since`): already present, so no second snapshot. */
  wasLive: boolean;
}

/** What a `sub` whose replay was cut short is answered with. */
export type Ended = { code: ErrorCode; message: string };
export const REPLACED: Ended = { code: 'CANCELLED', message: 'a later sub or unsub for this room replaced this subscription' };
export const NO_LONGER_MEMBER: Ended = { code: 'NOT_MEMBER', message: 'you are no longer a member of this room' };
export const ROOM_DELETED: Ended = { code: 'NOT_FOUND', message: 'the room was deleted' };

/**
 * Sends the frames of (since, upTo] from the tail snapshot or the store, waiting for the socket to
 * drain before each; stops as soon as `live()` says the replay was cut short.
 */
export async function replay(
  store: Store,
  roomId: string,
  entry: CatchUp,
  range: { since: number; upTo: number; fromTail: TimelineFrame[] | undefined },
  live: () => boolean,
): Promise<void> {
  if (range.fromTail) {
    for (const f of range.fromTail) {
      await entry.conn.writable();
      if (!live()) return;
      entry.conn.send(f);
    }
    return;
  }
  for (let after = range.since; after < range.upTo; ) {
    const page = await store.messages.range(roomId, after, Math.min(range.upTo, after + REPLAY_PAGE));
    if (page.length === 0) break;
    for (const m of page) {
      await entry.conn.writable();
      if (!live()) return;
      entry.conn.send(toFrame(m));
    }
    after = (page[page.length - 1] as Message).seq;
  }
}
