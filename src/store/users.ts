// Users: accounts and the username search. Usernames are unique without regard to case and keep
// the casing their owner chose.

import type { Sql } from './db.js';
import { translateDriverError, UniqueViolationError } from './errors.js';

export interface User {
  id: string;
  username: string;
  displayName: string | null;
  isAdmin: boolean;
  createdAt: Date;
}

export interface UserWithHash extends User {
  passwordHash: string;
}

interface Row {
  id: string;
  username: string;
  display_name: string | null;
  is_admin: boolean;
  created_at: Date;
  password_hash: string;
}

const toUser = (r: Row): User => ({
  id: r.id,
  username: r.username,
  displayName: r.display_name,
  isAdmin: r.is_admin,
  createdAt: r.created_at,
});

export class Users {
  constructor(private readonly sql: Sql) {}

  /** Returns undefined when the username is taken. */
  async create(u: { id: string; username: string; displayName: string | null; passwordHash: string; isAdmin: boolean }): Promise<User | undefined> {
    try {
      const [row] = await this.sql<Row[]>`
        INSERT INTO users (id, username, display_name, password_hash, is_admin)
        VALUES (${u.id}, ${u.username}, ${u.displayName}, ${u.passwordHash}, ${u.isAdmin})
        RETURNING *`;
      return row && toUser(row);
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

  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.sql`UPDATE users SET password_hash = ${passwordHash} WHERE id = ${id}`;
  }

  /** Usernames starting with `prefix` (case-insensitive), in order, after the cursor username. */
  async search(prefix: string, limit: number, after: string | undefined): Promise<User[]> {
    const pattern = `${escapeLike(prefix.toLowerCase())}%`;
    const rows = await this.sql<Row[]>`
      SELECT * FROM users
      WHERE lower(username) LIKE ${pattern}
        ${after === undefined ? this.sql`` : this.sql`AND lower(username) > lower(${after})`}
      ORDER BY lower(username)
      LIMIT ${limit}`;
    return rows.map(toUser);
  }
}

/** Escape LIKE's metacharacters so user input matches literally. */
export const escapeLike = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);
