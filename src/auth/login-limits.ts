// Limits on logins and registrations, counted by rate-limiter-flexible in the database every node
// shares, so a cluster enforces one budget and a restart forgets nothing. The login policy is the
// library's "login endpoint protection": failures are counted per username *and* client IP (a user
// is never locked out by someone failing from elsewhere), plus a per-IP daily cap on failures (one
// address cannot spray many usernames) and a per-IP cap on attempts per minute.

import { createHash } from 'node:crypto';
import { RateLimiterPostgres } from 'rate-limiter-flexible';
import type { Limits } from '../config.js';
import { RateLimitedError } from '../errors.js';
import { consume, limiterBase, type PgQueryable, seconds } from '../store/rate-limits.js';

const DAY_S = 86_400;
/** Wrong login codes one address may take per day, from all IPs together (then 429 until the day ends). */
export const CODE_FAILS_PER_ADDRESS_PER_DAY = 20;

export class LoginLimits {
  private readonly attemptsByIp: RateLimiterPostgres;
  private readonly failsByUserIp: RateLimiterPostgres;
  private readonly failsByIp: RateLimiterPostgres;
  private readonly registrationsByIp: RateLimiterPostgres;
  private readonly codesByAddress: RateLimiterPostgres;
  private readonly codesByIp: RateLimiterPostgres;
  private readonly codeFailsByAddress: RateLimiterPostgres;

  constructor(
    client: PgQueryable,
    private readonly limits: Pick<
      Limits,
      | 'loginPerIpPerMinute'
      | 'loginFailsPerUserAndIp'
      | 'loginBlockS'
      | 'loginFailsPerIpPerDay'
      | 'registerPerIpPerHour'
      | 'codesPerAddressPerHour'
      | 'codesPerIpPerHour'
    >,
  ) {
    const base = limiterBase(client);
    this.attemptsByIp = new RateLimiterPostgres({ ...base, keyPrefix: 'login_ip', points: limits.loginPerIpPerMinute, duration: 60 });
    // Consecutive failures: the window is long (a day) and a success deletes the key; reaching the
    // limit blocks the pair for loginBlockS.
    this.failsByUserIp = new RateLimiterPostgres({ ...base, keyPrefix: 'login_fail_user_ip', points: limits.loginFailsPerUserAndIp, duration: DAY_S });
    this.failsByIp = new RateLimiterPostgres({ ...base, keyPrefix: 'login_fail_ip', points: limits.loginFailsPerIpPerDay, duration: DAY_S });
    this.registrationsByIp = new RateLimiterPostgres({ ...base, keyPrefix: 'register_ip', points: limits.registerPerIpPerHour, duration: 3_600 });
    this.codesByAddress = new RateLimiterPostgres({ ...base, keyPrefix: 'code_address', points: limits.codesPerAddressPerHour, duration: 3_600 });
    this.codesByIp = new RateLimiterPostgres({ ...base, keyPrefix: 'code_ip', points: limits.codesPerIpPerHour, duration: 3_600 });
    // Wrong login codes for one address from anywhere: with codesPerAddressPerHour new codes and 5
    // guesses each, an address would otherwise take ~600 guesses a day from spread-out IPs.
    this.codeFailsByAddress = new RateLimiterPostgres({ ...base, keyPrefix: 'code_fail_address', points: CODE_FAILS_PER_ADDRESS_PER_DAY, duration: DAY_S });
  }

  /**
   * Before a login is checked: counts the attempt against its IP, and refuses (RATE_LIMITED with
   * the wait) if the IP or the username + IP pair is over its limit.
   */
  async beforeLogin(username: string, ip: string): Promise<void> {
    await consume(this.attemptsByIp, bounded(ip));
    const [pair, byIp] = await Promise.all([this.failsByUserIp.get(pairKey(username, ip)), this.failsByIp.get(bounded(ip))]);
    const waits = [
      pair && pair.consumedPoints >= this.limits.loginFailsPerUserAndIp ? pair.msBeforeNext : 0,
      byIp && byIp.consumedPoints >= this.limits.loginFailsPerIpPerDay ? byIp.msBeforeNext : 0,
    ];
    const wait = Math.max(...waits);
    if (wait > 0) throw new RateLimitedError(seconds(wait));
  }

  /** After a wrong username or password: counts it; the failure that reaches the limit starts the block. */
  async failed(username: string, ip: string): Promise<void> {
    const key = pairKey(username, ip);
    const [pair] = await Promise.all([
      this.failsByUserIp.penalty(key),
      // The per-IP count is refused only at the next attempt (beforeLogin): this one already failed.
      this.failsByIp.penalty(bounded(ip)),
    ]);
    if (pair.consumedPoints >= this.limits.loginFailsPerUserAndIp) await this.failsByUserIp.block(key, this.limits.loginBlockS);
  }

  /** After a successful login: the pair's consecutive failures start again from zero. */
  async succeeded(username: string, ip: string): Promise<void> {
    await this.failsByUserIp.delete(pairKey(username, ip));
  }

  /** Counts a one-time code asked for against the client IP and the address; refuses past either hourly limit. */
  async code(address: string, ip: string): Promise<void> {
    await consume(this.codesByIp, bounded(ip));
    await consume(this.codesByAddress, bounded(address.toLowerCase()));
  }

  /** Before a login code is checked: refuses when the address has had too many wrong ones today. */
  async beforeCode(address: string): Promise<void> {
    const r = await this.codeFailsByAddress.get(bounded(address.toLowerCase()));
    if (r && r.consumedPoints >= CODE_FAILS_PER_ADDRESS_PER_DAY) throw new RateLimitedError(seconds(r.msBeforeNext));
  }

  async codeFailed(address: string): Promise<void> {
    await this.codeFailsByAddress.penalty(bounded(address.toLowerCase()));
  }

  /** Counts a registration attempt against its IP; refuses past the hourly limit. */
  async register(ip: string): Promise<void> {
    await consume(this.registrationsByIp, bounded(ip));
  }
}

/** Usernames are case-insensitive: one key per account whatever case an attacker types. */
const pairKey = (username: string, ip: string): string => bounded(`${username.toLowerCase()}|${ip}`);

/** Keys fit the table's varchar(255) with the prefix: a long one (a forwarded address) is hashed. */
const bounded = (key: string): string => (key.length <= 200 ? key : `sha256:${createHash('sha256').update(key).digest('base64url')}`);
