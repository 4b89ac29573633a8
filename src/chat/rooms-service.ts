// Room operations with their permission rules. Group rooms: anyone signed in may see and join them
// (unless banned); only members read, post and list members; the owner and moderators rename,
// remove, ban and delete messages; only the owner deletes the room and names moderators; the owner
// cannot leave (delete instead); an admin acts as owner anywhere. Direct rooms: exactly two members,
// invisible (404) to everyone else but admins, neither joined nor left. The REST routes call this;
// the rules themselves are in room-rules.ts, which the realtime room actors share. Every change of
// membership, role, name or history is a timeline event, handed to the gateway to announce.

import { randomUUID } from 'node:crypto';
import { notFound, SbError, ValidationError } from '../errors.js';
import type { Attachment, ServerFrame, UserRef } from '../protocol/frames.js';
import { attachmentOf, type BlobMeta } from '../store/blobs.js';
import type { Message } from '../store/messages.js';
import type { Unnumbered } from '../store/notices.js';
import type { Ban, Member, Reaction, ReadState, Role, Room } from '../store/rooms.js';
import type { Store } from '../store/store.js';
import { type AccountRemoval, escapeLike } from '../store/users.js';
import type { ContactsService } from './contacts-service.js';
import { personalNotice, roomRef } from './notices-service.js';
import {
  assertDeletable,
  assertJoinable,
  assertLeavable,
  assertMayDeleteMessage,
  assertMember,
  assertModerator,
  assertOutranks,
  assertOwner,
  assertVisible,
  type Caller,
  mayModerate,
  notMember,
  outranked,
} from './room-rules.js';

/** What one row of a room's log holds at most (the messages table's check), bytes. */
const MAX_ROW_BODY_BYTES = 1_048_576;

/** Different emoji one message takes. */
export const MAX_EMOJI_PER_MESSAGE = 20;

/** Exactly one emoji Unicode recommends for general interchange (keycaps, flags and ZWJ sequences included). */
// biome-ignore lint/complexity/useRegexLiterals: as a literal, the v flag needs TypeScript to target ES2024
const ONE_EMOJI = new RegExp('^\\p{RGI_Emoji}$', 'v');
/** One emoji, or a `:short_code:`. */
export const isEmoji = (s: string): boolean => /^:[a-z0-9_+-]{1,30}:$/.test(s) || (s.length <= 32 && ONE_EMOJI.test(s));

export interface RoomView extends Room, Partial<ReadState> {
  /** The caller's role, or null when the caller is not a member. */
  role: Role | null;
}

/**
 * The realtime side of rooms (the room actors): every message is posted through it, so REST and
 * WebSocket publishes share one sequencer, and it is told of membership changes.
 */
/** What someone posts: its text, and the files it carries. */
export interface Post {
  cid: string;
  body: string;
  attachments?: Attachment[];
}

export interface RoomGateway {
  publish(roomId: string, sender: UserRef, post: Post): Promise<{ message: Message; duplicate: boolean }>;
  /** A timeline event was written: to the room's subscribers, on every node, in seq order. */
  timeline(event: Message): void;
  /** A frame to every socket of a person, on every node (`read`, `contact` and `notice` frames numbered in their stream first). */
  tell(userId: string, frame: ServerFrame | Unnumbered): void;
  deleted(roomId: string): void;
}

export class RoomsService {
  constructor(
    private readonly store: Store,
    private readonly limits: { maxMessageBytes: number; editWindowS: number },
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
      this.gateway.tell(userId, { t: 'notice', kind: 'room_added', room: roomRef(room), by: userId });
      return { room: { ...room, role: 'owner' }, created: true };
    }
    if (input.name !== undefined) throw new ValidationError('name', 'direct rooms have no name');
    if (input.peerId === undefined) throw new ValidationError('peerId', 'is required for a direct room');
    if (input.peerId === userId) throw new ValidationError('peerId', 'must be another user');
    const peer = await this.store.users.byId(input.peerId);
    if (!peer) throw new ValidationError('peerId', 'no such user');
    await this.contacts.assertMayMessage(userId, peer);
    const { room, created } = await this.store.rooms.openDirect(randomUUID(), userId, input.peerId);
    if (created) {
      const me = await this.store.users.byId(userId);
      this.gateway.tell(userId, { t: 'notice', kind: 'room_added', room: roomRef(room, peer), by: userId });
      if (me) this.gateway.tell(peer.id, { t: 'notice', kind: 'room_added', room: roomRef(room, me), by: userId });
    }
    return { room: { ...room, role: (await this.store.rooms.role(room.id, userId)) ?? null }, created };
  }

  /** The room as the caller may see it; 404 for a missing room or someone else's direct room. */
  async get(userId: string, roomId: string): Promise<RoomView> {
    const found = await this.store.rooms.withRole(roomId, userId);
    assertVisible(found);
    return { ...found.room, role: found.role, ...found.read };
  }

  async list(userId: string, q: { scope: 'mine' | 'public'; q?: string | undefined; limit: number; cursor?: string | undefined }): Promise<Room[]> {
    if (q.scope === 'mine') return this.store.rooms.listForUser(userId, q.limit, q.cursor);
    return this.store.rooms.listGroups(`%${escapeLike((q.q ?? '').toLowerCase())}%`, q.limit, q.cursor);
  }

  async delete(caller: Caller, roomId: string): Promise<void> {
    const room = await this.moderated(caller, roomId);
    assertDeletable(room.role, caller.admin);
    const members = await this.store.rooms.delete(roomId);
    if (!members) return;
    this.gateway.deleted(roomId);
    for (const id of members) this.gateway.tell(id, { t: 'notice', kind: 'room_removed', room: roomId, reason: 'deleted', by: caller.id });
  }

  async join(user: UserRef, roomId: string): Promise<RoomView> {
    const room = await this.get(user.id, roomId);
    assertJoinable(room);
    if (room.role) return room;
    const r = await this.store.rooms.join(roomId, user);
    if (r === 'banned') throw new SbError('BANNED', 'you are banned from this room');
    this.announce(r, { room });
    return { ...room, role: 'member' };
  }

  /** Adds someone to a group room on another's behalf (`by`: the server API's bot): false when they were a member already. */
  async addMember(roomId: string, user: UserRef, by: string): Promise<boolean> {
    const found = await this.store.rooms.withRole(roomId, user.id);
    if (!found) throw notFound('room');
    assertJoinable(found.room);
    if (found.role) return false;
    const r = await this.store.rooms.join(roomId, user, by);
    if (r === 'banned') throw new SbError('BANNED', `${user.username} is banned from this room`);
    this.announce(r, { room: found.room });
    return r !== undefined;
  }

  async leave(user: UserRef, roomId: string): Promise<void> {
    const room = await this.member(user.id, roomId);
    assertLeavable(room, room.role);
    const r = await this.store.rooms.remove(roomId, user, user.id);
    if (r === 'outranked') throw new SbError('CONFLICT', 'the owner cannot leave a room; delete it instead');
    this.announce(r);
  }

  /** Removes a member (`ban`: and keeps them from joining again; a ban also holds for a non-member). */
  async remove(caller: Caller, roomId: string, userId: string, ban: boolean): Promise<void> {
    const what = ban ? 'ban' : 'remove';
    const room = await this.moderated(caller, roomId);
    assertModerator(room, room.role, caller.admin, `${what} members`);
    if (userId === caller.id) throw new ValidationError('userId', `you cannot ${what} yourself${ban ? '' : '; leave the room instead'}`);
    const target = await this.target(roomId, userId, !ban);
    assertOutranks(room.role, caller.admin, target.role, what);
    // The rule again, in the store's transaction: a role that changed since it was read counts.
    const r = await this.store.rooms.remove(roomId, target.user, caller.id, ban, outranked(room.role, caller.admin));
    if (r === 'outranked') throw new SbError('FORBIDDEN', `cannot ${what} them: their role changed to one as high as yours`);
    // Banning someone who is not a member concerns no room of theirs.
    this.announce(r, { tell: target.role !== null });
  }

  async unban(caller: Caller, roomId: string, userId: string): Promise<void> {
    const room = await this.moderated(caller, roomId);
    assertModerator(room, room.role, caller.admin, 'lift bans');
    if (!(await this.store.rooms.unban(roomId, userId))) throw notFound('ban');
  }

  async bans(caller: Caller, roomId: string, limit: number, cursor: string | undefined): Promise<Ban[]> {
    const room = await this.moderated(caller, roomId);
    assertModerator(room, room.role, caller.admin, 'list bans');
    return this.store.rooms.bans(roomId, limit, cursor);
  }

  /** Makes a member a moderator, or a moderator a member again. */
  async setRole(caller: Caller, roomId: string, userId: string, role: 'moderator' | 'member'): Promise<{ userId: string; username: string; role: Role }> {
    const room = await this.moderated(caller, roomId);
    assertModerator(room, room.role, caller.admin, 'change roles');
    assertOwner(room.role, caller.admin, 'change roles');
    const target = await this.target(roomId, userId, true);
    if (target.role === 'owner') throw new SbError('CONFLICT', "the owner's role cannot change");
    this.announce(await this.store.rooms.setRole(roomId, target.user, role, caller.id));
    return { userId: target.user.id, username: target.user.username, role };
  }

  /** Renames a group room (a `room_renamed` event) and turns its read receipts on or off. */
  async update(caller: Caller, roomId: string, change: { name?: string | undefined; receipts?: boolean | undefined }): Promise<RoomView> {
    const room = await this.moderated(caller, roomId);
    assertModerator(room, room.role, caller.admin, 'change the room');
    if (change.name === undefined && change.receipts === undefined) throw new ValidationError('name', 'give a name, receipts, or both');
    const trimmed = change.name?.trim();
    if (trimmed === '') throw new ValidationError('name', 'must not be blank');
    if (change.receipts !== undefined) await this.store.rooms.setReceipts(roomId, change.receipts);
    const event = trimmed === undefined ? undefined : await this.store.rooms.rename(roomId, trimmed, caller.id);
    this.announce(event);
    return { ...room, name: trimmed ?? room.name, receipts: change.receipts ?? room.receipts, lastSeq: event?.seq ?? room.lastSeq };
  }

  /**
   * Moves the caller's read marker forward to `seq` (at most the room's last seq). Their other
   * devices hear of it (a `read` frame); in a direct room the other person sees it (a `receipt`
   * frame). Answers with the room as the caller now stands in it.
   */
  async markRead(user: UserRef, roomId: string, seq: number): Promise<RoomView> {
    const room = await this.member(user.id, roomId);
    if (seq > room.lastSeq) throw new ValidationError('seq', `is past the room's last seq (${room.lastSeq})`);
    const readSeq = await this.store.rooms.markRead(roomId, user.id, seq);
    if (readSeq === undefined) throw notMember(); // they left meanwhile
    if (readSeq > (room.readSeq ?? 0)) {
      this.gateway.tell(user.id, { t: 'read', room: roomId, seq: readSeq });
      if (room.kind === 'direct' && !(await this.store.contacts.directRoomBlocked(roomId))) {
        const other = (await this.store.rooms.memberIds(roomId)).filter((id) => id !== user.id);
        for (const id of other) this.gateway.tell(id, { t: 'receipt', room: roomId, user: { id: user.id, username: user.username }, seq: readSeq });
      }
    }
    return this.get(user.id, roomId);
  }

  /**
   * Deletes a message: its row stays in history as a tombstone (empty body, `deletedAt`) and a
   * `message_deleted` event follows in the room's order. Deleting a tombstone again is a no-op. Its
   * sender may, within the edit window; moderators and admins at any time.
   */
  async deleteMessage(caller: Caller, roomId: string, seq: number): Promise<void> {
    const { room, message } = await this.posted(caller, roomId, seq);
    const own = message.senderId === caller.id;
    if (own && !this.inWindow(message) && !mayModerate(room, room.role, caller.admin)) {
      throw new SbError('FORBIDDEN', `messages can be deleted by their sender for ${this.limits.editWindowS} s after posting`);
    }
    assertMayDeleteMessage(room, room.role, caller.admin, own && this.inWindow(message));
    this.announce(await this.store.rooms.deleteMessage(roomId, seq, caller.id));
  }

  /** Its sender edits a message, within the edit window: history shows the new text, marked edited; a `message_edited` event carries it. */
  async editMessage(caller: Caller, roomId: string, seq: number, body: string): Promise<Message> {
    const { room, message } = await this.posted(caller, roomId, seq);
    if (!room.role) throw notMember();
    if (message.senderId !== caller.id) throw new SbError('FORBIDDEN', 'only its sender can edit a message');
    if (message.deletedAt) throw new SbError('CONFLICT', 'the message was deleted');
    if (!this.inWindow(message)) throw new SbError('FORBIDDEN', `messages can be edited for ${this.limits.editWindowS} s after posting`);
    this.checkSize(body);
    // The edit event carries the text JSON-escaped, within a row's 1 MiB.
    if (Buffer.byteLength(JSON.stringify(body), 'utf8') + 32 > MAX_ROW_BODY_BYTES) {
      throw new SbError('PAYLOAD_TOO_LARGE', 'the new text, escaped for its edit event, is over 1 MiB', { field: 'body', limit: MAX_ROW_BODY_BYTES });
    }
    await this.assertNotBlocked(room);
    const event = await this.store.rooms.editMessage(roomId, seq, body, caller.id);
    // Nothing stored and a different text: a deletion won the room's lock first.
    if (!event && message.body !== body) throw new SbError('CONFLICT', 'the message was deleted');
    this.announce(event);
    return event ? { ...message, body, editedAt: event.createdAt } : message;
  }

  /** Adds or removes the caller's `emoji` on a message (members only); a `reaction_added` / `reaction_removed` event follows. */
  async react(caller: Caller, roomId: string, seq: number, emoji: string, add: boolean): Promise<void> {
    if (!isEmoji(emoji)) throw new ValidationError('emoji', 'must be one emoji, or a :short_code: of at most 30 letters, digits, _, + or -');
    const { room, message } = await this.posted(caller, roomId, seq);
    if (!room.role) throw notMember();
    if (message.deletedAt) throw new SbError('CONFLICT', 'the message was deleted');
    await this.assertNotBlocked(room);
    const r = await this.store.rooms.react(roomId, seq, emoji, caller, add, MAX_EMOJI_PER_MESSAGE);
    if (r === 'full') throw new SbError('CONFLICT', `a message takes at most ${MAX_EMOJI_PER_MESSAGE} different reactions`);
    this.announce(r);
  }

  /** A direct room whose members blocked each other takes no edits or reactions, as it takes no posts. */
  private async assertNotBlocked(room: Room): Promise<void> {
    if (room.kind === 'direct' && (await this.store.contacts.directRoomBlocked(room.id))) throw new SbError('FORBIDDEN', 'you cannot message this person');
  }

  private inWindow(m: Message): boolean {
    return Date.now() - m.createdAt.getTime() <= this.limits.editWindowS * 1000;
  }

  /**
   * A posted message of the room, for someone acting on it: a member, or an admin (404 for a hidden
   * room, 403 for anyone else, before anything about the message is told); 404 when there is no
   * message at `seq`, 409 for a timeline event.
   */
  private async posted(caller: Caller, roomId: string, seq: number): Promise<{ room: RoomView; message: Message }> {
    const room = await this.moderated(caller, roomId);
    if (!room.role && !caller.admin) throw notMember();
    const [message] = await this.store.messages.range(roomId, seq - 1, seq);
    if (!message) throw notFound('message');
    if (message.event) throw new SbError('CONFLICT', 'timeline events cannot be changed');
    return { room, message };
  }

  /** A deleted account's rooms: each hears that it left, and a room it owned who owns it now. */
  async accountRemoved(user: UserRef, what: Pick<AccountRemoval, 'roomsLeft' | 'handedOver'>): Promise<void> {
    for (const id of what.roomsLeft) this.announce(await this.store.rooms.record(id, { kind: 'member_left', user }));
    for (const { roomId, ownerId } of what.handedOver) {
      const owner = await this.store.users.byId(ownerId);
      if (owner) this.announce(await this.store.rooms.record(roomId, { kind: 'role_changed', user: owner, role: 'owner' }));
    }
  }

  /** A page of members; with their read markers where the room shows receipts (always in a direct room). */
  async members(userId: string, roomId: string, limit: number, cursor: string | undefined): Promise<(Omit<Member, 'readSeq'> & { readSeq?: number })[]> {
    const room = await this.member(userId, roomId);
    const members = await this.store.rooms.members(roomId, limit, cursor);
    // A direct room shows them (receipts is always on there) unless its members blocked each other.
    if (room.receipts && !(room.kind === 'direct' && (await this.store.contacts.directRoomBlocked(roomId)))) return members;
    return members.map(({ readSeq: _, ...m }) => m);
  }

  /** A page of history; each message with its reactions (and whether the caller is among them). */
  async history(
    userId: string,
    roomId: string,
    q: { before?: number | undefined; after?: number | undefined; limit: number },
  ): Promise<{ room: RoomView; messages: (Message & { reactions?: Reaction[] })[] }> {
    const room = await this.member(userId, roomId);
    const messages = await this.store.messages.page(roomId, q);
    const reactions = await this.store.rooms.reactions(
      roomId,
      messages.filter((m) => !m.event && !m.deletedAt).map((m) => m.seq),
      userId,
    );
    return { room, messages: messages.map((m) => (reactions.has(m.seq) ? { ...m, reactions: reactions.get(m.seq) } : m)) };
  }

  /** Posts a message; a retry with the same cid returns the original (`duplicate: true`). */
  async post(
    user: UserRef,
    roomId: string,
    input: { cid: string; body: string; attachments?: string[] | undefined },
  ): Promise<{ message: Message; duplicate: boolean }> {
    await this.member(user.id, roomId);
    const post = await this.compose(user.id, input.cid, input.body, input.attachments, 'attachments');
    return this.gateway.publish(roomId, { id: user.id, username: user.username }, post);
  }

  /**
   * A post as it is stored: its text within the size limit, and not empty unless it carries files;
   * its attachments (`field` names them to the client) the ready files `userId` uploaded, each once.
   */
  async compose(userId: string, cid: string, body: string, ids: string[] | undefined, field: string): Promise<Post> {
    this.checkSize(body);
    if (!ids?.length) {
      if (body === '') throw new ValidationError('body', 'must not be empty (unless the message carries attachments)');
      return { cid, body };
    }
    if (new Set(ids).size !== ids.length) throw new ValidationError(field, 'lists an attachment twice');
    const found = new Map((await this.store.blobs.owned(userId, ids)).map((b) => [b.id, b]));
    const missing = ids.find((id) => !found.has(id));
    if (missing !== undefined) {
      throw new SbError('NOT_FOUND', `${field}: no finished upload of yours has id ${missing} (upload with POST /api/v1/attachments first)`, { field });
    }
    return { cid, body, attachments: ids.map((id) => attachmentOf(found.get(id) as BlobMeta)) };
  }

  private checkSize(body: string): void {
    const bytes = Buffer.byteLength(body, 'utf8');
    const limit = this.limits.maxMessageBytes;
    if (bytes > limit) throw new SbError('PAYLOAD_TOO_LARGE', `message body is ${bytes} bytes; the limit is ${limit}`, { field: 'body', limit });
  }

  /**
   * A timeline event to the room's subscribers, and, unless `tell` is false, a notice to the person
   * it concerns (`room`: the room, for a join's `room_added`).
   */
  private announce(event: Message | undefined, o: { room?: Room; tell?: boolean } = {}): void {
    if (!event) return;
    this.gateway.timeline(event);
    const personal = o.tell === false ? undefined : personalNotice(event, o.room);
    if (personal) this.gateway.tell(personal.userId, { t: 'notice', ...personal.notice });
  }

  /** The room as a moderator sees it: an admin sees direct rooms too. */
  private async moderated(caller: Caller, roomId: string): Promise<RoomView> {
    const found = await this.store.rooms.withRole(roomId, caller.id);
    assertVisible(found, caller.admin);
    return { ...found.room, role: found.role };
  }

  /** The person acted on, with their role in the room (404 when no such user, or, with `member`, not a member). */
  private async target(roomId: string, userId: string, member: boolean): Promise<{ user: UserRef; role: Role | null }> {
    const user = await this.store.users.byId(userId);
    if (!user) throw notFound('user');
    const found = await this.store.rooms.withRole(roomId, userId);
    if (member && !found?.role) throw notFound('member');
    return { user, role: found?.role ?? null };
  }

  /** The room, which the caller must belong to: 404 if it is hidden from them, 403 if not a member. */
  private async member(userId: string, roomId: string): Promise<RoomView> {
    const room = await this.get(userId, roomId);
    assertMember({ room, role: room.role });
    return room;
  }
}
