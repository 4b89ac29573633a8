// Rooms and their members. A group room has a name and an owner; a direct room joins exactly two
// people and is found again by its `direct_key` (the two user ids in order), so opening the same
// conversation twice yields the same room. Every change of membership, role or name writes its
// timeline event (timeline.ts) in the same transaction, and answers with it (undefined when nothing
// changed), for the caller to announce.

import { randomUUID } from 'node:crypto';
import type { NotifyLevel, ReactionCount, UserRef } from '../protocol/frames.js';
import type { Sql, Tx } from './db.js';
import type { Message } from './messages.js';
import { appendEvent, eventBody, lockRoom, type TimelineEvent } from './timeline.js';

export type RoomKind = 'group' | 'direct';
export type Role = 'owner' | 'moderator' | 'member';

export interface Room {
  id: string;
  kind: RoomKind;
  name: string | null;
  ownerId: string | null;
  lastSeq: number;
  createdAt: Date;
  /** Members see each other's read markers (always so in a direct room). */
  receipts: boolean;
}

/** Where a member stands in a room: their read marker, and what came after it. */
export interface ReadState {
  /** The last seq they read. */
  readSeq: number;
  /** Messages posted after it (not timeline events). */
  unread: number;
  /** Of those, the ones that mention them. */
  mentions: number;
  /** Their notification level in the room. */
  notify: NotifyLevel;
}

/** One emoji on a message: how many reacted with it, and whether the person who asked did. */
export type Reaction = ReactionCount;

export interface Ban {
  userId: string;
  username: string;
  /** Who banned them (null once that account is gone). */
  bannedBy: string | null;
  since: Date;
}

export interface Member {
  userId: string;
  username: string;
  role: Role;
  joinedAt: Date;
  /** Their read marker. */
  readSeq: number;
}

interface RoomRow {
  id: string;
  kind: RoomKind;
  name: string | null;
  owner_id: string | null;
  last_seq: string;
  created_at: Date;
  receipts: boolean;
}

/** A room joined with the asker's membership (null columns when not a member). */
interface RoomWithReadRow extends RoomRow {
  role: Role | null;
  read_seq: string | null;
  unread: string | null;
  mentions: number | null;
  notify: NotifyLevel | null;
}

const toReadState = (r: RoomWithReadRow): ReadState | null =>
  r.role === null ? null : { readSeq: Number(r.read_seq), unread: Number(r.unread), mentions: r.mentions ?? 0, notify: r.notify ?? 'all' };

/** The asker's role and read state in `r` (joined as `m`), columns of RoomWithReadRow. */
const READ_COLUMNS = (sql: Sql, userId: string) => sql`
  m.role, m.read_seq, m.notify, r.msg_count - m.read_no AS unread,
  (SELECT count(*)::int FROM mentions x WHERE x.user_id = ${userId} AND x.room_id = r.id AND x.seq > m.read_seq) AS mentions`;

const toRoom = (r: RoomRow): Room => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  ownerId: r.owner_id,
  lastSeq: Number(r.last_seq),
  createdAt: r.created_at,
  receipts: r.receipts || r.kind === 'direct',
});

/** What finds the direct room of two people: their ids in order. */
export const directKey = (a: string, b: string): string => [a, b].sort().join(':');

export class Rooms {
  constructor(private readonly sql: Sql) {}

  async createGroup(id: string, name: string, ownerId: string): Promise<Room> {
    return this.sql.begin(async (tx) => {
      const [row] = await tx<RoomRow[]>`
        INSERT INTO rooms (id, kind, name, owner_id) VALUES (${id}, 'group', ${name}, ${ownerId}) RETURNING *`;
      await tx`INSERT INTO room_members (room_id, user_id, role) VALUES (${id}, ${ownerId}, 'owner')`;
      return toRoom(row as RoomRow);
    });
  }

  /** The direct room of two users, created when missing. */
  async openDirect(id: string, ownerId: string, peerId: string): Promise<{ room: Room; created: boolean }> {
    const key = directKey(ownerId, peerId);
    return this.sql.begin(async (tx) => {
      const [made] = await tx<RoomRow[]>`
        INSERT INTO rooms (id, kind, owner_id, direct_key) VALUES (${id}, 'direct', ${ownerId}, ${key})
        ON CONFLICT (direct_key) DO NOTHING RETURNING *`;
      if (made) {
        await tx`INSERT INTO room_members (room_id, user_id, role)
                 VALUES (${id}, ${ownerId}, 'owner'), (${id}, ${peerId}, 'member')`;
        return { room: toRoom(made), created: true };
      }
      const [found] = await tx<RoomRow[]>`SELECT * FROM rooms WHERE direct_key = ${key}`;
      return { room: toRoom(found as RoomRow), created: false };
    });
  }

  async byId(id: string): Promise<Room | undefined> {
    const [row] = await this.sql<RoomRow[]>`SELECT * FROM rooms WHERE id = ${id}`;
    return row && toRoom(row);
  }

  /** The last seq of each of these rooms that exists, in one round trip. */
  async lastSeqs(ids: string[]): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    const rows = await this.sql<{ id: string; last_seq: string }[]>`SELECT id, last_seq FROM rooms WHERE id = ANY(${ids}::uuid[])`;
    return new Map(rows.map((r) => [r.id, Number(r.last_seq)]));
  }

  /** The room and the user's role and read state in it (null when not a member), in one round trip. */
  async withRole(roomId: string, userId: string): Promise<{ room: Room; role: Role | null; read: ReadState | null } | undefined> {
    const [row] = await this.sql<RoomWithReadRow[]>`
      SELECT r.*, ${READ_COLUMNS(this.sql, userId)} FROM rooms r
      LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = ${userId}
      WHERE r.id = ${roomId}`;
    return row && { room: toRoom(row), role: row.role, read: toReadState(row) };
  }

  /**
   * Moves the member's read marker forward to `seq` (never back: another device may have read
   * further); the marker as it is now, or undefined when not a member.
   */
  async markRead(roomId: string, userId: string, seq: number): Promise<number | undefined> {
    const [row] = await this.sql<{ read_seq: string }[]>`
      WITH moved AS (
        UPDATE room_members SET read_seq = ${seq}, read_no = coalesce((
          SELECT msg_no FROM messages WHERE room_id = ${roomId} AND seq <= ${seq} AND msg_no IS NOT NULL ORDER BY seq DESC LIMIT 1), 0)
        WHERE room_id = ${roomId} AND user_id = ${userId} AND read_seq < ${seq}
        RETURNING read_seq)
      SELECT read_seq FROM moved
      UNION ALL
      SELECT read_seq FROM room_members WHERE room_id = ${roomId} AND user_id = ${userId} AND NOT EXISTS (SELECT 1 FROM moved)`;
    return row && Number(row.read_seq);
  }

  async setReceipts(roomId: string, on: boolean): Promise<void> {
    await this.sql`UPDATE rooms SET receipts = ${on} WHERE id = ${roomId} AND kind = 'group'`;
  }

  async role(roomId: string, userId: string): Promise<Role | undefined> {
    const [row] = await this.sql<{ role: Role }[]>`
      SELECT role FROM room_members WHERE room_id = ${roomId} AND user_id = ${userId}`;
    return row?.role;
  }

  async memberIds(roomId: string): Promise<string[]> {
    const rows = await this.sql<{ user_id: string }[]>`SELECT user_id FROM room_members WHERE room_id = ${roomId}`;
    return rows.map((r) => r.user_id);
  }

  /** Rooms the user belongs to, with their role and read state, ordered by id, after the cursor id. */
  /** The user's rooms, with their role and read state, and in a direct room the other person (`peer`, null once gone). */
  async listForUser(userId: string, limit: number, afterId: string | undefined): Promise<(Room & { role: Role; peer?: UserRef | null } & ReadState)[]> {
    const rows = await this.sql<(RoomWithReadRow & { peer_id: string | null; peer_username: string | null })[]>`
      SELECT r.*, ${READ_COLUMNS(this.sql, userId)}, p.id AS peer_id, p.username AS peer_username
      FROM rooms r JOIN room_members m ON m.room_id = r.id
      LEFT JOIN LATERAL (
        SELECT u.id, u.username FROM room_members o JOIN users u ON u.id = o.user_id
        WHERE r.kind = 'direct' AND o.room_id = r.id AND o.user_id <> ${userId} LIMIT 1
      ) p ON true
      WHERE m.user_id = ${userId} ${afterId === undefined ? this.sql`` : this.sql`AND r.id > ${afterId}`}
      ORDER BY r.id LIMIT ${limit}`;
    return rows.map((r) => ({
      ...toRoom(r),
      role: r.role as Role,
      ...(toReadState(r) as ReadState),
      ...(r.kind === 'direct' ? { peer: r.peer_id === null ? null : { id: r.peer_id, username: r.peer_username as string } } : {}),
    }));
  }

  /** Group rooms whose name contains `q` (case-insensitive), ordered by id, after the cursor id. */
  async listGroups(pattern: string, limit: number, afterId: string | undefined): Promise<Room[]> {
    const rows = await this.sql<RoomRow[]>`
      SELECT * FROM rooms
      WHERE kind = 'group' AND lower(name) LIKE ${pattern}
        ${afterId === undefined ? this.sql`` : this.sql`AND id > ${afterId}`}
      ORDER BY id LIMIT ${limit}`;
    return rows.map(toRoom);
  }

  /**
   * Deletes the room, its members and its messages; answers with who its members were (undefined
   * when there was no such room). The room's row is locked first: a commit in progress finishes before.
   */
  async delete(id: string): Promise<string[] | undefined> {
    return this.sql.begin(async (tx) => {
      const [room] = await tx`SELECT 1 FROM rooms WHERE id = ${id} FOR UPDATE`;
      if (!room) return undefined;
      const members = await tx<{ user_id: string }[]>`SELECT user_id FROM room_members WHERE room_id = ${id}`;
      await tx`DELETE FROM rooms WHERE id = ${id}`;
      await tx`DELETE FROM messages WHERE room_id = ${id}`;
      return members.map((m) => m.user_id);
    });
  }

  /**
   * Adds a member (member_joined). Undefined when already one or the room is gone; 'banned' when
   * the room banned them.
   */
  async join(roomId: string, user: UserRef, by = user.id): Promise<Message | 'banned' | undefined> {
    let banned = false;
    const event = await this.change(roomId, by, { kind: 'member_joined', user }, async (tx) => {
      banned = (await tx`SELECT 1 FROM room_bans WHERE room_id = ${roomId} AND user_id = ${user.id}`).length > 0;
      if (banned) return false;
      // What was said before they came is not unread.
      const r = await tx`
        INSERT INTO room_members (room_id, user_id, read_seq, read_no)
        SELECT id, ${user.id}, last_seq, msg_count FROM rooms WHERE id = ${roomId}
        ON CONFLICT DO NOTHING`;
      return r.count > 0;
    });
    return banned ? 'banned' : event;
  }

  /**
   * Ends a membership: the member left (`by` is themselves), was removed or, with `ban`, banned (a
   * ban also holds for someone who is not a member). Only a member whose role is one of `roles`
   * (read under the room's lock: a promotion that committed first counts): otherwise 'outranked'.
   * Undefined when nothing changed.
   */
  async remove(roomId: string, user: UserRef, by: string, ban = false, roles: Role[] = ['member', 'moderator']): Promise<Message | 'outranked' | undefined> {
    const kind = ban ? 'member_banned' : by === user.id ? 'member_left' : 'member_removed';
    let outranked = false;
    const event = await this.change(roomId, by, { kind, user }, async (tx) => {
      const [member] = await tx<{ role: Role }[]>`SELECT role FROM room_members WHERE room_id = ${roomId} AND user_id = ${user.id} FOR UPDATE`;
      outranked = member !== undefined && !roles.includes(member.role);
      if (outranked) return false;
      const left = await tx`DELETE FROM room_members WHERE room_id = ${roomId} AND user_id = ${user.id}`;
      if (!ban) return left.count > 0;
      const banned = await tx`
        INSERT INTO room_bans (room_id, user_id, banned_by) VALUES (${roomId}, ${user.id}, ${by}) ON CONFLICT DO NOTHING`;
      return left.count > 0 || banned.count > 0;
    });
    return outranked ? 'outranked' : event;
  }

  /** Records what happened without anyone's request (an account's deletion did it): the event, by nobody. */
  async record(roomId: string, event: TimelineEvent): Promise<Message | undefined> {
    return this.change(roomId, null, event, async () => true);
  }

  /** Lifts a ban; false when there was none. */
  async unban(roomId: string, userId: string): Promise<boolean> {
    const r = await this.sql`DELETE FROM room_bans WHERE room_id = ${roomId} AND user_id = ${userId}`;
    return r.count > 0;
  }

  /** Who is banned from the room, ordered by user id, after the cursor id. */
  async bans(roomId: string, limit: number, afterUserId: string | undefined): Promise<Ban[]> {
    const rows = await this.sql<{ user_id: string; username: string; banned_by: string | null; since: Date }[]>`
      SELECT b.user_id, u.username, b.banned_by, b.since
      FROM room_bans b JOIN users u ON u.id = b.user_id
      WHERE b.room_id = ${roomId} ${afterUserId === undefined ? this.sql`` : this.sql`AND b.user_id > ${afterUserId}`}
      ORDER BY b.user_id LIMIT ${limit}`;
    return rows.map((r) => ({ userId: r.user_id, username: r.username, bannedBy: r.banned_by, since: r.since }));
  }

  /** Makes a member (never the owner) a moderator or a plain member again. */
  async setRole(roomId: string, user: UserRef, role: 'moderator' | 'member', by: string): Promise<Message | undefined> {
    return this.change(roomId, by, { kind: 'role_changed', user, role }, async (tx) => {
      const changed = await tx`
        UPDATE room_members SET role = ${role}
        WHERE room_id = ${roomId} AND user_id = ${user.id} AND role <> 'owner' AND role <> ${role}`;
      return changed.count > 0;
    });
  }

  async rename(roomId: string, name: string, by: string): Promise<Message | undefined> {
    return this.change(roomId, by, { kind: 'room_renamed', name }, async (tx) => {
      const changed = await tx`UPDATE rooms SET name = ${name} WHERE id = ${roomId} AND kind = 'group' AND name <> ${name}`;
      return changed.count > 0;
    });
  }

  /**
   * Deletes a posted message: its row stays, body emptied, as the tombstone (message_deleted).
   * Undefined when there is no such message or it was already deleted.
   */
  async deleteMessage(roomId: string, seq: number, by: string): Promise<Message | undefined> {
    return this.change(roomId, by, { kind: 'message_deleted', target: seq }, async (tx) => {
      const deleted = await tx`
        UPDATE messages SET body = '', attachments = NULL, deleted_at = now()
        WHERE room_id = ${roomId} AND seq = ${seq} AND kind = 'message' AND deleted_at IS NULL`;
      if (deleted.count === 0) return false;
      await tx`DELETE FROM message_reactions WHERE room_id = ${roomId} AND seq = ${seq}`;
      await tx`DELETE FROM mentions WHERE room_id = ${roomId} AND seq = ${seq}`;
      // Its files go with it, each once no other message carries it (migration 13's trigger).
      await tx`DELETE FROM attachment_refs WHERE room_id = ${roomId} AND seq = ${seq}`;
      // Its earlier texts go too: the edits that carried them keep only their target.
      await tx`
        UPDATE messages SET body = ${eventBody({ kind: 'message_edited', target: seq, body: '' })}
        WHERE room_id = ${roomId} AND kind = 'message_edited' AND (body::jsonb ->> 'target')::bigint = ${seq}`;
      return true;
    });
  }

  /**
   * Replaces a posted message's text (message_edited, carrying the new text). Undefined when there
   * is no such message, it was deleted, or the text is the same.
   */
  async editMessage(roomId: string, seq: number, body: string, by: string): Promise<Message | undefined> {
    return this.change(roomId, by, { kind: 'message_edited', target: seq, body }, async (tx) => {
      const edited = await tx`
        UPDATE messages SET body = ${body}, edited_at = now()
        WHERE room_id = ${roomId} AND seq = ${seq} AND kind = 'message' AND deleted_at IS NULL AND body <> ${body}`;
      return edited.count > 0;
    });
  }

  /**
   * Adds (or removes) `user`'s `emoji` on a posted message (reaction_added / reaction_removed).
   * Undefined when nothing changed; 'full' when the message already has `maxEmoji` others.
   */
  async react(roomId: string, seq: number, emoji: string, user: UserRef, add: boolean, maxEmoji: number): Promise<Message | 'full' | undefined> {
    let full = false;
    const event = await this.change(roomId, user.id, { kind: add ? 'reaction_added' : 'reaction_removed', target: seq, emoji, user }, async (tx) => {
      if (!add) {
        const r = await tx`DELETE FROM message_reactions WHERE room_id = ${roomId} AND seq = ${seq} AND emoji = ${emoji} AND user_id = ${user.id}`;
        return r.count > 0;
      }
      const [{ others }] = (await tx`
        SELECT count(DISTINCT emoji)::int AS others FROM message_reactions WHERE room_id = ${roomId} AND seq = ${seq} AND emoji <> ${emoji}`) as unknown as [
        { others: number },
      ];
      const [own] = await tx`SELECT 1 FROM message_reactions WHERE room_id = ${roomId} AND seq = ${seq} AND emoji = ${emoji} LIMIT 1`;
      full = !own && others >= maxEmoji;
      if (full) return false;
      const r = await tx`
        INSERT INTO message_reactions (room_id, seq, user_id, emoji)
        SELECT ${roomId}, ${seq}, ${user.id}, ${emoji} FROM messages
        WHERE room_id = ${roomId} AND seq = ${seq} AND kind = 'message' AND deleted_at IS NULL
        ON CONFLICT DO NOTHING`;
      return r.count > 0;
    });
    return full ? 'full' : event;
  }

  /** The reactions on these messages of the room: per message, each emoji with its count and whether `userId` is among them, oldest emoji first. */
  async reactions(roomId: string, seqs: number[], userId: string): Promise<Map<number, Reaction[]>> {
    const out = new Map<number, Reaction[]>();
    if (seqs.length === 0) return out;
    const rows = await this.sql<{ seq: string; emoji: string; count: number; me: boolean }[]>`
      SELECT seq, emoji, count(*)::int AS count, bool_or(user_id = ${userId}) AS me FROM message_reactions
      WHERE room_id = ${roomId} AND seq = ANY(${seqs}::bigint[])
      GROUP BY seq, emoji ORDER BY seq, min(at), emoji`;
    for (const r of rows) {
      const list = out.get(Number(r.seq)) ?? [];
      list.push({ emoji: r.emoji, count: r.count, me: r.me });
      out.set(Number(r.seq), list);
    }
    return out;
  }

  /** One change and its event, atomically, with the room's row locked first; no event when `apply` changed nothing. */
  private change(roomId: string, by: string | null, event: TimelineEvent, apply: (tx: Tx) => Promise<boolean>): Promise<Message | undefined> {
    return this.sql.begin(async (tx) => {
      if (!(await lockRoom(tx, roomId)) || !(await apply(tx))) return undefined;
      return appendEvent(tx, randomUUID(), roomId, by, event);
    });
  }

  async members(roomId: string, limit: number, afterUserId: string | undefined): Promise<Member[]> {
    const rows = await this.sql<{ user_id: string; username: string; role: Role; joined_at: Date; read_seq: string }[]>`
      SELECT m.user_id, u.username, m.role, m.joined_at, m.read_seq
      FROM room_members m JOIN users u ON u.id = m.user_id
      WHERE m.room_id = ${roomId} ${afterUserId === undefined ? this.sql`` : this.sql`AND m.user_id > ${afterUserId}`}
      ORDER BY m.user_id LIMIT ${limit}`;
    return rows.map((r) => ({ userId: r.user_id, username: r.username, role: r.role, joinedAt: r.joined_at, readSeq: Number(r.read_seq) }));
  }
}
