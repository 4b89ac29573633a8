// Room operations with their permission rules. Group rooms: anyone signed in may see and join them;
// only members read, post and list members; only the owner deletes; the owner cannot leave (delete
// instead). Direct rooms: exactly two members, invisible (404) to everyone else, neither joined nor
// left. The REST routes call this; the rules themselves are in room-rules.ts, which the realtime
// room actors share.

import { randomUUID } from 'node:crypto';
import { SbError, ValidationError } from '../errors.js';
import type { UserRef } from '../protocol/frames.js';
import type { Message } from '../store/messages.js';
import type { Role, Room } from '../store/rooms.js';
import type { Store } from '../store/store.js';
import { escapeLike } from '../store/users.js';
import type { ContactsService } from './contacts-service.js';
import { assertDeletable, assertJoinable, assertLeavable, assertMember, assertVisible } from './room-rules.js';

export interface RoomView extends Room {
  /** The caller's role, or null when the caller is not a member. */
  role: Role | null;
}

/**
 * The realtime side of rooms (the room actors): every message is posted through it, so REST and
 * WebSocket publishes share one sequencer, and it is told of membership changes.
 */
export interface RoomGateway {
  publish(roomId: string, sender: UserRef, cid: string, body: string): Promise<{ message: Message; duplicate: boolean }>;
  memberChanged(roomId: string, op: 'joined' | 'left', user: UserRef): void;
  deleted(roomId: string): void;
}

export class RoomsService {
  constructor(
    private readonly store: Store,
    private readonly maxMessageBytes: number,
    private readonly gateway: RoomGateway,
    private readonly contacts: ContactsService,
  ) {}

  async create(
    userId: string,
    input: { kind: 'group' | 'direct'; name?: string | undefined; peerId?: string | undefined },
  ): Promise<{ room: RoomView; created: boolean }> {
    if (input.kind === 'group') {
      if (input.peerId !== undefined) throw new ValidationError('peerId', 'only direct rooms have a peer');
      const name = input.name?.trim();
      if (!name) throw new ValidationError('name', 'is required for a group room');
      const room = await this.store.rooms.createGroup(randomUUID(), name, userId);
      return { room: { ...room, role: 'owner' }, created: true };
    }
    if (input.name !== undefined) throw new ValidationError('name', 'direct rooms have no name');
    if (input.peerId === undefined) throw new ValidationError('peerId', 'is required for a direct room');
    if (input.peerId === userId) throw new ValidationError('peerId', 'must be another user');
    const peer = await this.store.users.byId(input.peerId);
    if (!peer) throw new ValidationError('peerId', 'no such user');
    await this.contacts.assertMayMessage(userId, peer);
    const { room, created } = await this.store.rooms.openDirect(randomUUID(), userId, input.peerId);
    return { room: { ...room, role: (await this.store.rooms.role(room.id, userId)) ?? null }, created };
  }

  /** The room as the caller may see it; 404 for a missing room or someone else's direct room. */
  async get(userId: string, roomId: string): Promise<RoomView> {
    const found = await this.store.rooms.withRole(roomId, userId);
    assertVisible(found);
    return { ...found.room, role: found.role };
  }

  async list(userId: string, q: { scope: 'mine' | 'public'; q?: string | undefined; limit: number; cursor?: string | undefined }): Promise<Room[]> {
    if (q.scope === 'mine') return this.store.rooms.listForUser(userId, q.limit, q.cursor);
    return this.store.rooms.listGroups(`%${escapeLike((q.q ?? '').toLowerCase())}%`, q.limit, q.cursor);
  }

  async delete(userId: string, roomId: string): Promise<void> {
    const room = await this.get(userId, roomId);
    assertDeletable(room, userId);
    if (await this.store.rooms.delete(roomId)) this.gateway.deleted(roomId);
  }

  async join(user: UserRef, roomId: string): Promise<RoomView> {
    const room = await this.get(user.id, roomId);
    assertJoinable(room);
    if (!room.role && (await this.store.rooms.join(roomId, user.id))) this.gateway.memberChanged(roomId, 'joined', { id: user.id, username: user.username });
    return { ...room, role: room.role ?? 'member' };
  }

  async leave(user: UserRef, roomId: string): Promise<void> {
    const room = await this.member(user.id, roomId);
    assertLeavable(room, room.role);
    if (await this.store.rooms.leave(roomId, user.id)) this.gateway.memberChanged(roomId, 'left', { id: user.id, username: user.username });
  }

  async members(userId: string, roomId: string, limit: number, cursor: string | undefined) {
    await this.member(userId, roomId);
    return this.store.rooms.members(roomId, limit, cursor);
  }

  async history(
    userId: string,
    roomId: string,
    q: { before?: number | undefined; after?: number | undefined; limit: number },
  ): Promise<{ room: RoomView; messages: Message[] }> {
    const room = await this.member(userId, roomId);
    return { room, messages: await this.store.messages.page(roomId, q) };
  }

  /** Posts a message; a retry with the same cid returns the original (`duplicate: true`). */
  async post(user: UserRef, roomId: string, input: { cid: string; body: string }): Promise<{ message: Message; duplicate: boolean }> {
    await this.member(user.id, roomId);
    const bytes = Buffer.byteLength(input.body, 'utf8');
    if (bytes > this.maxMessageBytes) {
      throw new SbError('PAYLOAD_TOO_LARGE', `message body is ${bytes} bytes; the limit is ${this.maxMessageBytes}`, {
        field: 'body',
        limit: this.maxMessageBytes,
      });
    }
    return this.gateway.publish(roomId, { id: user.id, username: user.username }, input.cid, input.body);
  }

  /** The room, which the caller must belong to: 404 if it is hidden from them, 403 if not a member. */
  private async member(userId: string, roomId: string): Promise<RoomView> {
    const room = await this.get(userId, roomId);
    assertMember({ room, role: room.role });
    return room;
  }
}
