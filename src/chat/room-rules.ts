// Who may do what in a room, written once: RoomsService (REST, history) and the room actor
// (realtime publish, subscribe, typing) both decide through these functions. Each takes the room
// and the caller's role as read from the store, and throws the SbError a refusal is answered with.
// Roles rank owner > moderator > member; an admin acts as an owner in any room (moderation only:
// an admin who is not a member still cannot read or post there).

import { notFound, SbError } from '../errors.js';
import type { Role, Room } from '../store/rooms.js';

/** What `store.rooms.withRole` answers: the room and the caller's role in it, if the room exists. */
export type RoomAccess = { room: Pick<Room, 'kind' | 'ownerId'>; role: Role | null } | undefined;

/** Who asks, with their site-wide admin flag. */
export interface Caller {
  id: string;
  username: string;
  admin: boolean;
}

export const notMember = () => new SbError('NOT_MEMBER', 'you are not a member of this room');

/**
 * Seeing a room: a group room is visible to anyone signed in; a direct room exists (404 otherwise)
 * only for its two members, and for an admin moderating it (`admin`).
 */
export function assertVisible(access: RoomAccess, admin = false): asserts access is NonNullable<RoomAccess> {
  if (!access || (access.room.kind === 'direct' && !access.role && !admin)) throw notFound('room');
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

const RANK: Record<Role, number> = { member: 0, moderator: 1, owner: 2 };

/** The rank the caller acts with: their role's, an owner's for an admin, -1 for a non-member. */
const rank = (role: Role | null, admin: boolean): number => (admin ? RANK.owner : role ? RANK[role] : -1);

/** Deleting the room: its owner, or an admin. */
export function assertDeletable(role: Role | null, admin: boolean): void {
  if (rank(role, admin) < RANK.owner) throw new SbError('NOT_OWNER', 'only the room owner (or an admin) can delete it');
}

/** Moderating a group room (renaming, removing, banning, deleting others' messages): its owner, a moderator, or an admin. */
export function assertModerator(room: Pick<Room, 'kind'>, role: Role | null, admin: boolean, what: string): void {
  if (room.kind === 'direct') throw new SbError('FORBIDDEN', `direct rooms have no moderators: cannot ${what}`);
  if (rank(role, admin) < RANK.moderator) throw new SbError('FORBIDDEN', `only the room's owner or moderators can ${what}`);
}

/** Acting on another member (removing, banning, changing their role): only on someone of lower rank. */
export function assertOutranks(role: Role | null, admin: boolean, target: Role | null, what: string): void {
  if (target && rank(role, admin) <= RANK[target]) throw new SbError('FORBIDDEN', `cannot ${what} a ${target}: it needs a higher role`);
}

/** The roles someone acting with this role (or as an admin) may remove or ban. */
export const outranked = (role: Role | null, admin: boolean): Role[] => (Object.keys(RANK) as Role[]).filter((r) => RANK[r] < rank(role, admin));

/** Giving or taking the moderator role: the owner, or an admin. */
export function assertOwner(role: Role | null, admin: boolean, what: string): void {
  if (rank(role, admin) < RANK.owner) throw new SbError('NOT_OWNER', `only the room owner (or an admin) can ${what}`);
}

/** Whether the caller moderates this room (a group room's owner or moderator, or an admin). */
export const mayModerate = (room: Pick<Room, 'kind'>, role: Role | null, admin: boolean): boolean =>
  admin || (room.kind === 'group' && rank(role, admin) >= RANK.moderator);

/**
 * Deleting a message: its sender while still a member, or, in a group room, a moderator or the
 * owner; an admin anywhere.
 */
export function assertMayDeleteMessage(room: Pick<Room, 'kind'>, role: Role | null, admin: boolean, own: boolean): void {
  if (admin || (own && role)) return;
  assertModerator(room, role, admin, "delete others' messages");
}
