// Refresh tokens, stored only as SHA-256 hashes. Tokens issued from one login form a family; each
// use consumes a token atomically (so two racing refreshes cannot both win) and issues its
// successor in the same family. Presenting a consumed token ends the whole family, the session
// (sessions.ts ends sessions and revokes their tokens).

import type { Sql } from './db.js';
import type { EndReason } from './sessions.js';

export interface RefreshTokenRow {
  family_id: string;
  user_id: string;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
  revoked_reason: EndReason | null;
}

export class RefreshTokens {
  constructor(private readonly sql: Sql) {}

  async insert(t: { hash: Buffer; familyId: string; userId: string; expiresAt: Date }): Promise<void> {
    await this.sql`
      INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)
      VALUES (${t.hash}, ${t.familyId}, ${t.userId}, ${t.expiresAt})`;
  }

  /**
   * Marks a live token used and returns it; returns `{ reused }` with the row when the token
   * exists but was already used or revoked or has expired, and undefined when it never existed.
   */
  async consume(hash: Buffer): Promise<{ ok: RefreshTokenRow } | { stale: RefreshTokenRow } | undefined> {
    const [ok] = await this.sql<RefreshTokenRow[]>`
      UPDATE refresh_tokens SET used_at = now()
      WHERE token_hash = ${hash} AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
      RETURNING family_id, user_id, expires_at, used_at, revoked_at, revoked_reason`;
    if (ok) return { ok };
    const [stale] = await this.sql<RefreshTokenRow[]>`
      SELECT family_id, user_id, expires_at, used_at, revoked_at, revoked_reason FROM refresh_tokens WHERE token_hash = ${hash}`;
    return stale && { stale };
  }

  /** The session (family) a token belongs to and its user, without consuming it. */
  async sessionOf(hash: Buffer): Promise<{ sessionId: string; userId: string } | undefined> {
    const [row] = await this.sql<{ family_id: string; user_id: string }[]>`
      SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = ${hash}`;
    return row && { sessionId: row.family_id, userId: row.user_id };
  }

  /** Drops tokens that expired more than a day ago; returns how many. */
  async prune(): Promise<number> {
    const r = await this.sql`DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'`;
    return r.count;
  }
}
