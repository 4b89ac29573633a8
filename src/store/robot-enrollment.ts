// Robot enrollment without a key leaving the device (migration 15): fleet bootstrap tokens, with
// which robots register themselves, and certificates a connected robot renews itself. A token's
// secret is stored as its SHA-256 only; each enrollment takes one use in the statement that checks
// the token, so concurrent enrollments never take more uses than it has.

import type { Sql, Tx } from './db.js';
import { translateDriverError, UniqueViolationError } from './errors.js';
import type { NewCertificate, Robot } from './robots.js';

export interface BootstrapToken {
  id: string;
  ownerId: string;
  name: string | null;
  /** The secret's first characters, to recognise a token in a list. */
  prefix: string;
  uses: number;
  usesLeft: number;
  expiresAt: Date;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** Why a token admitted no robot. */
export type TokenRefusal = 'unknown' | 'expired' | 'revoked' | 'used-up' | 'owner-disabled';

interface TokenRow {
  id: string;
  owner_id: string;
  name: string | null;
  prefix: string;
  uses: number;
  uses_left: number;
  expires_at: Date;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const toToken = (r: TokenRow): BootstrapToken => ({
  id: r.id,
  ownerId: r.owner_id,
  name: r.name,
  prefix: r.prefix,
  uses: r.uses,
  usesLeft: r.uses_left,
  expiresAt: r.expires_at,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

/** What `refusal` says about a token row (or its absence) at `now`. */
function refusalOf(row: (TokenRow & { owner_disabled_at: Date | null }) | undefined, now: Date): TokenRefusal | undefined {
  if (!row) return 'unknown';
  if (row.owner_disabled_at) return 'owner-disabled';
  if (row.revoked_at) return 'revoked';
  if (row.expires_at <= now) return 'expired';
  if (row.uses_left <= 0) return 'used-up';
  return undefined;
}

/** Why the token of this secret hash admits no robot now (or undefined), read with `sql` (a pool or a transaction). */
async function tokenRefusal(sql: Sql | Tx, secretHash: Buffer): Promise<{ refusal: TokenRefusal | undefined; ownerId?: string }> {
  const [row] = await sql<(TokenRow & { now: Date; owner_disabled_at: Date | null })[]>`
    SELECT t.*, now() AS now, u.disabled_at AS owner_disabled_at
    FROM robot_bootstrap_tokens t JOIN users u ON u.id = t.owner_id
    WHERE t.secret_hash = ${secretHash}`;
  return { refusal: refusalOf(row, row?.now ?? new Date()), ownerId: row?.owner_id };
}

/**
 * Every change to a robot's certificates first locks the robot's row, so they run one at a time per
 * robot in one lock order: a revocation that waits for a renewal sees the certificate it added,
 * and a renewal never waits on a certificate row another change holds (no deadlock).
 */
export async function lockRobot(tx: Tx, robotId: string): Promise<boolean> {
  const rows = await tx`SELECT 1 FROM robots WHERE id = ${robotId} FOR UPDATE`;
  return rows.length > 0;
}

export class RobotEnrollment {
  constructor(private readonly sql: Sql) {}

  /**
   * Stores a new token, after deleting the owner's tokens that ended (expired, revoked or used up)
   * more than `keepEndedS` ago. Undefined when the owner still keeps `maxPerOwner` tokens.
   */
  async createToken(
    t: { id: string; ownerId: string; name: string | null; secretHash: Buffer; prefix: string; uses: number; expiresAt: Date },
    limits: { maxPerOwner: number; keepEndedS: number },
  ): Promise<BootstrapToken | undefined> {
    return this.sql.begin(async (tx) => {
      // One creation at a time per owner, so the count below holds when the insert commits.
      // NO KEY UPDATE: it does not block the KEY SHARE locks of rows that reference the user.
      await tx`SELECT 1 FROM users WHERE id = ${t.ownerId} FOR NO KEY UPDATE`;
      await tx`DELETE FROM robot_bootstrap_tokens
               WHERE owner_id = ${t.ownerId}
                 AND coalesce(revoked_at, CASE WHEN uses_left = 0 THEN last_used_at END, expires_at)
                     < now() - make_interval(secs => ${limits.keepEndedS})`;
      const [count] = await tx<{ n: number }[]>`SELECT count(*)::int AS n FROM robot_bootstrap_tokens WHERE owner_id = ${t.ownerId}`;
      if ((count?.n ?? 0) >= limits.maxPerOwner) return undefined;
      const [row] = await tx<TokenRow[]>`
        INSERT INTO robot_bootstrap_tokens (id, owner_id, name, secret_hash, prefix, uses, uses_left, expires_at)
        VALUES (${t.id}, ${t.ownerId}, ${t.name}, ${t.secretHash}, ${t.prefix}, ${t.uses}, ${t.uses}, ${t.expiresAt})
        RETURNING *`;
      return toToken(row as TokenRow);
    });
  }

  /** The owner's tokens, newest first. */
  async listTokens(ownerId: string): Promise<BootstrapToken[]> {
    const rows = await this.sql<TokenRow[]>`
      SELECT * FROM robot_bootstrap_tokens WHERE owner_id = ${ownerId} ORDER BY created_at DESC, id`;
    return rows.map(toToken);
  }

  /** Revokes one of the owner's tokens (a second revocation keeps the first time); undefined if it has none of that id. */
  async revokeToken(ownerId: string, id: string): Promise<BootstrapToken | undefined> {
    const [row] = await this.sql<TokenRow[]>`
      UPDATE robot_bootstrap_tokens SET revoked_at = coalesce(revoked_at, now())
      WHERE id = ${id} AND owner_id = ${ownerId} RETURNING *`;
    return row && toToken(row);
  }

  /** Why the token of this secret hash would not admit a robot now; undefined when it would. */
  async refusal(secretHash: Buffer): Promise<{ refusal: TokenRefusal | undefined; ownerId?: string }> {
    return tokenRefusal(this.sql, secretHash);
  }

  /**
   * Takes one use of the token and registers the robot, owned by the token's owner, with its first
   * certificate, in one transaction: the use is taken only if the robot is registered. `taken`: the
   * owner already has a robot of that name (nothing changed).
   */
  async enroll(
    secretHash: Buffer,
    r: { id: string; name: string },
    cert: NewCertificate,
  ): Promise<{ robot: Robot; tokenId: string } | { refused: TokenRefusal } | 'taken'> {
    try {
      return await this.sql.begin(async (tx) => {
        const [used] = await tx<{ id: string; owner_id: string }[]>`
          UPDATE robot_bootstrap_tokens SET uses_left = uses_left - 1, last_used_at = now()
          WHERE secret_hash = ${secretHash} AND revoked_at IS NULL AND expires_at > now() AND uses_left > 0
            AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = owner_id AND u.disabled_at IS NOT NULL)
          RETURNING id, owner_id`;
        if (!used) return { refused: (await tokenRefusal(tx, secretHash)).refusal ?? 'used-up' };
        const [row] = await tx<{ id: string; name: string; owner_id: string; created_at: Date; last_seen_at: Date | null }[]>`
          INSERT INTO robots (id, name, owner_id, bootstrap_token) VALUES (${r.id}, ${r.name}, ${used.owner_id}, ${used.id})
          RETURNING id, name, owner_id, created_at, last_seen_at`;
        await tx`INSERT INTO robot_certificates (fingerprint, robot_id, serial, not_after)
                 VALUES (${cert.fingerprint}, ${r.id}, ${cert.serial}, ${cert.notAfter})`;
        const x = row as NonNullable<typeof row>;
        return { robot: { id: x.id, name: x.name, ownerId: x.owner_id, createdAt: x.created_at, lastSeenAt: x.last_seen_at }, tokenId: used.id };
      });
    } catch (e) {
      const err = translateDriverError(e);
      if (err instanceof UniqueViolationError && err.constraint === 'robots_owner_name_lower') return 'taken';
      throw err;
    }
  }

  /**
   * Records a certificate a connected robot asked for with its current one (`current`, SHA-256),
   * if that one is still a valid certificate of the robot; false (nothing stored) if not. Earlier
   * renewals of the robot never used are deleted (no link ever used them): at most one renewal
   * waits for its first use, and unused renewals leave no rows behind.
   */
  async renew(robotId: string, current: Buffer, cert: NewCertificate): Promise<boolean> {
    return this.sql.begin(async (tx) => {
      if (!(await lockRobot(tx, robotId))) return false;
      const [ok] = await tx`
        SELECT 1 FROM robot_certificates
        WHERE fingerprint = ${current} AND robot_id = ${robotId} AND revoked_at IS NULL AND not_after > now()`;
      if (!ok) return false;
      await tx`DELETE FROM robot_certificates
               WHERE robot_id = ${robotId} AND renews IS NOT NULL AND first_used_at IS NULL AND revoked_at IS NULL`;
      await tx`INSERT INTO robot_certificates (fingerprint, robot_id, serial, not_after, renews)
               VALUES (${cert.fingerprint}, ${robotId}, ${cert.serial}, ${cert.notAfter}, ${current})`;
      return true;
    });
  }

  /**
   * A certificate authenticated: if it is a renewal used for the first time, records that and
   * revokes the certificate it renewed. Returns the robot whose certificate was revoked, if any.
   */
  async firstUse(fingerprint: Buffer): Promise<string | undefined> {
    // Most authentications are not a renewal's first: one read, no transaction, for those.
    const [pending] = await this.sql<{ robot_id: string }[]>`
      SELECT robot_id FROM robot_certificates
      WHERE fingerprint = ${fingerprint} AND renews IS NOT NULL AND first_used_at IS NULL AND revoked_at IS NULL`;
    if (!pending) return undefined;
    return this.sql.begin(async (tx) => {
      await lockRobot(tx, pending.robot_id);
      const [row] = await tx<{ robot_id: string }[]>`
      WITH used AS (
        UPDATE robot_certificates SET first_used_at = now()
        WHERE fingerprint = ${fingerprint} AND renews IS NOT NULL AND first_used_at IS NULL AND revoked_at IS NULL
        RETURNING robot_id, renews
      )
      UPDATE robot_certificates c SET revoked_at = now()
      FROM used WHERE c.fingerprint = used.renews AND c.robot_id = used.robot_id AND c.revoked_at IS NULL
      RETURNING c.robot_id`;
      return row?.robot_id;
    });
  }

  /** Deletes certificates that expired or were revoked more than `keepDays` ago (the hourly upkeep). */
  async pruneCertificates(keepDays: number): Promise<number> {
    const r = await this.sql`
      DELETE FROM robot_certificates
      WHERE least(not_after, coalesce(revoked_at, 'infinity')) < now() - make_interval(days => ${keepDays})`;
    return r.count;
  }
}
