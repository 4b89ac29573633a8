// Accounts and sessions: register, login, refresh (rotating, with reuse detection), logout. The
// transport calls this; it calls the store. Rate limits live here so every entry point gets them.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { RateLimitedError, SbError, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { User } from '../store/users.js';
import { AccessTokens } from './access-tokens.js';
import type { SigningKey } from './keys.js';
import { Passwords } from './passwords.js';
import { type Clock, RateLimiter } from './rate-limit.js';

export const USERNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$/;
export const PASSWORD_MIN = 10;
/** argon2 cost grows with input; no real password needs more. */
export const PASSWORD_MAX = 256;

export interface Session {
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
  private readonly loginIp: RateLimiter;
  private readonly loginUser: RateLimiter;
  private readonly registerIp: RateLimiter;

  constructor(
    private readonly store: Store,
    key: SigningKey,
    private readonly cfg: Config,
    private readonly log: Logger,
    clock: Clock = Date.now,
  ) {
    this.passwords = new Passwords({ memoryKiB: cfg.argon2MemoryKiB, timeCost: cfg.argon2TimeCost });
    this.access = new AccessTokens(key, cfg.accessTokenTtlS);
    this.loginIp = new RateLimiter(cfg.limits.loginPerIpPerMinute, 60_000, clock);
    this.loginUser = new RateLimiter(cfg.limits.loginPerUserPer15Min, 15 * 60_000, clock);
    this.registerIp = new RateLimiter(cfg.limits.registerPerIpPerHour, 3_600_000, clock);
  }

  /** Self-service registration, rate-limited per client IP. */
  async register(input: NewAccount, ip: string): Promise<User> {
    checkUsername(input.username);
    checkPassword(input.password);
    const wait = this.registerIp.take(ip);
    if (wait) throw new RateLimitedError(wait);
    const user = await createAccount(this.store, this.passwords, input, false);
    this.log.info({ userId: user.id }, 'user registered');
    return user;
  }

  async login(input: { username: string; password: string }, ip: string, csrfToken?: string): Promise<Session> {
    const userKey = input.username.toLowerCase();
    const wait = Math.max(this.loginIp.take(ip), this.loginUser.blockedFor(userKey));
    if (wait) throw new RateLimitedError(wait);
    const found = input.password.length <= PASSWORD_MAX ? await this.store.users.byUsername(input.username) : undefined;
    const ok = await this.passwords.verify(found?.passwordHash, input.password.slice(0, PASSWORD_MAX));
    if (!ok || !found) {
      this.loginUser.hit(userKey);
      throw new SbError('UNAUTHENTICATED', 'invalid username or password');
    }
    this.loginUser.reset(userKey);
    if (this.passwords.needsRehash(found.passwordHash)) {
      await this.store.users.setPasswordHash(found.id, await this.passwords.hash(input.password));
    }
    const { passwordHash: _, ...user } = found;
    return this.startSession(user, randomUUID(), csrfToken);
  }

  /** Exchanges a refresh token for a new pair. A token presented twice revokes its whole family. */
  async refresh(refreshToken: string, csrfToken?: string): Promise<Session> {
    const result = await this.store.refreshTokens.consume(sha256(refreshToken));
    if (!result) throw new SbError('TOKEN_INVALID', 'refresh token is invalid');
    if ('stale' in result) {
      const t = result.stale;
      if (t.used_at || t.revoked_at) {
        const n = await this.store.refreshTokens.revokeFamily(t.family_id);
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
    const result = await this.store.refreshTokens.consume(sha256(refreshToken));
    if (!result) return;
    const family = 'ok' in result ? result.ok.family_id : result.stale.family_id;
    await this.store.refreshTokens.revokeFamily(family);
  }

  private async startSession(user: User, familyId: string, csrfToken: string | undefined): Promise<Session> {
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
