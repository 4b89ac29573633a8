// Contacts (friend requests and friendships), blocks, and the questions the rest of the hub asks of
// them: may these two open a direct room, may they see each other. A block ends any contact or
// request between the two in the same transaction.

import type postgres from 'postgres';
import type { Sql } from './db.js';
import { directKey } from './rooms.js';
import { toUser, type User, type Row as UserRow } from './users.js';

export type ContactList = 'contacts' | 'incoming' | 'outgoing' | 'blocked';

export interface ContactEntry {
  user: User;
  since: Date;
}

/** What a request came to: a new request, a contact (the other had asked too), or nothing new. */
export type RequestOutcome = 'requested' | 'accepted' | 'already-requested' | 'already-contacts' | 'blocked';

export class Contacts {
  constructor(private readonly sql: Sql) {}

  async request(from: string, to: string): Promise<RequestOutcome> {
    return this.sql.begin(async (tx) => {
      await lockPair(tx, from, to);
      const [blocked] = await tx`SELECT 1 FROM blocks WHERE (blocker_id, blocked_id) IN ((${from}, ${to}), (${to}, ${from}))`;
      if (blocked) return 'blocked';
      const rows = await tx<{ user_id: string; state: string }[]>`
        SELECT user_id, state FROM contacts WHERE (user_id, peer_id) IN ((${from}, ${to}), (${to}, ${from}))`;
      if (rows.some((r) => r.state === 'accepted')) return 'already-contacts';
      if (rows.some((r) => r.user_id === from)) return 'already-requested';
      if (rows.some((r) => r.user_id === to)) {
        await accept(tx, to, from);
        return 'accepted';
      }
      await tx`INSERT INTO contacts (user_id, peer_id, state) VALUES (${from}, ${to}, 'requested')`;
      return 'requested';
    });
  }

  /** Accepts `from`'s request to `me`; false when there is none. */
  async accept(me: string, from: string): Promise<boolean> {
    return this.sql.begin(async (tx) => {
      await lockPair(tx, me, from);
      const [row] = await tx`SELECT 1 FROM contacts WHERE user_id = ${from} AND peer_id = ${me} AND state = 'requested' FOR UPDATE`;
      if (!row) return false;
      await accept(tx, from, me);
      return true;
    });
  }

  /** Withdraws my request to `other` ('cancelled') or turns down theirs to me ('declined'). */
  async dropRequest(me: string, other: string): Promise<'cancelled' | 'declined' | undefined> {
    return this.sql.begin(async (tx) => {
      await lockPair(tx, me, other);
      const rows = await tx<{ user_id: string }[]>`
        DELETE FROM contacts WHERE state = 'requested' AND (user_id, peer_id) IN ((${me}, ${other}), (${other}, ${me}))
        RETURNING user_id`;
      if (rows.length === 0) return undefined;
      return rows[0]?.user_id === me ? 'cancelled' : 'declined';
    });
  }

  /** Ends a contact (both sides); false when they were not contacts. */
  async remove(me: string, other: string): Promise<boolean> {
    return this.sql.begin(async (tx) => {
      await lockPair(tx, me, other);
      const r = await tx`
        DELETE FROM contacts WHERE state = 'accepted' AND (user_id, peer_id) IN ((${me}, ${other}), (${other}, ${me}))`;
      return r.count > 0;
    });
  }

  /** Blocks `other`, ending any contact or request between the two; says what it ended. */
  async block(me: string, other: string): Promise<{ added: boolean; ended: 'contact' | 'request' | undefined }> {
    return this.sql.begin(async (tx) => {
      await lockPair(tx, me, other);
      const added = await tx`INSERT INTO blocks (blocker_id, blocked_id) VALUES (${me}, ${other}) ON CONFLICT DO NOTHING`;
      const gone = await tx<{ state: string }[]>`
        DELETE FROM contacts WHERE (user_id, peer_id) IN ((${me}, ${other}), (${other}, ${me})) RETURNING state`;
      const ended = gone.length === 0 ? undefined : gone.some((r) => r.state === 'accepted') ? 'contact' : 'request';
      return { added: added.count > 0, ended };
    });
  }

  async unblock(me: string, other: string): Promise<boolean> {
    const r = await this.sql`DELETE FROM blocks WHERE blocker_id = ${me} AND blocked_id = ${other}`;
    return r.count > 0;
  }

  /** A page of one of my lists, by the other person's username, after the cursor username. */
  async list(me: string, which: ContactList, limit: number, after: string | undefined): Promise<ContactEntry[]> {
    const from =
      which === 'blocked'
        ? this.sql`SELECT blocked_id AS other, since FROM blocks WHERE blocker_id = ${me}`
        : which === 'contacts'
          ? this.sql`SELECT peer_id AS other, since FROM contacts WHERE user_id = ${me} AND state = 'accepted'`
          : which === 'outgoing'
            ? this.sql`SELECT peer_id AS other, since FROM contacts WHERE user_id = ${me} AND state = 'requested'`
            : this.sql`SELECT user_id AS other, since FROM contacts WHERE peer_id = ${me} AND state = 'requested'`;
    const rows = await this.sql<(UserRow & { since: Date })[]>`
      SELECT u.*, l.since FROM (${from}) l JOIN users u ON u.id = l.other
      ${after === undefined ? this.sql`` : this.sql`WHERE lower(u.username) > lower(${after})`}
      ORDER BY lower(u.username) LIMIT ${limit}`;
    return rows.map((r) => ({ user: toUser(r), since: r.since }));
  }

  /** Whether either of the two has blocked the other. */
  async blockedEitherWay(a: string, b: string): Promise<boolean> {
    const rows = await this.sql`SELECT 1 FROM blocks WHERE (blocker_id, blocked_id) IN ((${a}, ${b}), (${b}, ${a}))`;
    return rows.length > 0;
  }

  async areContacts(a: string, b: string): Promise<boolean> {
    const rows = await this.sql`SELECT 1 FROM contacts WHERE user_id = ${a} AND peer_id = ${b} AND state = 'accepted'`;
    return rows.length > 0;
  }

  /** Whether the members of a direct room have blocked each other (false for a group room). */
  async directRoomBlocked(roomId: string): Promise<boolean> {
    const rows = await this.sql`
      SELECT 1 FROM room_members a JOIN room_members b ON b.room_id = a.room_id AND b.user_id <> a.user_id
      JOIN rooms r ON r.id = a.room_id AND r.kind = 'direct'
      JOIN blocks k ON k.blocker_id = a.user_id AND k.blocked_id = b.user_id
      WHERE a.room_id = ${roomId} LIMIT 1`;
    return rows.length > 0;
  }

  /** The direct room of two people, if they have one. */
  async directRoom(a: string, b: string): Promise<string | undefined> {
    const [row] = await this.sql<{ id: string }[]>`SELECT id FROM rooms WHERE direct_key = ${directKey(a, b)}`;
    return row?.id;
  }
}

type Tx = postgres.TransactionSql<Record<string, never>>;

/**
 * Every change between two people takes both their user rows, in id order: changes of one pair run
 * one after the other (a block cannot miss a request committing beside it), and two people acting
 * on each other at once cannot deadlock. FOR NO KEY UPDATE leaves foreign-key checks unblocked.
 */
async function lockPair(tx: Tx, a: string, b: string): Promise<void> {
  await tx`SELECT 1 FROM users WHERE id IN (${a}, ${b}) ORDER BY id FOR NO KEY UPDATE`;
}

async function accept(tx: Tx, from: string, to: string): Promise<void> {
  await tx`UPDATE contacts SET state = 'accepted', since = now() WHERE user_id = ${from} AND peer_id = ${to}`;
  await tx`INSERT INTO contacts (user_id, peer_id, state) VALUES (${to}, ${from}, 'accepted')
           ON CONFLICT (user_id, peer_id) DO UPDATE SET state = 'accepted', since = now()`;
}
