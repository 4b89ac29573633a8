// Sessions: one per login, the family its refresh tokens rotate in. What a person lists and ends as
// their signed-in devices. Ending a session revokes its refresh tokens in the same transaction; its
// access tokens name it (the `sid` claim) and are refused from then on (`live`).

import type { Sql } from './db.js';

/** Why a session ended. `expired` only marks sessions of tokens issued before sessions were kept. */
export type EndReason = 'logout' | 'reuse' | 'revoked' | 'password' | 'disabled';

/** Sessions of `userId` that ended: the listed ones, or all of them (the account was deleted or disabled). */
export interface SessionsEnded {
  userId: string;
  sessions: string[] | 'all';
  /** With 'all': why (the sockets' close reason tells the person). */
  reason?: 'deleted' | 'disabled';
}

export interface SessionInfo {
  id: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  userAgent: string | null;
  ip: string | null;
}

interface Row {
  id: string;
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
  user_agent: string | null;
  ip: string | null;
}

const toSession = (r: Row): SessionInfo => ({
  id: r.id,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  expiresAt: r.expires_at,
  userAgent: r.user_agent,
  ip: r.ip,
});

/** Bounds what a client's User-Agent may put in a row. */
const USER_AGENT_MAX = 256;

export class Sessions {
  constructor(private readonly sql: Sql) {}

  /** Starts a session; false when the account is gone or disabled. */
  async start(s: { id: string; userId: string; expiresAt: Date; userAgent: string | undefined; ip: string }): Promise<boolean> {
    // Not for a disabled account: a login that read it just before an admin disabled it starts no session.
    const r = await this.sql`
      INSERT INTO sessions (id, user_id, expires_at, user_agent, ip)
      SELECT ${s.id}, id, ${s.expiresAt}, ${s.userAgent?.slice(0, USER_AGENT_MAX) ?? null}, ${s.ip.slice(0, 64)}
      FROM users WHERE id = ${s.userId} AND disabled_at IS NULL`;
    return r.count > 0;
  }

  /**
   * A refresh: the session was used now and lives until its new refresh token expires. False when
   * it has ended (a sign-out raced the refresh). A session with no row (its login came from a node
   * of the previous version, during a rolling upgrade) gets one.
   */
  async refreshed(id: string, userId: string, expiresAt: Date): Promise<boolean> {
    const rows = await this.sql`
      INSERT INTO sessions (id, user_id, expires_at)
        SELECT ${id}, id, ${expiresAt} FROM users WHERE id = ${userId} AND disabled_at IS NULL
      ON CONFLICT (id) DO UPDATE SET last_used_at = now(), expires_at = EXCLUDED.expires_at
        WHERE sessions.ended_at IS NULL AND sessions.user_id = EXCLUDED.user_id
      RETURNING id`;
    return rows.length > 0;
  }

  /**
   * Whether an access token of `userId` from session `sid` may still be used: the account exists
   * and is not disabled and, when the token names a session, that session has not ended. One
   * primary-key lookup.
   */
  async live(userId: string, sid: string | undefined): Promise<'ok' | 'no-account' | 'disabled' | 'ended'> {
    const [row] =
      sid === undefined
        ? await this.sql<{ ended: boolean; disabled: boolean }[]>`
            SELECT false AS ended, disabled_at IS NOT NULL AS disabled FROM users WHERE id = ${userId}`
        : await this.sql<{ ended: boolean; disabled: boolean }[]>`
            SELECT (s.id IS NULL OR s.ended_at IS NOT NULL) AS ended, u.disabled_at IS NOT NULL AS disabled
            FROM users u LEFT JOIN sessions s ON s.id = ${sid} AND s.user_id = u.id
            WHERE u.id = ${userId}`;
    if (!row) return 'no-account';
    if (row.disabled) return 'disabled';
    return row.ended ? 'ended' : 'ok';
  }

  /** The user's sessions that have not ended or expired, newest first. */
  async list(userId: string): Promise<SessionInfo[]> {
    const rows = await this.sql<Row[]>`
      SELECT id, created_at, last_used_at, expires_at, user_agent, ip FROM sessions
      WHERE user_id = ${userId} AND ended_at IS NULL AND expires_at > now()
      ORDER BY created_at DESC, id`;
    return rows.map(toSession);
  }

  /**
   * Ends sessions of `userId` and revokes their refresh tokens: the one named by `only`, or every
   * live one except `except`. Returns the ids it ended.
   */
  async end(userId: string, which: { only: string } | { except: string | undefined }, reason: EndReason): Promise<string[]> {
    return this.sql.begin(async (tx) => {
      const ended = await tx<{ id: string }[]>`
        UPDATE sessions SET ended_at = now(), ended_reason = ${reason}
        WHERE user_id = ${userId} AND ended_at IS NULL AND expires_at > now()
          ${'only' in which ? tx`AND id = ${which.only}` : which.except === undefined ? tx`` : tx`AND id <> ${which.except}`}
        RETURNING id`;
      const ids = ended.map((r) => r.id);
      if (ids.length > 0) {
        await tx`
          UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = ${reason}
          WHERE family_id = ANY(${ids}::uuid[]) AND revoked_at IS NULL`;
      }
      return ids;
    });
  }

  /** Drops sessions that ended or expired more than a day ago (their tokens have expired too, and are pruned with the others); returns how many. */
  async prune(): Promise<number> {
    const r = await this.sql`
      DELETE FROM sessions WHERE coalesce(ended_at, expires_at) < now() - interval '1 day'`;
    return r.count;
  }
}
