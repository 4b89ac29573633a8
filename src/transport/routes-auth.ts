// /api/v1/auth: register, login, refresh, logout, me. Two session styles: bearer (tokens in the
// JSON body, for apps and bots) and cookie (HttpOnly cookies plus a CSRF token, for browsers).

import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthService, IssuedTokens } from '../auth/auth-service.js';
import type { Config } from '../config.js';
import { notFound, SbError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { User } from '../store/users.js';
import { COOKIE_ACCESS, COOKIE_CSRF, COOKIE_REFRESH, type Ctx, type Reply, type Route } from './http.js';
import { refs } from './schemas.js';

const REFRESH_PATH = '/api/v1/auth';

export const publicUser = (u: User) => ({ id: u.id, username: u.username, displayName: u.displayName, createdAt: u.createdAt });
const me = (u: User) => ({ ...publicUser(u), isAdmin: u.isAdmin });

export function authRoutes(auth: AuthService, store: Store, cfg: Config): Route[] {
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
        properties: { ...credentials, displayName: { type: 'string', minLength: 1, maxLength: 64 } },
      },
      responses: {
        201: { description: 'Created', schema: { type: 'object', properties: { user: refs.User } } },
        409: { description: 'Username taken (USERNAME_TAKEN)' },
        429: { description: 'Too many registrations from this IP' },
      },
      async handle(ctx: Ctx<{ username: string; password: string; displayName?: string }>) {
        const user = await auth.register(ctx.body, ctx.ip);
        return { status: 201, body: { user: publicUser(user) } };
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
        const s = await auth.login(ctx.body, ctx.ip, csrf);
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
        'Revokes every refresh token of the session and clears the auth cookies. Access tokens already issued stay valid until they expire (minutes).',
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
  ];
}
