// Email: verifying an address by a code sent to it, and logging in without a password by a code
// sent to a verified address. Codes are six digits, live 10 minutes, take 5 guesses and work once;
// the store keeps only an HMAC of each, keyed from the node's signing key (which every node of a
// cluster shares), so a copy of the database does not reveal live codes. With no SMTP server
// configured both are off and say so (NOT_ENABLED).

import { createHash, createHmac, randomInt, randomUUID } from 'node:crypto';
import { notFound, SbError, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CodePurpose } from '../store/email-codes.js';
import type { Store } from '../store/store.js';
import type { User } from '../store/users.js';
import type { AuthService, Client, IssuedTokens } from './auth-service.js';
import type { SigningKey } from './keys.js';
import type { Mailer } from './mailer.js';

export const CODE_TTL_MS = 10 * 60_000;
export const CODE_ATTEMPTS = 5;
export const EMAIL_MAX = 254;

/**
 * The WHATWG (HTML) form of an address, with a dot in the domain: no spaces, commas, quotes or
 * angle brackets, so one address can never become two recipients or a header.
 */
const EMAIL_RE = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function checkEmail(raw: string, field = 'email'): string {
  const email = raw.trim();
  if (email.length > EMAIL_MAX || !EMAIL_RE.test(email)) throw new ValidationError(field, 'must be an email address like ada@example.com');
  return email;
}

const emailTaken = () => new SbError('EMAIL_TAKEN', 'another account has verified this address', { field: 'email' });

export class EmailAuth {
  private readonly hmacKey: Buffer;

  constructor(
    private readonly store: Store,
    private readonly auth: AuthService,
    key: SigningKey,
    private readonly mailer: Mailer | undefined,
    private readonly log: Logger,
  ) {
    this.hmacKey = createHash('sha256')
      .update('switchboard one-time codes\u0000')
      .update(key.privateKey.export({ format: 'der', type: 'pkcs8' }))
      .digest();
  }

  get enabled(): boolean {
    return this.mailer !== undefined;
  }

  /** Sets `email` as the caller's address waiting for verification (their password checked again), and mails it a code. */
  async startVerification(userId: string, rawEmail: string, password: string, ip: string): Promise<User> {
    const email = this.checkNewAddress(rawEmail);
    const user = await this.auth.reconfirm(userId, password, ip, 'password');
    if (user.email?.toLowerCase() === email.toLowerCase()) return user; // already verified
    return this.begin(userId, email, ip);
  }

  /**
   * An address someone wants to verify: mail must be on and the address well-formed. Whether
   * another account has verified it is told only to whoever proves the mailbox is theirs (the code
   * comes back to `verify`): said earlier, it would tell anyone which addresses have accounts.
   */
  checkNewAddress(rawEmail: string): string {
    this.mailerFor('email');
    return checkEmail(rawEmail);
  }

  /** Makes a checked address the account's pending one and mails it a code. */
  async begin(userId: string, email: string, ip: string): Promise<User> {
    const mailer = this.mailerFor('email');
    await this.auth.limits.code(email, ip);
    const pending = await this.store.users.setPendingEmail(userId, email);
    if (!pending) throw notFound('user');
    await this.sendCode(mailer, userId, 'verify', email);
    return pending;
  }

  /** The code mailed by `startVerification`: the address becomes the account's email. */
  async verify(userId: string, code: string): Promise<User> {
    const r = await this.store.emailCodes.attempt(userId, 'verify', this.hash(code), CODE_ATTEMPTS);
    if (r === 'none') throw new ValidationError('code', `no live code (it expired, was used, or was tried ${CODE_ATTEMPTS} times): ask for a new one`);
    if (r === 'wrong') throw new ValidationError('code', 'is wrong');
    const user = await this.store.users.setEmail(userId, r.email);
    if (user === 'taken') throw emailTaken();
    if (!user) throw notFound('user');
    // A login code mailed to the previous address must not outlive it.
    await this.store.emailCodes.drop(userId, 'login');
    this.log.info({ userId }, 'email verified');
    return user;
  }

  /** Removes the caller's address, verified or pending: it no longer logs in. */
  async removeEmail(userId: string, password: string, ip: string): Promise<User> {
    await this.auth.reconfirm(userId, password, ip, 'password');
    await this.store.emailCodes.drop(userId);
    // Clearing the email clears the pending one with it.
    const user = await this.store.users.setEmail(userId, null);
    if (!user || user === 'taken') throw notFound('user');
    return user;
  }

  /**
   * Mails a login code if an account has verified `rawEmail`. The reply is the same either way,
   * and comes before the lookup and the mail, so its timing does not tell either.
   */
  async requestLoginCode(rawEmail: string, ip: string): Promise<void> {
    const mailer = this.mailerFor('login by code');
    const email = checkEmail(rawEmail);
    await this.auth.limits.code(email, ip);
    void (async () => {
      const user = await this.store.users.byEmail(email);
      if (user) await this.sendCode(mailer, user.id, 'login', user.email ?? email);
    })().catch((e: unknown) => this.log.error({ err: e }, 'login code not sent'));
  }

  /** A login code for a verified address: the same session a password login gives. */
  async login(input: { email: string; code: string }, client: Client, csrfToken: string | undefined): Promise<IssuedTokens> {
    this.mailerFor('login by code');
    const email = checkEmail(input.email);
    const key = `email:${email}`;
    await this.auth.limits.beforeLogin(key, client.ip);
    await this.auth.limits.beforeCode(email);
    const user = await this.store.users.byEmail(email);
    // A guess at an address without an account costs the same query.
    const r = await this.store.emailCodes.attempt(user?.id ?? randomUUID(), 'login', this.hash(input.code), CODE_ATTEMPTS);
    if (!user || typeof r === 'string' || r.email.toLowerCase() !== email.toLowerCase()) {
      this.log.warn(
        { ip: client.ip, reason: !user ? 'no such address' : typeof r === 'string' ? `code ${r}` : 'code for another address' },
        'code login failed',
      );
      await this.auth.limits.failed(key, client.ip);
      await this.auth.limits.codeFailed(email);
      throw new SbError('UNAUTHENTICATED', 'wrong or expired code; ask for a new one if it has expired');
    }
    await this.auth.limits.succeeded(key, client.ip);
    return this.auth.startSession(user, client, csrfToken);
  }

  private mailerFor(what: string): Mailer {
    if (!this.mailer) throw new SbError('NOT_ENABLED', `${what} is off on this hub: no SMTP server is configured (SB_SMTP_URL)`);
    return this.mailer;
  }

  private hash(code: string): Buffer {
    return createHmac('sha256', this.hmacKey).update(code.trim()).digest();
  }

  private async sendCode(mailer: Mailer, userId: string, purpose: CodePurpose, email: string): Promise<void> {
    const code = randomInt(0, 1_000_000).toString().padStart(6, '0');
    await this.store.emailCodes.put({ userId, purpose, email, hash: this.hash(code), expiresAt: new Date(Date.now() + CODE_TTL_MS) });
    const minutes = CODE_TTL_MS / 60_000;
    const what = purpose === 'login' ? 'log in to Switchboard' : 'confirm this address for your Switchboard account';
    try {
      await mailer.send({
        to: email,
        subject: purpose === 'login' ? 'Your Switchboard login code' : 'Confirm your email for Switchboard',
        text: `Your code to ${what}:\n\n    ${code}\n\nIt works once, for ${minutes} minutes. If you did not ask for it, ignore this mail: nothing changes without the code.\n`,
      });
    } catch (e) {
      // Only the SMTP status: nodemailer's error and the server's reply may repeat the address.
      const { code, responseCode } = e as { code?: string; responseCode?: number };
      this.log.error({ userId, purpose, smtpCode: code, responseCode }, 'one-time code could not be mailed');
      await this.store.emailCodes.drop(userId, purpose);
      if (responseCode !== undefined && responseCode >= 500) throw new ValidationError('email', 'the mail server refused this address');
      throw new SbError('UNAVAILABLE', 'the code could not be mailed; try again shortly');
    }
    // Never the code, nor the address: the user id says whose it was.
    this.log.info({ userId, purpose }, 'one-time code mailed');
  }
}
