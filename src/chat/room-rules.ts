// Who may do what in a room, written once: RoomsService (REST, history) and the room actor
// (realtime publish, subscribe, typing) both decide through these functions. Each takes the room
// and the caller's role as read from the store, and throws the SbError a refusal is answered with.

import { notFound, SbError } from '../errors.js';
import type { Role, Room } from '../store/rooms.js';

/** What `store.rooms.withRole` answers: the room and the caller's role in it, if the room exists. */
export type RoomAccess = { room: Pick<Room, 'kind' | 'ownerId'>; role: Role | null } | undefined;

export const notMember = () => new SbError('NOT_MEMBER', 'you are not a member of this room');

/** Seeing a room: a group room is visible to anyone signed in; a direct room exists (404 otherwise) only for its two members. */
export function assertVisible(access: RoomAccess): asserts access is NonNullable<RoomAccess> {
  if (!access || (access.room.kind === 'direct' && !access.role)) throw notFound('room');
}

/** Reading, posting, subscribing, typing and listing members: members only (403, or 404 where the room is hidden). */
export function assertMember(access: RoomAccess): asserts access is NonNullable<RoomAccess> & { role: Role } {
  assertVisible(access);
  if (!access.role) throw notMember();
}

/** Joining: any group room; a direct room has exactly its two members. */
export function assertJoinable(room: Pick<Room, 'kind'>): void {
  if (room.kind === 'direct') throw new SbError('FORBIDDEN', 'direct rooms cannot be joined');
}

/** Leaving: a member of a group room other than its owner (who deletes it instead). */
export function assertLeavable(room: Pick<Room, 'kind'>, role: Role | null): void {
  if (room.kind === 'direct') throw new SbError('FORBIDDEN', 'direct rooms cannot be left');
  if (role === 'owner') throw new SbError('CONFLICT', 'the owner cannot leave a room; delete it instead');
}

/** Deleting: the owner only. */
export function assertDeletable(room: Pick<Room, 'ownerId'>, userId: string): void {
  if (room.ownerId !== userId) throw new SbError('NOT_OWNER', 'only the room owner can delete it');
}
