// Robots, who may reach them, the certificates they authenticate with, and the command audit log.
// A robot's owner holds every right; others hold a grant (viewer or operator). The audit log only
// grows: rows are inserted, and each later timestamp or the outcome is filled once (the schema's
// trigger refuses anything else).

import type { Sql } from './db.js';
import { translateDriverError, UniqueViolationError } from './errors.js';
import { lockRobot } from './robot-enrollment.js';

export type GrantRole = 'viewer' | 'operator';
export type RobotRole = 'owner' | GrantRole;

export interface Robot {
  id: string;
  name: string;
  ownerId: string;
  createdAt: Date;
  lastSeenAt: Date | null;
}

export interface RobotCertificate {
  fingerprint: Buffer;
  robotId: string;
  serial: string;
  notAfter: Date;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface Grant {
  userId: string;
  username: string;
  role: GrantRole;
  grantedAt: Date;
}

export interface NewCertificate {
  fingerprint: Buffer;
  serial: string;
  notAfter: Date;
}

export interface CommandRecord {
  id: string;
  robotId: string;
  userId: string | null;
  command: string;
  argsDigest: Buffer;
  issuedAt: Date;
  deliveredAt: Date | null;
  acceptedAt: Date | null;
  completedAt: Date | null;
  outcome: string | null;
}

/** Where the next page of a robot's audit log starts: the last record of the previous page. */
export interface AuditCursor {
  issuedAt: Date;
  id: string;
}

interface RobotRow {
  id: string;
  name: string;
  owner_id: string;
  created_at: Date;
  last_seen_at: Date | null;
}

interface CertRow {
  fingerprint: Buffer;
  robot_id: string;
  serial: string;
  not_after: Date;
  created_at: Date;
  revoked_at: Date | null;
}

interface AuditRow {
  id: string;
  robot_id: string;
  user_id: string | null;
  command: string;
  args_digest: Buffer;
  issued_at: Date;
  delivered_at: Date | null;
  accepted_at: Date | null;
  completed_at: Date | null;
  outcome: string | null;
}

const toRobot = (r: RobotRow): Robot => ({ id: r.id, name: r.name, ownerId: r.owner_id, createdAt: r.created_at, lastSeenAt: r.last_seen_at });

const toCert = (r: CertRow): RobotCertificate => ({
  fingerprint: r.fingerprint,
  robotId: r.robot_id,
  serial: r.serial,
  notAfter: r.not_after,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

const toRecord = (r: AuditRow): CommandRecord => ({
  id: r.id,
  robotId: r.robot_id,
  userId: r.user_id,
  command: r.command,
  argsDigest: r.args_digest,
  issuedAt: r.issued_at,
  deliveredAt: r.delivered_at,
  acceptedAt: r.accepted_at,
  completedAt: r.completed_at,
  outcome: r.outcome,
});

/** The column each later stage of a command fills. */
const STAGE_COLUMN = { delivered: 'delivered_at', accepted: 'accepted_at', completed: 'completed_at' } as const;
export type CommandStage = keyof typeof STAGE_COLUMN;

export class Robots {
  constructor(private readonly sql: Sql) {}

  /**
   * Registers a robot, with its first certificate in the same transaction when given. Returns
   * undefined when the owner already has a robot of that name (names compare without case).
   */
  async create(r: { id: string; name: string; ownerId: string }, cert?: NewCertificate): Promise<Robot | undefined> {
    try {
      return await this.sql.begin(async (tx) => {
        const [row] = await tx<RobotRow[]>`
          INSERT INTO robots (id, name, owner_id) VALUES (${r.id}, ${r.name}, ${r.ownerId}) RETURNING *`;
        if (cert) {
          await tx`INSERT INTO robot_certificates (fingerprint, robot_id, serial, not_after)
                   VALUES (${cert.fingerprint}, ${r.id}, ${cert.serial}, ${cert.notAfter})`;
        }
        return toRobot(row as RobotRow);
      });
    } catch (e) {
      const err = translateDriverError(e);
      if (err instanceof UniqueViolationError && err.constraint === 'robots_owner_name_lower') return undefined;
      throw err;
    }
  }

  async byId(id: string): Promise<Robot | undefined> {
    const [row] = await this.sql<RobotRow[]>`SELECT * FROM robots WHERE id = ${id}`;
    return row && toRobot(row);
  }

  async byOwnerAndName(ownerId: string, name: string): Promise<Robot | undefined> {
    const [row] = await this.sql<RobotRow[]>`SELECT * FROM robots WHERE owner_id = ${ownerId} AND lower(name) = lower(${name})`;
    return row && toRobot(row);
  }

  /** Robots the user owns or holds a grant on, with the user's role, ordered by id after the cursor. */
  async listForUser(userId: string, limit: number, afterId: string | undefined): Promise<(Robot & { role: RobotRole })[]> {
    const rows = await this.sql<(RobotRow & { role: RobotRole })[]>`
      SELECT r.*, CASE WHEN r.owner_id = ${userId} THEN 'owner' ELSE g.role END AS role
      FROM robots r LEFT JOIN robot_grants g ON g.robot_id = r.id AND g.user_id = ${userId}
      WHERE (r.owner_id = ${userId} OR g.user_id IS NOT NULL)
        ${afterId === undefined ? this.sql`` : this.sql`AND r.id > ${afterId}`}
      ORDER BY r.id LIMIT ${limit}`;
    return rows.map((r) => ({ ...toRobot(r), role: r.role }));
  }

  /** Renames a robot: 'taken' when its owner already has another robot of that name, undefined if gone. */
  async rename(id: string, name: string): Promise<Robot | 'taken' | undefined> {
    try {
      const [row] = await this.sql<RobotRow[]>`UPDATE robots SET name = ${name} WHERE id = ${id} RETURNING *`;
      return row && toRobot(row);
    } catch (e) {
      const err = translateDriverError(e);
      if (err instanceof UniqueViolationError && err.constraint === 'robots_owner_name_lower') return 'taken';
      throw err;
    }
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.sql`DELETE FROM robots WHERE id = ${id}`;
    return r.count > 0;
  }

  /** Records that the robot was connected at `at`; never moves the time backwards. */
  async touch(id: string, at: Date): Promise<void> {
    await this.sql`UPDATE robots SET last_seen_at = ${at} WHERE id = ${id} AND (last_seen_at IS NULL OR last_seen_at < ${at})`;
  }

  /** Grants (or changes) a role. The owner needs none: false, and nothing stored, for the owner. */
  async grant(robotId: string, userId: string, role: GrantRole): Promise<boolean> {
    const r = await this.sql`
      INSERT INTO robot_grants (robot_id, user_id, role)
      SELECT ${robotId}, ${userId}, ${role} FROM robots WHERE id = ${robotId} AND owner_id <> ${userId}
      ON CONFLICT (robot_id, user_id) DO UPDATE SET role = EXCLUDED.role, granted_at = now()`;
    return r.count > 0;
  }

  async revokeGrant(robotId: string, userId: string): Promise<boolean> {
    const r = await this.sql`DELETE FROM robot_grants WHERE robot_id = ${robotId} AND user_id = ${userId}`;
    return r.count > 0;
  }

  /** Everyone holding a grant on the robot (the owner holds none), by username. */
  async grants(robotId: string): Promise<Grant[]> {
    const rows = await this.sql<{ user_id: string; username: string; role: GrantRole; granted_at: Date }[]>`
      SELECT g.user_id, u.username, g.role, g.granted_at
      FROM robot_grants g JOIN users u ON u.id = g.user_id
      WHERE g.robot_id = ${robotId} ORDER BY lower(u.username)`;
    return rows.map((r) => ({ userId: r.user_id, username: r.username, role: r.role, grantedAt: r.granted_at }));
  }

  /** The user's role on the robot: owner first, else the grant; undefined for no access. */
  async role(robotId: string, userId: string): Promise<RobotRole | undefined> {
    const [row] = await this.sql<{ role: RobotRole }[]>`
      SELECT CASE WHEN r.owner_id = ${userId} THEN 'owner' ELSE g.role END AS role
      FROM robots r LEFT JOIN robot_grants g ON g.robot_id = r.id AND g.user_id = ${userId}
      WHERE r.id = ${robotId}`;
    return row?.role ?? undefined;
  }

  // Every change to a robot's certificates locks the robot's row first (see lockRobot); `create`
  // needs no lock: the row it inserts is its transaction's until it commits.
  async addCertificate(robotId: string, cert: NewCertificate): Promise<void> {
    await this.sql.begin(async (tx) => {
      await lockRobot(tx, robotId);
      await tx`INSERT INTO robot_certificates (fingerprint, robot_id, serial, not_after)
               VALUES (${cert.fingerprint}, ${robotId}, ${cert.serial}, ${cert.notAfter})`;
    });
  }

  /** Adds a certificate and revokes every other one of the robot, in one transaction. */
  async rotateCertificate(robotId: string, cert: NewCertificate, at: Date = new Date()): Promise<number> {
    return this.sql.begin(async (tx) => {
      await lockRobot(tx, robotId);
      await tx`INSERT INTO robot_certificates (fingerprint, robot_id, serial, not_after)
               VALUES (${cert.fingerprint}, ${robotId}, ${cert.serial}, ${cert.notAfter})`;
      const r = await tx`UPDATE robot_certificates SET revoked_at = ${at}
                         WHERE robot_id = ${robotId} AND revoked_at IS NULL AND fingerprint <> ${cert.fingerprint}`;
      return r.count;
    });
  }

  /** The certificate with this SHA-256 fingerprint and its robot: what the mTLS listener checks. */
  async certificateByFingerprint(fingerprint: Buffer): Promise<{ certificate: RobotCertificate; robot: Robot } | undefined> {
    const [row] = await this.sql<(CertRow & { r_id: string; name: string; owner_id: string; r_created_at: Date; last_seen_at: Date | null })[]>`
      SELECT c.*, r.id AS r_id, r.name, r.owner_id, r.created_at AS r_created_at, r.last_seen_at
      FROM robot_certificates c JOIN robots r ON r.id = c.robot_id
      WHERE c.fingerprint = ${fingerprint}`;
    if (!row) return undefined;
    return {
      certificate: toCert(row),
      robot: toRobot({ id: row.r_id, name: row.name, owner_id: row.owner_id, created_at: row.r_created_at, last_seen_at: row.last_seen_at }),
    };
  }

  async certificates(robotId: string): Promise<RobotCertificate[]> {
    const rows = await this.sql<CertRow[]>`
      SELECT * FROM robot_certificates WHERE robot_id = ${robotId} ORDER BY created_at, fingerprint`;
    return rows.map(toCert);
  }

  /** Revokes every unrevoked certificate of the robot; returns how many. */
  async revokeCertificates(robotId: string, at: Date = new Date()): Promise<number> {
    return this.sql.begin(async (tx) => {
      await lockRobot(tx, robotId);
      // After the lock: this statement's snapshot holds every certificate a renewal added before it.
      const r = await tx`UPDATE robot_certificates SET revoked_at = ${at} WHERE robot_id = ${robotId} AND revoked_at IS NULL`;
      return r.count;
    });
  }

  /**
   * Appends a command to the audit log. `issuedAt` comes from the caller (milliseconds, like every
   * JS Date), so the paging cursor built from a returned record matches the stored value exactly.
   */
  async insertCommand(c: { id: string; robotId: string; userId: string | null; command: string; argsDigest: Buffer; issuedAt: Date }): Promise<CommandRecord> {
    const [row] = await this.sql<AuditRow[]>`
      INSERT INTO command_audit (id, robot_id, user_id, command, args_digest, issued_at)
      VALUES (${c.id}, ${c.robotId}, ${c.userId}, ${c.command}, ${c.argsDigest}, ${c.issuedAt})
      RETURNING *`;
    return toRecord(row as AuditRow);
  }

  /**
   * Appends a command to the audit log only if its issuer is, in the same statement, the robot's
   * owner or holds the operator grant: a revocation made through any node holds at once, whatever
   * the issuing node has cached. Undefined (nothing written) when not.
   */
  async insertOperatorCommand(c: {
    id: string;
    robotId: string;
    userId: string;
    command: string;
    argsDigest: Buffer;
    issuedAt: Date;
  }): Promise<CommandRecord | undefined> {
    const [row] = await this.sql<AuditRow[]>`
      INSERT INTO command_audit (id, robot_id, user_id, command, args_digest, issued_at)
      SELECT ${c.id}, ${c.robotId}, ${c.userId}, ${c.command}, ${c.argsDigest}, ${c.issuedAt}
      WHERE EXISTS (SELECT 1 FROM robots WHERE id = ${c.robotId} AND owner_id = ${c.userId})
         OR EXISTS (SELECT 1 FROM robot_grants WHERE robot_id = ${c.robotId} AND user_id = ${c.userId} AND role = 'operator')
      RETURNING *`;
    return row && toRecord(row);
  }

  /**
   * Fills a later stage's timestamp (and, with `completed`, the outcome) once. False when the
   * command is unknown or that stage was already recorded: the first report wins.
   */
  async markCommand(id: string, stage: CommandStage, at: Date, outcome?: string): Promise<boolean> {
    const col = this.sql(STAGE_COLUMN[stage]);
    const setOutcome = outcome === undefined ? this.sql`` : this.sql`, outcome = ${outcome}`;
    return this.sql.begin(async (tx) => {
      const rows = await tx<{ robot_id: string; user_id: string | null; command: string }[]>`
        UPDATE command_audit SET ${col} = ${at} ${setOutcome}
        WHERE id = ${id} AND ${col} IS NULL ${outcome === undefined ? this.sql`` : this.sql`AND outcome IS NULL`}
        RETURNING robot_id, user_id, command`;
      const c = rows[0];
      if (c && stage === 'completed') {
        const data = JSON.stringify({ commandId: id, robotId: c.robot_id, userId: c.user_id, command: c.command, outcome: outcome ?? null, completedAt: at });
        await tx`SELECT sb_webhook_event('command.completed', ${id}, ${c.robot_id}, ${data})`;
      }
      return c !== undefined;
    });
  }

  /** A robot's commands, newest first, after the cursor. */
  async listCommands(robotId: string, limit: number, before: AuditCursor | undefined): Promise<CommandRecord[]> {
    const rows = await this.sql<AuditRow[]>`
      SELECT * FROM command_audit
      WHERE robot_id = ${robotId}
        ${before === undefined ? this.sql`` : this.sql`AND (issued_at, id) < (${before.issuedAt}, ${before.id})`}
      ORDER BY issued_at DESC, id DESC LIMIT ${limit}`;
    return rows.map(toRecord);
  }
}
