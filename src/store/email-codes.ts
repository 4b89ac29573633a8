// One-time codes sent by email: to verify an address, or to log in without a password. At most one
// live code per person and purpose; only a keyed hash of it is stored. A guess counts as an attempt
// whether it is right or not, and a code is used at most once (its deletion decides a race).

import { timingSafeEqual } from 'node:crypto';
import type { Sql } from './db.js';

export type CodePurpose = 'verify' | 'login';

export class EmailCodes {
  constructor(private readonly sql: Sql) {}

  /** Stores a new code for the person and purpose, replacing any earlier one. */
  async put(c: { userId: string; purpose: CodePurpose; email: string; hash: Buffer; expiresAt: Date }): Promise<void> {
    await this.sql`
      INSERT INTO email_codes (user_id, purpose, email, code_hash, expires_at)
      VALUES (${c.userId}, ${c.purpose}, ${c.email}, ${c.hash}, ${c.expiresAt})
      ON CONFLICT (user_id, purpose) DO UPDATE
        SET email = EXCLUDED.email, code_hash = EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at, attempts = 0`;
  }

  /**
   * One guess at the person's live code: the address it was sent to when right, 'wrong' when a
   * live code did not match, 'none' when there is no live code (never sent, expired, used, or
   * `maxAttempts` guesses spent).
   */
  async attempt(userId: string, purpose: CodePurpose, hash: Buffer, maxAttempts: number): Promise<{ email: string } | 'wrong' | 'none'> {
    const [row] = await this.sql<{ email: string; code_hash: Buffer }[]>`
      UPDATE email_codes SET attempts = attempts + 1
      WHERE user_id = ${userId} AND purpose = ${purpose} AND expires_at > now() AND attempts < ${maxAttempts}
      RETURNING email, code_hash`;
    if (!row) return 'none';
    if (!timingSafeEqual(row.code_hash, hash)) return 'wrong';
    const used = await this.sql`DELETE FROM email_codes WHERE user_id = ${userId} AND purpose = ${purpose} AND code_hash = ${hash}`;
    return used.count === 1 ? { email: row.email } : 'none';
  }

  /** Drops the person's live code for `purpose`, or every one of theirs. */
  async drop(userId: string, purpose?: CodePurpose): Promise<void> {
    await this.sql`DELETE FROM email_codes WHERE user_id = ${userId} ${purpose === undefined ? this.sql`` : this.sql`AND purpose = ${purpose}`}`;
  }

  /** Drops codes that expired; returns how many. */
  async prune(): Promise<number> {
    const r = await this.sql`DELETE FROM email_codes WHERE expires_at < now()`;
    return r.count;
  }
}
