// Accounts and sessions: register, login, refresh (rotating, with reuse detection), logout. The
// transport calls this; it calls the store. Rate limits live here so every entry point gets them
// (counted in the store, shared by the cluster: see login-limits.ts).

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { notFound, RateLimitedError, SbError, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import type { UserRef } from '../protocol/frames.js';
import type { EndReason, SessionInfo, SessionsEnded } from '../store/sessions.js';
import type { Store } from '../store/store.js';
import type { AccountRemoval, User, UserWithHash } from '../store/users.js';
import { type AccessClaims, AccessTokens } from './access-tokens.js';
import type { SigningKey } from './keys.js';
import { LoginLimits } from './login-limits.js';
import { Passwords } from './passwords.js';

export const USERNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$/;
export const PASSWORD_MIN = 10;
/** argon2 cost grows with input; no real password needs more. */
export const PASSWORD_MAX = 256;

/** What a login or a refresh hands out: the user's tokens with their expiries. */
export interface IssuedTokens {
  user: User;
  sessionId: string;
  accessToken: string;
  accessExpiresAt: Date;
  refreshToken: string;
  refreshExpiresAt: Date;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

export class AuthService {
  readonly passwords: Passwords;
  readonly access: AccessTokens;
  readonly limits: LoginLimits;

  constructor(
    private readonly store: Store,
    key: SigningKey,
    private readonly cfg: Config,
    private readonly log: Logger,
  ) {
    this.passwords = new Passwords({ memoryKiB: cfg.argon2MemoryKiB, timeCost: cfg.argon2TimeCost });
    this.access = new AccessTokens(key, cfg.accessTokenTtlS);
    this.limits = new LoginLimits(store.rateLimits.client, cfg.limits);
  }

  /**
   * Verifies an access token, that its account still exists and that its session has not ended: a
   * signed token outlives both, and a deleted account's id would otherwise reach the store (a
   * foreign-key violation, not a 401). One primary-key lookup per authenticated request or
   * WebSocket (re)authentication.
   */
  async verifyPrincipal(token: string): Promise<AccessClaims> {
    const claims = await this.access.verify(token);
    const live = await this.store.sessions.live(claims.sub, claims.sid);
    if (live === 'no-account') throw new SbError('UNAUTHENTICATED', 'this account no longer exists');
    if (live === 'disabled') throw accountDisabled();
    if (live === 'ended') throw sessionEnded();
    return claims;
  }

  /** Self-service registration, rate-limited per client IP. */
  async register(input: NewAccount, ip: string): Promise<User> {
    checkUsername(input.username);
    checkPassword(input.password);
    await this.limits.register(ip);
    const user = await createAccount(this.store, this.passwords, input, false);
    this.log.info({ userId: user.id }, 'user registered');
    return user;
  }

  async login(input: { username: string; password: string }, client: Client, csrfToken?: string): Promise<IssuedTokens> {
    const { passwordHash: _, ...user } = await this.verifyLogin(input.username, input.password, client.ip);
    return this.startSession(user, client, csrfToken);
  }

  /** A new login session for a person whose credentials were just checked. */
  async startSession(user: User, client: Client, csrfToken: string | undefined): Promise<IssuedTokens> {
    if (user.disabledAt) throw accountDisabled();
    const sessionId = randomUUID();
    const started = await this.store.sessions.start({
      id: sessionId,
      userId: user.id,
      expiresAt: this.refreshExpiry(),
      userAgent: client.userAgent,
      ip: client.ip,
    });
    if (!started) throw accountDisabled(); // disabled (or deleted) since its credentials were checked
    return this.issue(user, sessionId, csrfToken);
  }

  /**
   * A username and password, under the login rate limits (per username and per IP): the account, or
   * UNAUTHENTICATED. A failure counts against both limits and is logged, never with the password.
   */
  private async verifyLogin(username: string, password: string, ip: string): Promise<UserWithHash> {
    try {
      await this.limits.beforeLogin(username, ip);
    } catch (e) {
      if (e instanceof RateLimitedError) this.log.warn({ username, ip, retryAfterS: e.retryAfterS }, 'login refused: rate limited');
      throw e;
    }
    // A bot has no password: it is found as no one is.
    const account = password.length <= PASSWORD_MAX ? await this.store.users.byUsername(username) : undefined;
    const found = account?.bot ? undefined : account;
    const ok = await this.passwords.verify(found?.passwordHash, password.slice(0, PASSWORD_MAX));
    if (!ok || !found) {
      // Who tried and from where, for intrusion detection; never the password.
      this.log.warn({ username, ip, reason: found ? 'wrong password' : 'unknown username' }, 'login failed');
      await this.limits.failed(username, ip);
      throw new SbError('UNAUTHENTICATED', 'invalid username or password');
    }
    await this.limits.succeeded(username, ip);
    if (this.passwords.needsRehash(found.passwordHash)) {
      await this.store.users.setPasswordHash(found.id, await this.passwords.hash(password));
    }
    return found;
  }

  /** Exchanges a refresh token for a new pair. A token presented twice ends its whole session. */
  async refresh(refreshToken: string, csrfToken?: string): Promise<IssuedTokens> {
    const result = await this.store.refreshTokens.consume(sha256(refreshToken));
    if (!result) throw new SbError('TOKEN_INVALID', 'refresh token is invalid');
    if ('stale' in result) {
      const t = result.stale;
      // A session ended on purpose (a logout, a revoked device, a password change) revokes its
      // tokens without using them: presenting one afterwards is a client that missed the end, not a
      // replay (a used token still is, ended or not).
      if (!t.used_at && t.revoked_at && t.revoked_reason !== null && t.revoked_reason !== 'reuse') throw sessionEnded();
      if (t.used_at || t.revoked_at) {
        const n = await this.endSessions(t.user_id, { only: t.family_id }, 'reuse');
        this.log.warn({ userId: t.user_id, family: t.family_id, revoked: n.length }, 'refresh token reused; session ended');
        throw new SbError('REFRESH_REUSED', 'refresh token was already used; the session is revoked, log in again');
      }
      throw new SbError('TOKEN_EXPIRED', 'refresh token has expired; log in again');
    }
    const user = await this.store.users.byId(result.ok.user_id);
    if (!user) throw new SbError('TOKEN_INVALID', 'refresh token is invalid');
    const expiresAt = this.refreshExpiry();
    if (!(await this.store.sessions.refreshed(result.ok.family_id, user.id, expiresAt))) throw sessionEnded();
    return this.issue(user, result.ok.family_id, csrfToken, expiresAt);
  }

  /** Ends the session the refresh token belongs to (all its tokens, and its sockets). Unknown tokens are ignored. */
  async logout(refreshToken: string): Promise<void> {
    const s = await this.store.refreshTokens.sessionOf(sha256(refreshToken));
    if (s) await this.endSessions(s.userId, { only: s.sessionId }, 'logout');
  }

  /** The caller's signed-in devices: sessions that have not ended or expired, newest first. */
  sessions(userId: string): Promise<SessionInfo[]> {
    return this.store.sessions.list(userId);
  }

  /** Ends one of the caller's sessions (this one included: that is a logout). */
  async revokeSession(userId: string, sessionId: string): Promise<void> {
    const ended = await this.endSessions(userId, { only: sessionId }, 'revoked');
    if (ended.length === 0) throw notFound('session');
  }

  /** Changes the caller's password and ends every other session (the current one stays signed in). */
  async changePassword(caller: { id: string; sessionId: string | undefined }, current: string, next: string, ip: string): Promise<void> {
    checkPassword(next, 'newPassword');
    const user = await this.reconfirm(caller.id, current, ip, 'currentPassword');
    await this.store.users.setPasswordHash(user.id, await this.passwords.hash(next));
    const ended = await this.endSessions(user.id, { except: caller.sessionId }, 'password');
    this.log.info({ userId: user.id, sessionsEnded: ended.length }, 'password changed');
  }

  /**
   * Deletes the caller's account after checking its password (a stolen access token alone cannot).
   * What goes with it and what stays: `Users.remove`.
   */
  async deleteAccount(userId: string, password: string, ip: string): Promise<void> {
    const user = await this.reconfirm(userId, password, ip, 'password');
    const removed = await this.store.users.remove(userId);
    if (!removed) throw notFound('user');
    this.events?.sessionsEnded({ userId, sessions: 'all', reason: 'deleted' });
    this.events?.removed({ id: user.id, username: user.username }, removed);
    this.log.info({ userId, ...counts(removed) }, 'account deleted');
  }

  /**
   * An admin disables an account, or enables it again. Disabling ends its sessions (their tokens
   * are refused with ACCOUNT_DISABLED and their sockets close with 4103, on every node) and refuses
   * its logins until it is enabled; its rooms, messages and robots stay. An admin cannot disable
   * themselves (the last admin would lock everyone out).
   */
  async setDisabled(adminId: string, userId: string, disabled: boolean): Promise<User> {
    if (disabled && userId === adminId) throw new SbError('CONFLICT', 'you cannot disable your own account');
    const user = await this.store.users.setDisabled(userId, disabled);
    if (!user) throw notFound('user');
    if (disabled) {
      await this.store.sessions.end(userId, { except: undefined }, 'disabled');
      this.events?.sessionsEnded({ userId, sessions: 'all', reason: 'disabled' });
    } else this.events?.enabled(userId);
    this.log.info({ userId, by: adminId }, disabled ? 'account disabled' : 'account enabled');
    return user;
  }

  /**
   * The caller's account once its password is checked again, under the login rate limits (so this
   * is no way around them); a wrong password is a VALIDATION error on `field`, not a 401 that would
   * read as a bad token.
   */
  async reconfirm(userId: string, password: string, ip: string, field: string): Promise<User> {
    const user = await this.store.users.byId(userId);
    if (!user) throw notFound('user');
    await this.verifyLogin(user.username, password, ip).catch((e: unknown) => {
      throw e instanceof SbError && e.code === 'UNAUTHENTICATED' ? new ValidationError(field, 'is wrong') : e;
    });
    return user;
  }

  /** Ends sessions in the store, then closes their sockets on every node. */
  private async endSessions(userId: string, which: { only: string } | { except: string | undefined }, reason: EndReason): Promise<string[]> {
    const ended = await this.store.sessions.end(userId, which, reason);
    if (ended.length > 0) this.events?.sessionsEnded({ userId, sessions: ended });
    return ended;
  }

  /** Who hears of ended sessions and deleted accounts (set by the hub once its parts exist). */
  events: AccountEvents | undefined;

  private refreshExpiry(): Date {
    return new Date(Date.now() + this.cfg.refreshTokenTtlS * 1000);
  }

  private async issue(user: User, sessionId: string, csrfToken: string | undefined, refreshExpiresAt = this.refreshExpiry()): Promise<IssuedTokens> {
    const refreshToken = randomBytes(32).toString('base64url');
    await this.store.refreshTokens.insert({ hash: sha256(refreshToken), familyId: sessionId, userId: user.id, expiresAt: refreshExpiresAt });
    const access = await this.access.issue(user, sessionId, { csrfToken });
    return { user, sessionId, accessToken: access.token, accessExpiresAt: access.expiresAt, refreshToken, refreshExpiresAt };
  }

  /**
   * A socket token for the session that `claims` came with: good for the WebSocket (connect, and
   * `auth` after `reauth`), refused by the REST API, so a page that reads it can open a socket but
   * cannot use the API anywhere else with it. It ends with the session, like any access token.
   */
  async socketToken(claims: { sub: string; username: string; admin: boolean; sid: string }): Promise<{ token: string; expiresAt: Date }> {
    return this.access.issue({ id: claims.sub, username: claims.username, isAdmin: claims.admin }, claims.sid, { use: 'ws' });
  }
}

/** What the rest of the node does when sessions end or an account goes. */
export interface AccountEvents {
  /** Close the sessions' sockets, on every node. */
  sessionsEnded(e: SessionsEnded): void;
  /** An admin enabled the account again: its new logins may connect at once, on every node. */
  enabled(userId: string): void;
  /** Tell the rooms and robots that changed with the account (see AccountRemoval). */
  removed(user: UserRef, what: AccountRemoval): void;
}

const counts = (r: AccountRemoval) => ({
  roomsLeft: r.roomsLeft.length,
  roomsHandedOver: r.handedOver.length,
  roomsDeleted: r.roomsDeleted.length,
  robotsDeleted: r.robotsDeleted.length,
});

/** Who is logging in, as the session list shows it. */
export interface Client {
  ip: string;
  userAgent: string | undefined;
}

const accountDisabled = () => new SbError('ACCOUNT_DISABLED', 'an admin disabled this account');
const sessionEnded = () => new SbError('SESSION_ENDED', 'this login session has ended (logged out, revoked, or the password changed); log in again');

export interface NewAccount {
  username: string;
  password: string;
  displayName?: string | undefined;
}

/** Creates an account after checking the username and password rules. The CLI's admin bootstrap uses this directly. */
export async function createAccount(store: Store, passwords: Passwords, input: NewAccount, isAdmin: boolean): Promise<User> {
  checkUsername(input.username);
  checkPassword(input.password);
  const user = await store.users.create({
    id: randomUUID(),
    username: input.username,
    displayName: input.displayName ?? null,
    passwordHash: await passwords.hash(input.password),
    isAdmin,
  });
  if (!user) throw new SbError('USERNAME_TAKEN', 'that username is taken', { field: 'username' });
  return user;
}

/**
 * Makes sure `username` exists and is an admin (SB_ADMIN_USERNAME, at every start): creates it with
 * `password()` (read only then) when missing; an existing account keeps its password and is made an admin. Several
 * nodes running this at once create one account (the unique username decides).
 */
export async function ensureAdmin(
  store: Store,
  passwords: Passwords,
  username: string,
  password: () => Promise<string>,
): Promise<'created' | 'promoted' | 'present'> {
  checkUsername(username);
  const existing = await store.users.byUsername(username);
  if (existing?.bot) throw new SbError('CONFLICT', `${username} is a bot of the server API: it cannot log in, so it cannot be the administrator`);
  if (!existing) {
    // Read only now: an existing account needs no password source.
    const chosen = await password();
    checkPassword(chosen);
    const made = await store.users.create({ id: randomUUID(), username, displayName: null, passwordHash: await passwords.hash(chosen), isAdmin: true });
    if (made) return 'created';
  }
  return (await store.users.makeAdmin(username)) ? 'promoted' : 'present';
}

export function checkUsername(username: string): void {
  if (!USERNAME_RE.test(username)) {
    throw new ValidationError('username', '3 to 32 characters: letters, digits, `_`, `.`, `-`, starting with a letter or digit');
  }
}

export function checkPassword(password: string, field = 'password'): void {
  if ([...password].length < PASSWORD_MIN) throw new ValidationError(field, `at least ${PASSWORD_MIN} characters`);
  if (password.length > PASSWORD_MAX) throw new ValidationError(field, `at most ${PASSWORD_MAX} characters`);
}
