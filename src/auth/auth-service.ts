// Accounts and sessions: register, login, refresh (rotating, with reuse detection), logout. The
// transport calls this; it calls the store. Rate limits live here so every entry point gets them
// (counted in the store, shared by the cluster: see login-limits.ts).

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { RateLimitedError, SbError, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { User } from '../store/users.js';
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
  accessToken: string;
  accessExpiresAt: Date;
  refreshToken: string;
  refreshExpiresAt: Date;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

export class AuthService {
  readonly passwords: Passwords;
  readonly access: AccessTokens;
  private readonly limits: LoginLimits;

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
   * Verifies an access token and that its account still exists: a token outlives the deletion of
   * its user, whose id would otherwise reach the store (a foreign-key violation, not a 401). One
   * primary-key lookup per authenticated request or WebSocket (re)authentication.
   */
  async verifyPrincipal(token: string): Promise<AccessClaims> {
    const claims = await this.access.verify(token);
    if (!(await this.store.users.exists(claims.sub))) throw new SbError('UNAUTHENTICATED', 'this account no longer exists');
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

  async login(input: { username: string; password: string }, ip: string, csrfToken?: string): Promise<IssuedTokens> {
    try {
      await this.limits.beforeLogin(input.username, ip);
    } catch (e) {
      if (e instanceof RateLimitedError) this.log.warn({ username: input.username, ip, retryAfterS: e.retryAfterS }, 'login refused: rate limited');
      throw e;
    }
    const found = input.password.length <= PASSWORD_MAX ? await this.store.users.byUsername(input.username) : undefined;
    const ok = await this.passwords.verify(found?.passwordHash, input.password.slice(0, PASSWORD_MAX));
    if (!ok || !found) {
      // Who tried and from where, for intrusion detection; never the password.
      this.log.warn({ username: input.username, ip, reason: found ? 'wrong password' : 'unknown username' }, 'login failed');
      await this.limits.failed(input.username, ip);
      throw new SbError('UNAUTHENTICATED', 'invalid username or password');
    }
    await this.limits.succeeded(input.username, ip);
    if (this.passwords.needsRehash(found.passwordHash)) {
      await this.store.users.setPasswordHash(found.id, await this.passwords.hash(input.password));
    }
    const { passwordHash: _, ...user } = found;
    return this.startSession(user, randomUUID(), csrfToken);
  }

  /** Exchanges a refresh token for a new pair. A token presented twice revokes its whole family. */
  async refresh(refreshToken: string, csrfToken?: string): Promise<IssuedTokens> {
    const result = await this.store.refreshTokens.consume(sha256(refreshToken));
    if (!result) throw new SbError('TOKEN_INVALID', 'refresh token is invalid');
    if ('stale' in result) {
      const t = result.stale;
      // A logout revokes its session's tokens without using them: presenting one afterwards is a
      // client that missed the logout, not a replay (a used token still is, logged out or not).
      if (!t.used_at && t.revoked_at && t.revoked_reason === 'logout') {
        throw new SbError('TOKEN_INVALID', 'this session has ended (logged out); log in again');
      }
      if (t.used_at || t.revoked_at) {
        const n = await this.store.refreshTokens.revokeFamily(t.family_id, 'reuse');
        this.log.warn({ userId: t.user_id, family: t.family_id, revoked: n }, 'refresh token reused; session family revoked');
        throw new SbError('REFRESH_REUSED', 'refresh token was already used; the session is revoked, log in again');
      }
      throw new SbError('TOKEN_EXPIRED', 'refresh token has expired; log in again');
    }
    const user = await this.store.users.byId(result.ok.user_id);
    if (!user) throw new SbError('TOKEN_INVALID', 'refresh token is invalid');
    return this.startSession(user, result.ok.family_id, csrfToken);
  }

  /** Ends the session the refresh token belongs to (all its tokens). Unknown tokens are ignored. */
  async logout(refreshToken: string): Promise<void> {
    const family = await this.store.refreshTokens.familyOf(sha256(refreshToken));
    if (family) await this.store.refreshTokens.revokeFamily(family, 'logout');
  }

  private async startSession(user: User, familyId: string, csrfToken: string | undefined): Promise<IssuedTokens> {
    const refreshToken = randomBytes(32).toString('base64url');
    const refreshExpiresAt = new Date(Date.now() + this.cfg.refreshTokenTtlS * 1000);
    await this.store.refreshTokens.insert({ hash: sha256(refreshToken), familyId, userId: user.id, expiresAt: refreshExpiresAt });
    const access = await this.access.issue(user, csrfToken);
    return { user, accessToken: access.token, accessExpiresAt: access.expiresAt, refreshToken, refreshExpiresAt };
  }
}

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

export function checkUsername(username: string): void {
  if (!USERNAME_RE.test(username)) {
    throw new ValidationError('username', '3 to 32 characters: letters, digits, `_`, `.`, `-`, starting with a letter or digit');
  }
}

export function checkPassword(password: string): void {
  if ([...password].length < PASSWORD_MIN) throw new ValidationError('password', `at least ${PASSWORD_MIN} characters`);
  if (password.length > PASSWORD_MAX) throw new ValidationError('password', `at most ${PASSWORD_MAX} characters`);
}
