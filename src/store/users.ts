// Users: accounts and the username search. Usernames are unique without regard to case and keep
// the casing their owner chose.

import { randomUUID } from 'node:crypto';
import type { Sql } from './db.js';
import { translateDriverError, UniqueViolationError } from './errors.js';

export interface User extends Profile {
  id: string;
  username: string;
  isAdmin: boolean;
  createdAt: Date;
  /** Verified (a code sent to it came back): logs in by code. Private to its owner. */
  email: string | null;
  /** Waiting for its verification code. Private to its owner. */
  pendingEmail: string | null;
  /** Who may open a direct room with this person. */
  dmPolicy: DmPolicy;
  /** When an admin disabled the account (it cannot log in), or null. */
  disabledAt: Date | null;
  /** A bot: posts through the server API, never logs in. */
  bot: boolean;
}

export type DmPolicy = 'anyone' | 'contacts';

/** What a person may change about how others see them. */
export interface Profile {
  displayName: string | null;
  bio: string | null;
  avatarUrl: string | null;
  timeZone: string | null;
}

export interface UserWithHash extends User {
  passwordHash: string;
}

export interface Row {
  id: string;
  username: string;
  display_name: string | null;
  bio: string | null;
  avatar_url: string | null;
  time_zone: string | null;
  email: string | null;
  pending_email: string | null;
  dm_policy: DmPolicy;
  is_admin: boolean;
  created_at: Date;
  password_hash: string;
  disabled_at: Date | null;
  bot: boolean;
}

export const toUser = (r: Row): User => ({
  id: r.id,
  username: r.username,
  displayName: r.display_name,
  bio: r.bio,
  avatarUrl: r.avatar_url,
  timeZone: r.time_zone,
  email: r.email,
  pendingEmail: r.pending_email,
  dmPolicy: r.dm_policy,
  isAdmin: r.is_admin,
  createdAt: r.created_at,
  disabledAt: r.disabled_at,
  bot: r.bot,
});

export class Users {
  constructor(private readonly sql: Sql) {}

  /**
   * The bot of this name, created for `key` (null: the system's, shared) if nobody holds the name
   * and the key has fewer than `maxPerKey` bots: 'taken' when a person holds it, 'other' when it is
   * another key's bot, 'full'. Bots have no password (their hash matches none) and cannot log in.
   */
  async bot(username: string, displayName: string | null, key: string | null, maxPerKey: number): Promise<User | 'taken' | 'other' | 'full'> {
    const byName = async () => (await this.sql<(Row & { bot_key: string | null })[]>`SELECT * FROM users WHERE lower(username) = lower(${username})`)[0];
    let found = await byName();
    if (!found) {
      const [made] = await this.sql<(Row & { bot_key: string | null })[]>`
        INSERT INTO users (id, username, display_name, password_hash, is_admin, bot, bot_key)
        SELECT ${randomUUID()}, ${username}, ${displayName}, '!', false, true, ${key}
        WHERE ${key}::uuid IS NULL OR (SELECT count(*) FROM users WHERE bot_key = ${key}) < ${maxPerKey}
        ON CONFLICT DO NOTHING RETURNING *`;
      // Not made: the key has its bots, or the name was taken at the same moment (read it).
      found = made ?? (await byName());
      if (!found) return 'full';
    }
    if (!found.bot) return 'taken';
    return found.bot_key === key ? toUser(found) : 'other';
  }

  /** Returns undefined when the username is taken. */
  async create(u: { id: string; username: string; displayName: string | null; passwordHash: string; isAdmin: boolean }): Promise<User | undefined> {
    try {
      return await this.sql.begin(async (tx) => {
        const [row] = await tx<Row[]>`
          INSERT INTO users (id, username, display_name, password_hash, is_admin)
          VALUES (${u.id}, ${u.username}, ${u.displayName}, ${u.passwordHash}, ${u.isAdmin})
          RETURNING *`;
        const user = toUser(row as Row);
        const data = JSON.stringify({ id: user.id, username: user.username, createdAt: user.createdAt });
        await tx`SELECT sb_webhook_event('user.registered', ${user.id}, ${user.id}, ${data})`;
        return user;
      });
    } catch (e) {
      const err = translateDriverError(e);
      if (err instanceof UniqueViolationError) return undefined;
      throw err;
    }
  }

  async byUsername(username: string): Promise<UserWithHash | undefined> {
    const [row] = await this.sql<Row[]>`SELECT * FROM users WHERE lower(username) = lower(${username})`;
    return row && { ...toUser(row), passwordHash: row.password_hash };
  }

  async byId(id: string): Promise<User | undefined> {
    const [row] = await this.sql<Row[]>`SELECT * FROM users WHERE id = ${id}`;
    return row && toUser(row);
  }

  /** Whether the account still exists (a signed access token outlives a deleted account). */
  async exists(id: string): Promise<boolean> {
    const rows = await this.sql`SELECT 1 FROM users WHERE id = ${id}`;
    return rows.length > 0;
  }

  /** Sets the given profile fields (null clears one); undefined when the account is gone. */
  async updateProfile(id: string, p: Partial<Profile> & { dmPolicy?: DmPolicy }): Promise<User | undefined> {
    const cols: Record<string, string | null> = {};
    if (p.dmPolicy !== undefined) cols.dm_policy = p.dmPolicy;
    if (p.displayName !== undefined) cols.display_name = p.displayName;
    if (p.bio !== undefined) cols.bio = p.bio;
    if (p.avatarUrl !== undefined) cols.avatar_url = p.avatarUrl;
    if (p.timeZone !== undefined) cols.time_zone = p.timeZone;
    const [row] =
      Object.keys(cols).length === 0
        ? await this.sql<Row[]>`SELECT * FROM users WHERE id = ${id}`
        : // Another avatar (a link, or none) replaces an uploaded one: its blob goes.
          await this.sql<Row[]>`
            ${
              p.avatarUrl !== undefined
                ? this.sql`WITH dropped AS (
                    DELETE FROM blobs WHERE owner_id = ${id} AND kind = 'avatar' AND '/api/v1/attachments/' || id::text IS DISTINCT FROM ${p.avatarUrl})`
                : this.sql``
            }
            UPDATE users SET ${this.sql(cols)} WHERE id = ${id} RETURNING *`;
    return row && toUser(row);
  }

  /** The account whose verified address this is, regardless of case. */
  async byEmail(email: string): Promise<User | undefined> {
    const [row] = await this.sql<Row[]>`SELECT * FROM users WHERE lower(email) = lower(${email})`;
    return row && toUser(row);
  }

  /** Sets (or clears) the address waiting for its verification code. */
  async setPendingEmail(id: string, email: string | null): Promise<User | undefined> {
    const [row] = await this.sql<Row[]>`UPDATE users SET pending_email = ${email} WHERE id = ${id} RETURNING *`;
    return row && toUser(row);
  }

  /**
   * Makes a verified address the account's email (clearing the pending one if it was this one);
   * 'taken' when another account verified it first. Null removes the address.
   */
  async setEmail(id: string, email: string | null): Promise<User | 'taken' | undefined> {
    try {
      const [row] = await this.sql<Row[]>`
        UPDATE users SET email = ${email},
          pending_email = CASE WHEN ${email}::text IS NULL OR lower(pending_email) = lower(${email}::text) THEN NULL ELSE pending_email END
        WHERE id = ${id} RETURNING *`;
      return row && toUser(row);
    } catch (e) {
      const err = translateDriverError(e);
      if (err instanceof UniqueViolationError) return 'taken';
      throw err;
    }
  }

  /** Makes the account an admin; false when it was one already (or does not exist). */
  async makeAdmin(username: string): Promise<boolean> {
    const r = await this.sql`UPDATE users SET is_admin = true WHERE lower(username) = lower(${username}) AND NOT is_admin`;
    return r.count > 0;
  }

  /** Disables or re-enables an account; undefined when it does not exist. */
  async setDisabled(id: string, disabled: boolean): Promise<User | undefined> {
    const [row] = await this.sql<Row[]>`
      UPDATE users SET disabled_at = CASE WHEN ${disabled} THEN coalesce(disabled_at, now()) END WHERE id = ${id} RETURNING *`;
    return row && toUser(row);
  }

  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.sql`UPDATE users SET password_hash = ${passwordHash} WHERE id = ${id}`;
  }

  /**
   * Deletes an account and says what went with it. Its messages stay, with no sender. Each group
   * room it owned passes to its longest-standing other member, or is deleted with its history when
   * it had none. It leaves every room (direct rooms stay, for the other person). Its robots are
   * deleted (with their certificates and audit), its grants on others' robots removed, and its
   * sessions and refresh tokens with the account. Undefined when there was no such account.
   */
  async remove(id: string): Promise<AccountRemoval | undefined> {
    // messages.sender_id has no foreign key (migration 4): the sender is cleared by hand, by the
    // (sender, cid) index. Most of it in batches first, holding no room lock, so the rooms' group
    // commits do not wait behind a long history; the transaction below clears what came meanwhile.
    for (;;) {
      const r = await this.sql`
        UPDATE messages SET sender_id = NULL
        WHERE (sender_id, client_msg_id) IN (SELECT sender_id, client_msg_id FROM messages WHERE sender_id = ${id} LIMIT ${SENDER_BATCH})`;
      if (r.count < SENDER_BATCH) break;
    }
    return this.sql.begin(async (tx) => {
      // Its rooms locked first, in id order: the order a group commit locks them in (migration 4).
      const rooms = await tx<{ id: string; kind: string; owner_id: string | null }[]>`
        SELECT r.id, r.kind, r.owner_id FROM rooms r JOIN room_members m ON m.room_id = r.id AND m.user_id = ${id}
        ORDER BY r.id FOR UPDATE OF r`;
      const out: AccountRemoval = { roomsLeft: [], handedOver: [], roomsDeleted: [], robotsDeleted: [], grantsLost: [], contactsLost: [] };
      for (const r of rooms) {
        if (r.kind === 'group' && r.owner_id === id) {
          const [next] = await tx<{ user_id: string }[]>`
            SELECT user_id FROM room_members WHERE room_id = ${r.id} AND user_id <> ${id}
            ORDER BY joined_at, user_id LIMIT 1`;
          if (!next) {
            await tx`DELETE FROM rooms WHERE id = ${r.id}`;
            await tx`DELETE FROM messages WHERE room_id = ${r.id}`;
            out.roomsDeleted.push(r.id);
            continue;
          }
          await tx`UPDATE rooms SET owner_id = ${next.user_id} WHERE id = ${r.id}`;
          await tx`UPDATE room_members SET role = 'owner' WHERE room_id = ${r.id} AND user_id = ${next.user_id}`;
          out.handedOver.push({ roomId: r.id, ownerId: next.user_id });
        }
        out.roomsLeft.push(r.id);
      }
      out.robotsDeleted = (await tx<{ id: string }[]>`SELECT id FROM robots WHERE owner_id = ${id}`).map((r) => r.id);
      out.grantsLost = (await tx<{ robot_id: string }[]>`SELECT robot_id FROM robot_grants WHERE user_id = ${id}`).map((r) => r.robot_id);
      out.contactsLost = await tx<{ userId: string; kind: 'removed' | 'cancelled' | 'declined' }[]>`
        SELECT DISTINCT ON (other) other AS "userId", kind FROM (
          SELECT CASE WHEN user_id = ${id} THEN peer_id ELSE user_id END AS other,
            CASE WHEN state = 'accepted' THEN 'removed' WHEN user_id = ${id} THEN 'cancelled' ELSE 'declined' END AS kind
          FROM contacts WHERE user_id = ${id} OR peer_id = ${id}
        ) c ORDER BY other, kind DESC`;
      const deleted = await tx`DELETE FROM users WHERE id = ${id}`;
      if (deleted.count === 0) return undefined;
      // After the memberships are gone: a commit that checked one finished before that DELETE
      // could take its row lock, and one that comes later is refused, so nothing with this sender
      // can be stored after this statement (even in a room joined since the lock above).
      await tx`UPDATE messages SET sender_id = NULL WHERE sender_id = ${id}`;
      return out;
    });
  }

  /**
   * People for a search box, ordered by username, after the cursor username, never `self` nor
   * anyone who blocked `self`:
   * with an `@` in `q`, only the account that verified exactly that address (regardless of case);
   * otherwise those with a word of their username or display name starting with each word of `q`
   * (at most SEARCH_WORDS, case-insensitive, literally: no wildcards).
   */
  async search(q: string, limit: number, after: string | undefined, self?: string): Promise<User[]> {
    // Split as the database splits names; lower-cased by the database's lower(), as the stored words are.
    const words = q
      .split(/[\s\u00a0]+/)
      .filter(Boolean)
      .slice(0, SEARCH_WORDS);
    // A prefix is a range of the C-collated key: the index serves it in a generic plan too (a LIKE
    // pattern that is a parameter it does not), and nothing in a word is a wildcard. Several words
    // intersect their sets of people before any row of users is read.
    const prefix = (w: string) => this.sql`SELECT user_id FROM user_name_words WHERE word >= lower(${w}) AND word < lower(${w}) || ${'\u{10FFFF}'}`;
    const match = q.includes('@')
      ? this.sql`lower(email) = lower(${q.trim()})`
      : words.length === 0
        ? this.sql`true`
        : this.sql`id IN (${words.slice(1).reduce((acc, w) => this.sql`${acc} INTERSECT ${prefix(w)}`, prefix(words[0] as string))})`;
    const rows = await this.sql<Row[]>`
      SELECT * FROM users
      WHERE ${match}
        ${self === undefined ? this.sql`` : this.sql`AND id <> ${self} AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = users.id AND blocked_id = ${self})`}
        ${after === undefined ? this.sql`` : this.sql`AND lower(username) > lower(${after})`}
      ORDER BY lower(username)
      LIMIT ${limit}`;
    return rows.map(toUser);
  }
}

/** Words of a search that must each match; more are ignored. */
export const SEARCH_WORDS = 4;

/** Messages whose sender is cleared per statement before an account is deleted. */
const SENDER_BATCH = 5_000;

/** What went with a deleted account (see `Users.remove`). */
export interface AccountRemoval {
  /** Rooms it was a member of that still exist. */
  roomsLeft: string[];
  /** Group rooms it owned that passed to another member (also in roomsLeft). */
  handedOver: { roomId: string; ownerId: string }[];
  /** Group rooms it owned alone, deleted with it. */
  roomsDeleted: string[];
  robotsDeleted: string[];
  /** Others' robots it held a grant on. */
  grantsLost: string[];
  /** People it was a contact of (`removed`), had asked (`cancelled`) or had been asked by (`declined`). */
  contactsLost: { userId: string; kind: 'removed' | 'cancelled' | 'declined' }[];
}

/** Escape LIKE's metacharacters so user input matches literally. */
export const escapeLike = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);
