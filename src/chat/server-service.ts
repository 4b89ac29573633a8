// What backends do through the server API (an admin's API key, not a person's token): post in a
// group room as a named bot or as the system, put a frame in a person's own stream, create rooms
// and add members, and disconnect a person's sockets. A bot is an account that never logs in: the
// first post as a name creates it (unless a person holds the name), and it joins a room the first
// time it posts there, which the room's timeline shows like any join.

import { SbError } from '../errors.js';
import type { PersonalNotice, UserRef } from '../protocol/frames.js';
import type { Message } from '../store/messages.js';
import type { Store } from '../store/store.js';
import type { RoomsService, RoomView } from './rooms-service.js';

/** The account the server API posts as when no bot is named; people cannot register a name with `~`. */
export const SYSTEM_BOT = '~system';

/** Bots one API key may create. */
export const BOTS_PER_KEY = 100;

/** Bytes of JSON an app notice may carry. */
export const APP_NOTICE_BYTES = 4096;

export interface ServerDeps {
  /** Appends a notice to a person's stream (resolving once it is stored) and sends it to their sockets, on every node. */
  tell(userId: string, notice: PersonalNotice): Promise<void>;
  /** Closes every socket of the person, on every node (they may reconnect). */
  disconnect(userId: string): void;
  /** Of these people, those connected to some node (`partial`: a node did not answer in time). */
  online(userIds: string[]): Promise<{ online: string[]; partial: boolean }>;
}

export class ServerService {
  constructor(
    private readonly store: Store,
    private readonly rooms: RoomsService,
    private readonly deps: ServerDeps,
  ) {}

  /** The bot of this name, the key's (created on first use), or the system's when no name is given. */
  async bot(name: string | undefined, keyId: string | null): Promise<UserRef> {
    const bot = await this.store.users.bot(name ?? SYSTEM_BOT, name === undefined ? 'System' : null, name === undefined ? null : keyId, BOTS_PER_KEY);
    if (bot === 'taken') throw new SbError('USERNAME_TAKEN', `${name} is a person's username, not a bot's`, { field: 'as' });
    if (bot === 'other') throw new SbError('FORBIDDEN', `${name} is the bot of another API key`, { field: 'as' });
    if (bot === 'full') throw new SbError('CONFLICT', `this API key has its ${BOTS_PER_KEY} bots already`, { field: 'as', limit: BOTS_PER_KEY });
    if (bot.disabledAt) throw new SbError('ACCOUNT_DISABLED', `an admin disabled the bot ${bot.username}`);
    return { id: bot.id, username: bot.username };
  }

  /** Posts as the bot, which joins the (group) room first if it must; a retry with the same cid returns the original. */
  async post(keyId: string, roomId: string, as: string | undefined, input: { cid: string; body: string }): Promise<{ message: Message; duplicate: boolean }> {
    const bot = await this.bot(as, keyId);
    await this.rooms.addMember(roomId, bot, bot.id);
    return this.rooms.post(bot, roomId, input);
  }

  /** An `app` notice in the person's stream: numbered and kept like the others, so their devices catch up on it. */
  async notify(userId: string, data: unknown, from: string): Promise<void> {
    const bytes = Buffer.byteLength(JSON.stringify(data), 'utf8');
    if (bytes > APP_NOTICE_BYTES)
      throw new SbError('PAYLOAD_TOO_LARGE', `data is ${bytes} bytes of JSON; the limit is ${APP_NOTICE_BYTES}`, { limit: APP_NOTICE_BYTES });
    if (!(await this.store.users.exists(userId))) throw new SbError('NOT_FOUND', 'no such user');
    await this.deps.tell(userId, { kind: 'app', data, from });
  }

  /** A group room owned by `ownerId` (the system bot when absent), with these members added; 404 when one is not a user. */
  async createRoom(name: string, ownerId: string | undefined, memberIds: string[]): Promise<RoomView> {
    const people = await Promise.all([...new Set(memberIds)].map((id) => this.user(id)));
    const system = await this.bot(undefined, null);
    const owner = ownerId === undefined ? system : await this.user(ownerId);
    const { room } = await this.rooms.create(owner.id, { kind: 'group', name });
    for (const p of people) await this.rooms.addMember(room.id, p, system.id);
    // As the owner sees it now: with its members' joins counted in lastSeq.
    const now = await this.store.rooms.withRole(room.id, owner.id);
    return now ? { ...now.room, role: now.role } : room;
  }

  /** Adds the person to the group room, by the system: false when they were a member already. */
  async addMember(roomId: string, userId: string): Promise<boolean> {
    const [user, system] = await Promise.all([this.user(userId), this.bot(undefined, null)]);
    return this.rooms.addMember(roomId, user, system.id);
  }

  /** Which of these people are online: connected to some node of the cluster. */
  presence(userIds: string[]): Promise<{ online: string[]; partial: boolean }> {
    return this.deps.online([...new Set(userIds.map((id) => id.toLowerCase()))]);
  }

  async disconnect(userId: string): Promise<void> {
    await this.user(userId);
    this.deps.disconnect(userId);
  }

  private async user(id: string): Promise<UserRef> {
    const u = await this.store.users.byId(id);
    if (!u) throw new SbError('NOT_FOUND', `no such user: ${id}`, { userId: id });
    return { id: u.id, username: u.username };
  }
}
