// Each person's own stream (store/notices.ts): what concerns them outside the rooms they watch, numbered
// so that any device catches up after the last number it has. The rooms service and the contacts
// service hand their personal frames (`read`, `contact`, `notice`) to `post`, which numbers and
// stores each one, then has the gateway send it to every socket of the person on every node. A
// room's timeline events that concern a person (they joined, left, were removed or banned, their
// role changed) become notices of theirs through `personalNotice` (the rooms service calls it).
// Live message notices are not numbered (they are cluster/message-notices.ts): `feed` answers a
// resuming device with its unread rooms instead.

import type { Logger } from '../log.js';
import type { FeedFrame, NotifyLevel, PersonalNotice, RoomRef, ServerFrame, StreamFrame, UserRef } from '../protocol/frames.js';
import type { Message } from '../store/messages.js';
import type { Unnumbered } from '../store/notices.js';
import type { Room } from '../store/rooms.js';
import type { Store } from '../store/store.js';
import { assertMember } from './room-rules.js';

/**
 * Numbered frames one `feed` answer carries at most, and rooms with unread messages it lists at
 * most: an answer stays well under the smallest socket buffer (SB_WS_MAX_BACKPRESSURE_BYTES).
 */
export const FEED_PAGE = 100;
export const FEED_UNREAD = 200;

export interface NoticesGateway {
  /** A numbered frame to every socket of the person, on every node. */
  tell(userId: string, frame: StreamFrame): void;
}

/** Whether a frame for a person belongs to their numbered stream (a `receipt` or `typing` does not). */
export const isStreamFrame = (f: ServerFrame): f is Exclude<StreamFrame, { n: number }> & ServerFrame =>
  f.t === 'read' || f.t === 'contact' || f.t === 'notice';

const REASONS = { member_left: 'left', member_removed: 'removed', member_banned: 'banned' } as const;

/**
 * The notice a room's timeline event means for the person it concerns (they joined — `room`, the
 * room, is then needed — left, were removed or banned, or their role changed), if any.
 */
export function personalNotice(event: Message, room?: Room): { userId: string; notice: PersonalNotice } | undefined {
  const e = event.event;
  if (!e || !('user' in e)) return undefined;
  const userId = e.user.id;
  if (e.kind === 'member_joined') return room && { userId, notice: { kind: 'room_added', room: roomRef(room), by: event.senderId } };
  if (e.kind === 'role_changed') return { userId, notice: { kind: 'role_changed', room: event.roomId, role: e.role, by: event.senderId } };
  if (e.kind in REASONS) {
    return { userId, notice: { kind: 'room_removed', room: event.roomId, reason: REASONS[e.kind as keyof typeof REASONS], by: event.senderId } };
  }
  return undefined;
}

/** A room as a notice names it: a direct room names `peer`, the other person. */
export function roomRef(room: Room, peer?: UserRef): RoomRef {
  return { id: room.id, kind: room.kind, name: room.name, ...(peer ? { peer: { id: peer.id, username: peer.username } } : {}) };
}

export class NoticesService {
  constructor(
    private readonly store: Store,
    private readonly gateway: NoticesGateway,
    private readonly log: Logger,
  ) {}

  /**
   * Numbers and stores the frame in the person's stream, then sends it. Never throws: a store
   * failure loses this notice (the change it reports is done) and is logged.
   */
  async post(userId: string, frame: Unnumbered): Promise<void> {
    try {
      await this.append(userId, frame);
    } catch (e) {
      this.log.warn({ err: e, user: userId, kind: 'kind' in frame ? frame.kind : frame.t }, 'a notice could not be stored');
    }
  }

  /** Stores the frame in the person's stream and sends it, numbered; a store failure is thrown (the server API answers with it). */
  async append(userId: string, frame: Unnumbered): Promise<void> {
    const n = await this.store.notices.append(userId, frame);
    if (n !== undefined) this.gateway.tell(userId, { ...frame, n } as StreamFrame);
  }

  notice(userId: string, notice: PersonalNotice): Promise<void> {
    return this.post(userId, { t: 'notice', ...notice } as Unnumbered);
  }

  /** The caller's notification level in a room (members only); their other devices hear of it. */
  async setLevel(user: UserRef, roomId: string, level: NotifyLevel): Promise<void> {
    const found = await this.store.rooms.withRole(roomId, user.id);
    assertMember(found);
    const r = await this.store.notices.setLevel(roomId, user.id, level);
    if (r === 'not_member') assertMember({ ...found, role: null });
    if (r === 'changed') await this.notice(user.id, { kind: 'notify', room: roomId, level });
  }

  /** What a device resuming after `since` missed: the numbered frames, and the rooms with unread messages. */
  async feed(userId: string, since: number | undefined): Promise<Omit<FeedFrame, 't' | 'id'>> {
    const { head, frames, pruned } = await this.store.notices.after(userId, since ?? Number.MAX_SAFE_INTEGER, FEED_PAGE);
    const unread = await this.store.notices.unread(userId, FEED_UNREAD);
    return {
      n: head,
      notices: frames,
      ...(since !== undefined && frames.length === FEED_PAGE && (frames.at(-1)?.n ?? 0) < head ? { more: true as const } : {}),
      ...(since !== undefined && pruned ? { reset: true as const } : {}),
      unread,
    };
  }
}
