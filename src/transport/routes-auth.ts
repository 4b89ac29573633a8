// /api/v1/auth: register, login, refresh, logout, me. Two session styles: bearer (tokens in the
// JSON body, for apps and bots) and cookie (HttpOnly cookies plus a CSRF token, for browsers).

import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthService, IssuedTokens } from '../auth/auth-service.js';
import type { EmailAuth } from '../auth/email-auth.js';
import { EMAIL_MAX } from '../auth/email-auth.js';
import { checkProfile, PROFILE_LIMITS, type ProfilePatch } from '../auth/profile.js';
import type { Config } from '../config.js';
import { notFound, SbError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { DmPolicy, User } from '../store/users.js';
import { COOKIE_ACCESS, COOKIE_CSRF, COOKIE_REFRESH, type Ctx, type Reply, type Route } from './http.js';
import { refs } from './schemas.js';

const REFRESH_PATH = '/api/v1/auth';

export const publicUser = (u: User) => ({
  id: u.id,
  username: u.username,
  displayName: u.displayName,
  bio: u.bio,
  avatarUrl: u.avatarUrl,
  timeZone: u.timeZone,
  createdAt: u.createdAt,
  ...(u.bot ? { bot: true as const } : {}),
});
/** The signed-in user's own view: their public profile, plus what only they see. */
export const me = (u: User) => ({ ...publicUser(u), isAdmin: u.isAdmin, email: u.email, pendingEmail: u.pendingEmail, dmPolicy: u.dmPolicy });

export function authRoutes(auth: AuthService, email: EmailAuth, store: Store, cfg: Config): Route[] {
  const cookie = (name: string, value: string, maxAgeS: number, path: string, httpOnly: boolean): string =>
    `${name}=${value}; Path=${path}; Max-Age=${maxAgeS}; SameSite=Lax${httpOnly ? '; HttpOnly' : ''}${cfg.cookieSecure ? '; Secure' : ''}`;

  const clearCookies = (): string[] => [
    cookie(COOKIE_ACCESS, '', 0, '/', true),
    cookie(COOKIE_REFRESH, '', 0, REFRESH_PATH, true),
    cookie(COOKIE_CSRF, '', 0, '/', false),
  ];

  function sessionReply(s: IssuedTokens, csrfToken: string | undefined, status = 200): Reply {
    if (csrfToken === undefined) {
      return {
        status,
        body: {
          tokenType: 'Bearer',
          accessToken: s.accessToken,
          accessExpiresAt: s.accessExpiresAt,
          refreshToken: s.refreshToken,
          refreshExpiresAt: s.refreshExpiresAt,
          user: me(s.user),
        },
      };
    }
    return {
      status,
      body: { accessExpiresAt: s.accessExpiresAt, refreshExpiresAt: s.refreshExpiresAt, csrfToken, user: me(s.user) },
      cookies: [
        cookie(COOKIE_ACCESS, s.accessToken, cfg.accessTokenTtlS, '/', true),
        cookie(COOKIE_REFRESH, s.refreshToken, cfg.refreshTokenTtlS, REFRESH_PATH, true),
        cookie(COOKIE_CSRF, csrfToken, cfg.refreshTokenTtlS, '/', false),
      ],
    };
  }

  /** The refresh token from the body, or from the cookie after a double-submit CSRF check. */
  function refreshFrom(ctx: Ctx<{ refreshToken?: string }>): { token: string; csrf?: string } {
    if (ctx.body.refreshToken !== undefined) return { token: ctx.body.refreshToken };
    const token = ctx.cookies[COOKIE_REFRESH];
    if (token === undefined) throw new SbError('UNAUTHENTICATED', 'send refreshToken in the body, or the refresh cookie');
    const cookieCsrf = ctx.cookies[COOKIE_CSRF] ?? '';
    const headerCsrf = ctx.headers['x-csrf-token'] ?? '';
    const a = Buffer.from(cookieCsrf);
    const b = Buffer.from(headerCsrf);
    if (a.length === 0 || a.length !== b.length || !timingSafeEqual(a, b)) throw new SbError('CSRF', 'missing or wrong X-CSRF-Token header');
    return { token, csrf: cookieCsrf };
  }

  const credentials = {
    username: { type: 'string', maxLength: 64, example: 'ada' },
    password: { type: 'string', maxLength: 1024, example: 'correct horse battery' },
  };
  const tags = ['auth'];

  return [
    {
      method: 'POST',
      path: '/api/v1/auth/register',
      auth: false,
      summary: 'Create an account',
      description:
        'Usernames: 3–32 characters of letters, digits, `_`, `.`, `-`, starting with a letter or digit; unique regardless of case. Passwords: at least 10 characters. Rate-limited per client IP.',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['username', 'password'],
        properties: {
          ...credentials,
          displayName: { type: 'string', minLength: 1, maxLength: 64 },
          email: {
            type: 'string',
            maxLength: EMAIL_MAX,
            description: 'Optional: a code is mailed to it; once entered (`POST /auth/email/verify`) it logs in by code',
          },
        },
      },
      responses: {
        201: { description: 'Created', schema: { type: 'object', properties: { user: refs.User } } },
        409: { description: 'Username taken (USERNAME_TAKEN)' },
        429: { description: 'Too many registrations from this IP' },
        501: { description: 'An email was given but this hub sends no mail (NOT_ENABLED)' },
      },
      async handle(ctx: Ctx<{ username: string; password: string; displayName?: string; email?: string }>) {
        const { email: rawEmail, ...account } = ctx.body;
        // Checked before the account exists, so a refusal leaves nothing half made.
        const address = rawEmail === undefined ? undefined : email.checkNewAddress(rawEmail);
        const user = await auth.register(account, ctx.ip);
        // The account exists either way: a code that could not be mailed can be asked for again.
        const pending = address === undefined ? user : await email.begin(user.id, address, ctx.ip).catch(() => user);
        return { status: 201, body: { user: publicUser(pending) } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/auth/login',
      auth: false,
      summary: 'Log in',
      description:
        'Returns a bearer session, or with `"cookie": true` sets HttpOnly cookies (sb_access, sb_refresh) plus the readable sb_csrf cookie and returns the CSRF token to send as `X-CSRF-Token`. Rate-limited per client IP and per username (429 with Retry-After).',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['username', 'password'],
        properties: { ...credentials, cookie: { type: 'boolean', default: false } },
      },
      responses: { 200: { description: 'Logged in', schema: { oneOf: [refs.Session, refs.CookieSession] } }, 429: { description: 'Too many attempts' } },
      async handle(ctx: Ctx<{ username: string; password: string; cookie?: boolean }>) {
        const csrf = ctx.body.cookie ? randomBytes(24).toString('base64url') : undefined;
        const s = await auth.login(ctx.body, { ip: ctx.ip, userAgent: ctx.headers['user-agent'] }, csrf);
        ctx.log.info({ userId: s.user.id, mode: csrf ? 'cookie' : 'bearer' }, 'login');
        return sessionReply(s, csrf);
      },
    },
    {
      method: 'POST',
      path: '/api/v1/auth/refresh',
      auth: false,
      summary: 'Rotate the refresh token',
      description:
        'Consumes the refresh token and returns a new session. Presenting a refresh token a second time revokes every token of its session (REFRESH_REUSED). Cookie sessions send no body, the sb_refresh cookie, and `X-CSRF-Token`.',
      tags,
      body: { type: 'object', additionalProperties: false, properties: { refreshToken: { type: 'string', minLength: 1, maxLength: 128 } } },
      bodyOptional: true,
      responses: {
        200: { description: 'New session', schema: { oneOf: [refs.Session, refs.CookieSession] } },
        403: { description: 'Cookie request without the CSRF header (CSRF)' },
      },
      async handle(ctx: Ctx<{ refreshToken?: string }>) {
        const { token, csrf } = refreshFrom(ctx);
        return sessionReply(await auth.refresh(token, csrf), csrf);
      },
    },
    {
      method: 'POST',
      path: '/api/v1/auth/logout',
      auth: false,
      summary: 'End the session',
      description:
        'Ends the session: its refresh tokens stop working, its access tokens are refused from now on (SESSION_ENDED) and its WebSockets close with 4102, on every node. Clears the auth cookies.',
      tags,
      body: { type: 'object', additionalProperties: false, properties: { refreshToken: { type: 'string', minLength: 1, maxLength: 128 } } },
      bodyOptional: true,
      responses: { 204: { description: 'Logged out' }, 403: { description: 'Cookie request without the CSRF header (CSRF)' } },
      async handle(ctx: Ctx<{ refreshToken?: string }>) {
        await auth.logout(refreshFrom(ctx).token);
        return { status: 204, cookies: clearCookies() };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/auth/socket-token',
      auth: true,
      summary: "A socket token for this cookie session's WebSocket",
      description:
        'A page with a cookie session cannot read its HttpOnly access cookie, but a WebSocket must answer `reauth` with a token. This issues a socket token: it opens a WebSocket and answers `reauth` (as this session, ending with it), and the REST API refuses it (401 TOKEN_INVALID). The request needs the cookies and X-CSRF-Token, which another site cannot send. Once the access cookie has expired (401), refresh the session first. A bearer session already holds a token that does both: 400.',
      tags,
      body: { type: 'object', additionalProperties: false, properties: {} },
      bodyOptional: true,
      responses: {
        200: {
          description: 'The socket token',
          schema: { type: 'object', properties: { token: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' } } },
        },
        400: { description: 'Not a cookie session (VALIDATION)' },
        403: { description: 'Without the CSRF header (CSRF)' },
      },
      async handle(ctx) {
        const u = ctx.user;
        if (u.via !== 'cookie' || u.sessionId === undefined)
          throw new SbError('VALIDATION', 'only a cookie session asks for a socket token: a bearer token opens a WebSocket itself');
        const t = await auth.socketToken({ sub: u.id, username: u.username, admin: u.admin, sid: u.sessionId });
        return { body: { token: t.token, expiresAt: t.expiresAt.toISOString() } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/auth/me',
      auth: true,
      summary: 'The signed-in user',
      tags,
      responses: { 200: { description: 'You', schema: { type: 'object', properties: { user: refs.Me } } } },
      async handle(ctx) {
        const user = await store.users.byId(ctx.user.id);
        if (!user) throw notFound('user');
        return { body: { user: me(user) } };
      },
    },
    {
      method: 'PATCH',
      path: '/api/v1/auth/me',
      auth: true,
      summary: 'Edit your profile',
      description:
        'Send the fields to change; `null` or an empty string clears one. `dmPolicy`: `anyone` (the default) or `contacts`, who may open a direct room with you. `avatarUrl` must be an http(s) URL; `timeZone` an IANA name (`Europe/Paris`, `UTC`), stored as the runtime spells it. The username cannot change: it is your id.',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: {
          displayName: { type: ['string', 'null'], maxLength: PROFILE_LIMITS.displayName },
          bio: { type: ['string', 'null'], maxLength: PROFILE_LIMITS.bio },
          avatarUrl: { type: ['string', 'null'], maxLength: PROFILE_LIMITS.avatarUrl, example: 'https://example.com/ada.png' },
          timeZone: { type: ['string', 'null'], maxLength: PROFILE_LIMITS.timeZone, example: 'Europe/London' },
          dmPolicy: { enum: ['anyone', 'contacts'], description: 'Who may open a direct room with you' },
        },
      },
      responses: { 200: { description: 'Your profile, as changed', schema: { type: 'object', properties: { user: refs.Me } } } },
      async handle(ctx: Ctx<ProfilePatch & { dmPolicy?: DmPolicy }>) {
        const { dmPolicy, ...profile } = ctx.body;
        const user = await store.users.updateProfile(ctx.user.id, { ...checkProfile(profile), ...(dmPolicy ? { dmPolicy } : {}) });
        if (!user) throw notFound('user');
        return { body: { user: me(user) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/auth/me',
      auth: true,
      summary: 'Delete your account',
      description:
        "Needs your password. Your messages stay in their rooms with `senderId: null`. A group room you own passes to its longest-standing other member, or is deleted with its history if you are its only member; you leave every other room (a direct room stays, for the other person). Your robots are deleted with their certificates and audit; your grants on others' robots end. Your contacts, and the people you asked or who asked you, get a `contact` frame (`removed`, `cancelled` or `declined`). Every session ends and your WebSockets close with 4102, on every node. Your username becomes free.",
      tags,
      body: { type: 'object', additionalProperties: false, required: ['password'], properties: { password: credentials.password } },
      responses: {
        204: { description: 'Deleted' },
        400: { description: 'Wrong password (VALIDATION, field `password`)' },
        429: { description: 'Too many wrong passwords' },
      },
      async handle(ctx: Ctx<{ password: string }>) {
        await auth.deleteAccount(ctx.user.id, ctx.body.password, ctx.ip);
        return { status: 204, cookies: clearCookies() };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/auth/password',
      auth: true,
      summary: 'Change your password',
      description:
        'Needs the current password. Every other session ends (its tokens are refused with SESSION_ENDED and its WebSockets close with 4102); this one stays signed in. Wrong current passwords count against the login rate limits.',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['currentPassword', 'newPassword'],
        properties: { currentPassword: credentials.password, newPassword: credentials.password },
      },
      responses: { 204: { description: 'Changed' }, 400: { description: 'Wrong current password, or a new one that breaks the rules (VALIDATION)' } },
      async handle(ctx: Ctx<{ currentPassword: string; newPassword: string }>) {
        await auth.changePassword(ctx.user, ctx.body.currentPassword, ctx.body.newPassword, ctx.ip);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/auth/sessions',
      auth: true,
      summary: 'Your signed-in devices',
      description: 'Every login that has not ended or expired, newest first; `current` marks the one this request came from.',
      tags,
      responses: { 200: { description: 'Your sessions', schema: { type: 'object', properties: { sessions: { type: 'array', items: refs.AuthSession } } } } },
      async handle(ctx) {
        const sessions = await auth.sessions(ctx.user.id);
        return { body: { sessions: sessions.map((s) => ({ ...s, current: s.id === ctx.user.sessionId })) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/auth/sessions/:id',
      auth: true,
      uuidParams: ['id'],
      summary: 'Sign a device out',
      description:
        'Ends one of your sessions: its refresh token stops working, its access tokens are refused (SESSION_ENDED) and its WebSockets close with 4102, on every node. Ending the current one is a logout.',
      tags,
      responses: { 204: { description: 'Ended' }, 404: { description: 'No such live session of yours' } },
      async handle(ctx) {
        await auth.revokeSession(ctx.user.id, ctx.params.id as string);
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/auth/email',
      auth: true,
      summary: 'Set your email address',
      description: `Needs your password. The address becomes your \`pendingEmail\` and a six-digit code is mailed to it; \`POST /auth/email/verify\` with the code makes it your \`email\`, which then logs in by code. Codes last 10 minutes, take 5 guesses and work once; asking again replaces the code. Limited per address and per client IP (SB_CODES_PER_ADDRESS_PER_HOUR, SB_CODES_PER_IP_PER_HOUR).`,
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['email', 'password'],
        properties: { email: { type: 'string', maxLength: EMAIL_MAX, example: 'ada@example.com' }, password: credentials.password },
      },
      responses: {
        202: { description: 'Code mailed', schema: { type: 'object', properties: { user: refs.Me } } },
        501: { description: 'This hub sends no mail (NOT_ENABLED)' },
      },
      async handle(ctx: Ctx<{ email: string; password: string }>) {
        const user = await email.startVerification(ctx.user.id, ctx.body.email, ctx.body.password, ctx.ip);
        return { status: 202, body: { user: me(user) } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/auth/email/verify',
      auth: true,
      summary: 'Confirm your email address with the mailed code',
      tags,
      body: { type: 'object', additionalProperties: false, required: ['code'], properties: { code: { type: 'string', maxLength: 16, example: '048213' } } },
      responses: {
        200: { description: 'Verified', schema: { type: 'object', properties: { user: refs.Me } } },
        400: { description: 'A wrong code, or none live (VALIDATION, field `code`)' },
        409: { description: 'Another account verified the address first (EMAIL_TAKEN)' },
      },
      async handle(ctx: Ctx<{ code: string }>) {
        return { body: { user: me(await email.verify(ctx.user.id, ctx.body.code)) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/auth/email',
      auth: true,
      summary: 'Remove your email address',
      description: 'Needs your password. The verified and the pending address both go; login by code stops.',
      tags,
      body: { type: 'object', additionalProperties: false, required: ['password'], properties: { password: credentials.password } },
      responses: { 200: { description: 'Removed', schema: { type: 'object', properties: { user: refs.Me } } } },
      async handle(ctx: Ctx<{ password: string }>) {
        return { body: { user: me(await email.removeEmail(ctx.user.id, ctx.body.password, ctx.ip)) } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/auth/code',
      auth: false,
      summary: 'Mail a login code',
      description:
        'If an account has verified this address, a six-digit login code is mailed to it (10 minutes, 5 guesses, once). The reply is the same whether or not one has. Limited per address and per client IP (429).',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['email'],
        properties: { email: { type: 'string', maxLength: EMAIL_MAX, example: 'ada@example.com' } },
      },
      responses: {
        202: { description: 'Accepted' },
        429: { description: 'Too many codes for this address or from this IP' },
        501: { description: 'This hub sends no mail: login by code is off (NOT_ENABLED)' },
      },
      async handle(ctx: Ctx<{ email: string }>) {
        await email.requestLoginCode(ctx.body.email, ctx.ip);
        return { status: 202, body: { message: 'if an account has verified this address, a login code is on its way' } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/auth/code/login',
      auth: false,
      summary: 'Log in with a mailed code',
      description: 'The same session a password login gives (bearer, or cookies with `"cookie": true`). Wrong codes count against the login rate limits.',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['email', 'code'],
        properties: {
          email: { type: 'string', maxLength: EMAIL_MAX },
          code: { type: 'string', maxLength: 16 },
          cookie: { type: 'boolean', default: false },
        },
      },
      responses: {
        200: { description: 'Logged in', schema: { oneOf: [refs.Session, refs.CookieSession] } },
        401: { description: 'A wrong or expired code (UNAUTHENTICATED)' },
        429: { description: 'Too many attempts' },
        501: { description: 'Login by code is off (NOT_ENABLED)' },
      },
      async handle(ctx: Ctx<{ email: string; code: string; cookie?: boolean }>) {
        const csrf = ctx.body.cookie ? randomBytes(24).toString('base64url') : undefined;
        const s = await email.login(ctx.body, { ip: ctx.ip, userAgent: ctx.headers['user-agent'] }, csrf);
        ctx.log.info({ userId: s.user.id, mode: csrf ? 'cookie' : 'bearer', via: 'code' }, 'login');
        return sessionReply(s, csrf);
      },
    },
  ];
}
