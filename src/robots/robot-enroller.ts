// Enrollment where the robot's key never leaves it: the robot makes its key and a certificate
// signing request; the hub checks the request (auth/csr.ts) and signs a certificate for its key,
// CN = the robot's id. Three ways in: an owner signs a request for their robot (RobotsService), a
// robot enrolls itself with a fleet bootstrap token of an owner, or a connected robot renews its
// certificate over its link (RENEW). Bootstrap tokens are bounded per owner, in uses (1–1000) and
// in time (at most 30 days); enrollment is rate-limited per client IP and renewal per robot, in the
// store every node shares.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { checkCsr, csrDerFromPem } from '../auth/csr.js';
import { type Ca, formatFingerprint, issueRobotCertForKey } from '../auth/pki.js';
import { notFound, RateLimitedError, SbError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BootstrapToken, TokenRefusal } from '../store/robot-enrollment.js';
import type { Store } from '../store/store.js';
import type { Caller } from './robot-rules.js';

/** Enrollments per client IP per minute (`POST /api/v1/robots/enroll`, whatever their outcome). */
export const ENROLL_PER_IP_PER_MINUTE = 60;
/** Renewals per robot per minute, over all its links and every node. */
export const RENEW_PER_ROBOT_PER_MINUTE = 1;
/**
 * Renewals per robot per day. With unused renewals deleted when replaced and ended certificates
 * pruned CERT_KEEP_DAYS after they end, a robot keeps at most 2 live certificates plus
 * RENEW_PER_ROBOT_PER_DAY × CERT_KEEP_DAYS ended ones (+ the owner's rotations).
 */
export const RENEW_PER_ROBOT_PER_DAY = 4;
/** Days an expired or revoked certificate is kept (to tell CERTIFICATE_REVOKED from UNKNOWN_CERTIFICATE) before the hourly upkeep deletes it. */
export const CERT_KEEP_DAYS = 30;
/** Tokens an owner keeps: live ones, and ended ones for KEEP_ENDED_S. */
export const MAX_TOKENS_PER_OWNER = 100;
const KEEP_ENDED_S = 7 * 86_400;
export const TOKEN_MAX_USES = 1_000;
export const TOKEN_MAX_LIFETIME_S = 30 * 86_400;
export const TOKEN_DEFAULT_LIFETIME_S = 86_400;
const TOKEN_PREFIX = 'sbb_';

/** A certificate the hub signed for a robot's own key. */
export interface SignedCertificate {
  certificatePem: string;
  /** The robot CA's certificate, which signed it (and, with `pki init`, the hub's server certificate). */
  caPem: string;
  fingerprint: string;
  serial: string;
  notAfter: Date;
}

export interface BootstrapTokenView {
  id: string;
  name: string | null;
  prefix: string;
  uses: number;
  usesLeft: number;
  expiresAt: Date;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

const tokenView = (t: BootstrapToken): BootstrapTokenView => ({
  id: t.id,
  name: t.name,
  prefix: t.prefix,
  uses: t.uses,
  usesLeft: t.usesLeft,
  expiresAt: t.expiresAt,
  createdAt: t.createdAt,
  lastUsedAt: t.lastUsedAt,
  revokedAt: t.revokedAt,
});

const hash = (secret: string) => createHash('sha256').update(secret).digest();

const REFUSALS: Record<TokenRefusal, SbError> = {
  unknown: new SbError('BOOTSTRAP_TOKEN_UNKNOWN', 'this bootstrap token is not known to the hub'),
  expired: new SbError('BOOTSTRAP_TOKEN_EXPIRED', 'this bootstrap token has expired; ask the owner for a new one'),
  revoked: new SbError('BOOTSTRAP_TOKEN_REVOKED', 'this bootstrap token was revoked by its owner'),
  'used-up': new SbError('BOOTSTRAP_TOKEN_USED_UP', 'this bootstrap token has enrolled as many robots as it allows'),
  'owner-disabled': new SbError('ACCOUNT_DISABLED', "this bootstrap token's owner is disabled: it enrolls no robot"),
};
/** A fresh error each time (a stack per request), with the table's code and message. */
const refused = (r: TokenRefusal) => new SbError(REFUSALS[r].code, REFUSALS[r].message);

export class RobotEnroller {
  private readonly enrollsByIp: (key: string) => Promise<void>;
  private readonly renewalsByRobot: (key: string) => Promise<void>;
  private readonly renewalsByRobotDaily: (key: string) => Promise<void>;

  constructor(
    private readonly store: Store,
    /** The robot CA, or UNAVAILABLE (RobotsService's loader, which logs why). */
    private readonly ca: () => Promise<Ca>,
    private readonly log: Logger,
    /** A robot's certificates changed: live links with a revoked one are closed. */
    private readonly certificatesChanged: (robotId: string) => void,
  ) {
    this.enrollsByIp = store.rateLimits.limiter('robot_enroll_ip', ENROLL_PER_IP_PER_MINUTE, 60);
    this.renewalsByRobot = store.rateLimits.limiter('robot_renew', RENEW_PER_ROBOT_PER_MINUTE, 60);
    this.renewalsByRobotDaily = store.rateLimits.limiter('robot_renew_day', RENEW_PER_ROBOT_PER_DAY, 86_400);
  }

  /** Checks a PEM request and signs a certificate for its key, CN = robotId. Stores nothing. */
  async sign(robotId: string, csrPem: string) {
    return this.signDer(robotId, csrDerFromPem(csrPem));
  }

  private async signDer(robotId: string, der: Uint8Array) {
    const checked = await checkCsr(der);
    const ca = await this.ca();
    const issued = await issueRobotCertForKey(ca, robotId, checked.spki);
    const view: SignedCertificate = {
      certificatePem: issued.certPem,
      caPem: ca.certPem,
      fingerprint: formatFingerprint(issued.fingerprint),
      serial: issued.serial,
      notAfter: issued.notAfter,
    };
    return { issued, view, keyType: checked.keyType };
  }

  // ---- fleet bootstrap tokens ----

  /** A new token of the caller's: its description, and its secret, shown this once. */
  async createToken(caller: Caller, o: { name?: string; uses?: number; expiresInS?: number }): Promise<{ token: BootstrapTokenView; secret: string }> {
    const uses = o.uses ?? 1;
    const lifetime = o.expiresInS ?? TOKEN_DEFAULT_LIFETIME_S;
    if (!Number.isInteger(uses) || uses < 1 || uses > TOKEN_MAX_USES) throw new SbError('VALIDATION', `uses: 1 to ${TOKEN_MAX_USES}`, { field: 'uses' });
    if (!Number.isInteger(lifetime) || lifetime < 60 || lifetime > TOKEN_MAX_LIFETIME_S)
      throw new SbError('VALIDATION', `expiresInS: 60 to ${TOKEN_MAX_LIFETIME_S} (30 days)`, { field: 'expiresInS' });
    const name = o.name?.trim() || null;
    if (name !== null && [...name].length > 64) throw new SbError('VALIDATION', 'name: at most 64 characters', { field: 'name' });
    const secret = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const token = await this.store.robotEnrollment.createToken(
      {
        id: randomUUID(),
        ownerId: caller.id,
        name,
        secretHash: hash(secret),
        prefix: secret.slice(0, 12),
        uses,
        expiresAt: new Date(Date.now() + lifetime * 1000),
      },
      { maxPerOwner: MAX_TOKENS_PER_OWNER, keepEndedS: KEEP_ENDED_S },
    );
    if (!token) {
      throw new SbError('CONFLICT', `you keep ${MAX_TOKENS_PER_OWNER} bootstrap tokens already: revoke some (ended ones are deleted 7 days after they end)`);
    }
    this.log.info({ owner: caller.id, token: token.id, uses }, 'robot bootstrap token created');
    return { token: tokenView(token), secret };
  }

  async listTokens(caller: Caller): Promise<BootstrapTokenView[]> {
    return (await this.store.robotEnrollment.listTokens(caller.id)).map(tokenView);
  }

  /** Revokes one of the caller's tokens: robots it enrolled stay; no more enroll with it. */
  async revokeToken(caller: Caller, id: string): Promise<BootstrapTokenView> {
    const t = await this.store.robotEnrollment.revokeToken(caller.id, id);
    if (!t) throw notFound('bootstrap token');
    return tokenView(t);
  }

  /**
   * A robot enrolls itself: the token (the `Authorization: Bearer` secret) names the owner; the
   * robot is registered under `name` with a certificate for the key of its request.
   */
  async enroll(secret: string | undefined, ip: string, rawName: string, csrPem: string) {
    await this.enrollsByIp(ip.slice(0, 64));
    if (!secret) throw new SbError('BOOTSTRAP_TOKEN_UNKNOWN', 'send the bootstrap token as `Authorization: Bearer sbb_...`');
    const secretHash = hash(secret);
    // Refused tokens cost one look-up, before the request is checked or anything is signed.
    const before = await this.store.robotEnrollment.refusal(secretHash);
    if (before.refusal) throw refused(before.refusal);
    const name = rawName.trim();
    const length = [...name].length;
    if (length < 1 || length > 64) throw new SbError('VALIDATION', 'name: 1 to 64 characters (not counting surrounding spaces)', { field: 'name' });
    const id = randomUUID();
    const { issued, view, keyType } = await this.sign(id, csrPem);
    const r = await this.store.robotEnrollment.enroll(secretHash, { id, name }, issued);
    if (r === 'taken') throw new SbError('CONFLICT', `the token's owner already has a robot named ${name}`, { field: 'name' });
    if ('refused' in r) throw refused(r.refused);
    this.log.info({ robot: id, owner: r.robot.ownerId, token: r.tokenId, keyType, ip }, 'robot enrolled itself with a bootstrap token');
    return { robot: r.robot, certificate: view };
  }

  // ---- renewal over the robot's link ----

  /**
   * A connected robot asks for a certificate for a new key with the certificate of its link
   * (`current`, SHA-256). The current one stays valid until the new one is first used (then it is
   * revoked: see RobotEnrollment.firstUse) or it expires.
   */
  async renew(robotId: string, current: Buffer, csrDer: Uint8Array): Promise<{ certPem: string; caPem: string }> {
    try {
      await this.renewalsByRobot(robotId);
    } catch (e) {
      if (e instanceof RateLimitedError) throw new RateLimitedError(e.retryAfterS, `at most ${RENEW_PER_ROBOT_PER_MINUTE} renewal per minute per robot`);
      throw e;
    }
    try {
      await this.renewalsByRobotDaily(robotId);
    } catch (e) {
      if (e instanceof RateLimitedError) throw new RateLimitedError(e.retryAfterS, `at most ${RENEW_PER_ROBOT_PER_DAY} renewals per day per robot`);
      throw e;
    }
    const { issued, view, keyType } = await this.signDer(robotId, csrDer);
    if (!(await this.store.robotEnrollment.renew(robotId, current, issued))) {
      throw new SbError('FORBIDDEN', 'the certificate of this link is no longer valid; it cannot renew itself');
    }
    this.log.info({ robot: robotId, keyType, fingerprint: view.fingerprint }, 'robot renewed its certificate');
    return { certPem: view.certificatePem, caPem: view.caPem };
  }

  /** The hourly upkeep: deletes certificates that ended more than CERT_KEEP_DAYS ago. */
  async pruneCertificates(): Promise<number> {
    return this.store.robotEnrollment.pruneCertificates(CERT_KEEP_DAYS);
  }

  /** A certificate authenticated: a renewal's first use revokes the certificate it renewed. */
  async used(fingerprint: Buffer): Promise<void> {
    const robotId = await this.store.robotEnrollment.firstUse(fingerprint);
    if (robotId) {
      this.log.info({ robot: robotId }, 'renewed certificate in use: the one it renewed is revoked');
      this.certificatesChanged(robotId);
    }
  }
}
