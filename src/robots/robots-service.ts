// Robot operations, under the permission rules of robot-rules.ts. The owner holds every right; a grant gives `viewer`
// or `operator`; an admin may act as the owner of any robot. Anyone else gets 404, as if the robot
// did not exist (ids must not be probeable). Viewers and operators read; only the owner or an admin
// renames, deletes, manages grants and enrolls, rotates or revokes certificates. Private keys are
// returned to the caller once and never stored.

import { randomUUID } from 'node:crypto';
import { type Ca, CaMissingError, formatFingerprint, type IssuedCert, issueRobotCert } from '../auth/pki.js';
import { notFound, SbError, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ChannelInfo, LeaseInfo } from '../protocol/frames.js';
import type { AuditCursor, CommandRecord, Grant, GrantRole, Robot, RobotCertificate, RobotRole } from '../store/robots.js';
import type { Store } from '../store/store.js';
import { RobotEnroller } from './robot-enroller.js';
import { type Caller, requireManager, roleOf } from './robot-rules.js';

export type { Caller };

export interface RobotView {
  id: string;
  name: string;
  ownerId: string;
  createdAt: Date;
  lastSeenAt: Date | null;
  /** Connected to the hub right now. */
  online: boolean;
  /** The caller's own role; null for an admin without one. */
  role: RobotRole | null;
}

/** A robot's live state, from its actor. */
export interface LiveStatus {
  online: boolean;
  channels: ChannelInfo[];
  lease: LeaseInfo | null;
}

/** What the service needs of the robot actors: live state, and telling them what changed. */
export interface RobotGateway {
  isOnline(robotId: string): boolean;
  status(robotId: string): Promise<LiveStatus>;
  /** Grants, name or ownership changed; its certificates changed; it was deleted. */
  changed(robotId: string, what: 'access' | 'certificates' | 'deleted'): void;
}

export interface CertificateView {
  fingerprint: string;
  serial: string;
  notAfter: Date;
  createdAt: Date;
  revokedAt: Date | null;
}

/**
 * A newly issued certificate, with its private key when the hub made the key (shown to the caller
 * once, never stored); without one when the hub signed the robot's own request (CSR).
 */
export interface Enrollment {
  certificatePem: string;
  privateKeyPem?: string;
  /** The robot CA's certificate, which signed it. */
  caPem: string;
  fingerprint: string;
  serial: string;
  notAfter: Date;
}

export interface CommandView {
  id: string;
  robotId: string;
  userId: string | null;
  command: string;
  argsDigest: string;
  issuedAt: Date;
  deliveredAt: Date | null;
  acceptedAt: Date | null;
  completedAt: Date | null;
  outcome: string | null;
}

const NAME_MAX = 64;

const certView = (c: RobotCertificate): CertificateView => ({
  fingerprint: formatFingerprint(c.fingerprint),
  serial: c.serial,
  notAfter: c.notAfter,
  createdAt: c.createdAt,
  revokedAt: c.revokedAt,
});

const enrollment = (i: IssuedCert, ca: Ca): Enrollment => ({
  certificatePem: i.certPem,
  privateKeyPem: i.keyPem,
  caPem: ca.certPem,
  fingerprint: formatFingerprint(i.fingerprint),
  serial: i.serial,
  notAfter: i.notAfter,
});

const commandView = (c: CommandRecord): CommandView => ({ ...c, argsDigest: c.argsDigest.toString('hex') });

function checkName(raw: string): string {
  const name = raw.trim();
  const length = [...name].length;
  if (length < 1 || length > NAME_MAX) throw new ValidationError('name', `1 to ${NAME_MAX} characters (not counting surrounding spaces)`);
  return name;
}

export class RobotsService {
  /** Certificates for keys robots made themselves: signed requests, bootstrap tokens, renewals. */
  readonly enroller: RobotEnroller;

  constructor(
    private readonly store: Store,
    /** The robot CA, loaded at the first enrollment; rejects with CaMissingError before `pki init`. */
    private readonly ca: () => Promise<Ca>,
    private readonly log: Logger,
    private readonly live: RobotGateway,
  ) {
    this.enroller = new RobotEnroller(
      store,
      () => this.loadCa(),
      log,
      (id) => live.changed(id, 'certificates'),
    );
  }

  private view(r: Robot, role: RobotRole | null): RobotView {
    return { id: r.id, name: r.name, ownerId: r.ownerId, createdAt: r.createdAt, lastSeenAt: r.lastSeenAt, online: this.live.isOnline(r.id), role };
  }

  /** A robot enrolls itself with a bootstrap token (RobotEnroller.enroll): its view is its owner's. */
  async enroll(secret: string | undefined, ip: string, name: string, csrPem: string) {
    const { robot, certificate } = await this.enroller.enroll(secret, ip, name, csrPem);
    return { robot: this.view(robot, 'owner'), certificate };
  }

  /**
   * Registers a robot owned by the caller and issues its first certificate, in one transaction:
   * for the key of its certificate signing request (PEM) when given, else with a key made here.
   */
  async create(caller: Caller, rawName: string, csrPem?: string): Promise<{ robot: RobotView; enrollment: Enrollment }> {
    const name = checkName(rawName);
    // The CA first: without it no robot is registered that could never authenticate.
    const ca = await this.loadCa();
    const id = randomUUID();
    const { issued, answer } = await this.certificateFor(ca, id, csrPem);
    const robot = await this.store.robots.create({ id, name, ownerId: caller.id }, issued);
    if (!robot) throw new SbError('CONFLICT', `you already have a robot named ${name}`, { field: 'name' });
    this.log.info({ robot: id, owner: caller.id, csr: csrPem !== undefined }, 'robot registered');
    return { robot: this.view(robot, 'owner'), enrollment: answer };
  }

  /** A certificate for the robot: for its request's key, or with a new key (returned once). */
  private async certificateFor(ca: Ca, robotId: string, csrPem: string | undefined) {
    if (csrPem === undefined) {
      const issued = await issueRobotCert(ca, robotId);
      return { issued, answer: enrollment(issued, ca) };
    }
    const { issued, view } = await this.enroller.sign(robotId, csrPem);
    return { issued, answer: view };
  }

  /** Robots the caller owns or holds a grant on, by id after the cursor. */
  async list(caller: Caller, limit: number, afterId: string | undefined): Promise<RobotView[]> {
    const rows = await this.store.robots.listForUser(caller.id, limit, afterId);
    return rows.map((r) => this.view(r, r.role));
  }

  async get(caller: Caller, robotId: string): Promise<RobotView & { certificates: CertificateView[] }> {
    const r = await this.visible(caller, robotId);
    const certs = await this.store.robots.certificates(robotId);
    return { ...r, certificates: certs.map(certView) };
  }

  async rename(caller: Caller, robotId: string, rawName: string): Promise<RobotView> {
    const r = await this.managed(caller, robotId, 'rename it');
    const name = checkName(rawName);
    const renamed = await this.store.robots.rename(robotId, name);
    if (renamed === undefined) throw notFound('robot');
    if (renamed === 'taken') throw new SbError('CONFLICT', `the owner already has a robot named ${name}`, { field: 'name' });
    this.live.changed(robotId, 'access');
    return this.view(renamed, r.role);
  }

  async delete(caller: Caller, robotId: string): Promise<void> {
    await this.managed(caller, robotId, 'delete it');
    if (!(await this.store.robots.delete(robotId))) throw notFound('robot');
    this.live.changed(robotId, 'deleted');
    this.log.info({ robot: robotId, by: caller.id }, 'robot deleted');
  }

  /**
   * Issues a new certificate and revokes every other one of the robot: for the key of the robot's
   * certificate signing request (PEM) when given, else with a key made here.
   */
  async rotate(caller: Caller, robotId: string, csrPem?: string): Promise<{ enrollment: Enrollment; revoked: number }> {
    await this.managed(caller, robotId, 'rotate its certificate');
    const { issued, answer } = await this.certificateFor(await this.loadCa(), robotId, csrPem);
    const revoked = await this.store.robots.rotateCertificate(robotId, issued);
    this.live.changed(robotId, 'certificates');
    this.log.info({ robot: robotId, by: caller.id, revoked, csr: csrPem !== undefined }, 'robot certificate rotated');
    return { enrollment: answer, revoked };
  }

  /** Revokes every certificate of the robot: it can no longer connect until rotated. */
  async revoke(caller: Caller, robotId: string): Promise<number> {
    await this.managed(caller, robotId, 'revoke its certificates');
    const revoked = await this.store.robots.revokeCertificates(robotId);
    this.live.changed(robotId, 'certificates');
    this.log.info({ robot: robotId, by: caller.id, revoked }, 'robot certificates revoked');
    return revoked;
  }

  async grants(caller: Caller, robotId: string): Promise<Grant[]> {
    await this.managed(caller, robotId, 'see its grants');
    return this.store.robots.grants(robotId);
  }

  /** Grants (or changes) a user's role on the robot. */
  async grant(caller: Caller, robotId: string, userId: string, role: GrantRole): Promise<Grant> {
    const r = await this.managed(caller, robotId, 'manage its grants');
    const user = await this.store.users.byId(userId);
    if (!user) throw notFound('user');
    if (userId === r.ownerId) throw new SbError('CONFLICT', 'the owner holds every right already; a grant cannot change that');
    if (!(await this.store.robots.grant(robotId, userId, role))) throw notFound('robot');
    this.live.changed(robotId, 'access');
    const g = (await this.store.robots.grants(robotId)).find((x) => x.userId === userId);
    if (!g) throw notFound('robot'); // deleted between the two statements
    return g;
  }

  async revokeGrant(caller: Caller, robotId: string, userId: string): Promise<void> {
    await this.managed(caller, robotId, 'manage its grants');
    if (!(await this.store.robots.revokeGrant(robotId, userId))) throw notFound('grant');
    this.live.changed(robotId, 'access');
  }

  /** Whether the robot is connected, its channels and who holds the control lease (viewers and up). */
  async status(caller: Caller, robotId: string) {
    const r = await this.visible(caller, robotId);
    const live = await this.live.status(robotId);
    const lease = live.lease && { holder: live.lease.holder, expiresAt: new Date(live.lease.expiresAt) };
    // JSON has no bytes: a binary schema (a FileDescriptorSet) goes out as base64, as in `tm` on JSON connections.
    const base64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
    const channels = live.channels.map((c) => (c.schemaData instanceof Uint8Array ? { ...c, schemaData: base64(c.schemaData) } : c));
    return { online: live.online, lastSeenAt: r.lastSeenAt, channels, lease };
  }

  /** Stored samples of a reliable channel (by name) after `since`, oldest first; binary data as base64. */
  async history(caller: Caller, robotId: string, channel: string, since: number, limit: number) {
    await this.visible(caller, robotId);
    const samples = await this.store.robotTelemetry.after(robotId, channel, since, limit);
    return samples.map((s) => ({ seq: s.seq, ts: s.ts, data: s.data }));
  }

  /** The command audit log, newest first. */
  async audit(caller: Caller, robotId: string, limit: number, before: AuditCursor | undefined): Promise<CommandView[]> {
    await this.visible(caller, robotId);
    return (await this.store.robots.listCommands(robotId, limit, before)).map(commandView);
  }

  /** The robot as the caller may see it: any role, or an admin; 404 for everyone else. */
  private async visible(caller: Caller, robotId: string): Promise<RobotView> {
    const robot = await this.store.robots.byId(robotId);
    if (!robot) throw notFound('robot');
    const grant = robot.ownerId === caller.id ? undefined : await this.store.robots.role(robotId, caller.id);
    return this.view(robot, roleOf(robot.ownerId, grant, caller));
  }

  /** The robot, which the caller must own or administer: 404 if hidden from them, 403 if only granted. */
  private async managed(caller: Caller, robotId: string, what: string): Promise<RobotView> {
    const r = await this.visible(caller, robotId);
    requireManager(r.role, caller.admin, what);
    return r;
  }

  private async loadCa(): Promise<Ca> {
    try {
      return await this.ca();
    } catch (e) {
      if (e instanceof CaMissingError) {
        this.log.warn({ err: e }, 'robot enrollment refused: no robot CA');
        throw new SbError(
          'UNAVAILABLE',
          'robot enrollment is unavailable: the robot CA is not initialised (the operator must run `switchboard pki init`)',
          undefined,
          {
            cause: e,
          },
        );
      }
      this.log.error({ err: e }, 'robot enrollment refused: the robot CA cannot be loaded');
      throw new SbError('UNAVAILABLE', 'robot enrollment is unavailable: the robot CA cannot be loaded (see the server log)', undefined, { cause: e });
    }
  }
}
