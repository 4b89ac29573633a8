// Access tokens: short-lived EdDSA JWTs carrying `sub` (user id), `jti`, `sid` (the session it was
// issued to, refused once that session ends), `kid` in the header,
// `csrf` (a hash of the CSRF token) when issued to a browser cookie session, and `use: "ws"` on a
// socket token (a cookie session's page gets one for its WebSocket; the REST API refuses it). Verification accepts
// EdDSA only, from our own key set, with our issuer: `alg: none`, HMAC confusion and foreign keys
// all fail here.

import { createHash, randomUUID } from 'node:crypto';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { SbError } from '../errors.js';
import type { SigningKey } from './keys.js';

export const ISSUER = 'switchboard';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface AccessClaims {
  sub: string;
  username: string;
  admin: boolean;
  jti: string;
  exp: number;
  /** The session (sessions.ts) the token was issued to. Tokens issued before sessions were kept have none. */
  sid?: string;
  /** Present on cookie sessions: SHA-256 (base64url) of the CSRF token the browser must echo. */
  csrf?: string;
  /** `ws`: a socket token, good for the WebSocket only. */
  use?: 'ws';
}

export const hashCsrf = (token: string): string => createHash('sha256').update(token).digest('base64url');

/** Verified tokens remembered until they expire, so a client's repeated requests skip the signature check. */
const VERIFIED_CACHE_MAX = 10_000;

export class AccessTokens {
  private readonly keySet: ReturnType<typeof createLocalJWKSet>;
  private readonly verified = new Map<string, AccessClaims>();

  constructor(
    private readonly key: SigningKey,
    private readonly ttlS: number,
  ) {
    this.keySet = createLocalJWKSet(key.jwks);
  }

  async issue(
    user: { id: string; username: string; isAdmin: boolean },
    sid: string,
    opts: { csrfToken?: string; use?: 'ws' } = {},
  ): Promise<{ token: string; expiresAt: Date }> {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + this.ttlS;
    const claims: Record<string, unknown> = { username: user.username, admin: user.isAdmin, sid };
    if (opts.csrfToken !== undefined) claims.csrf = hashCsrf(opts.csrfToken);
    if (opts.use !== undefined) claims.use = opts.use;
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', kid: this.key.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(user.id)
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(this.key.privateKey);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  async verify(token: string): Promise<AccessClaims> {
    const hit = this.verified.get(token);
    if (hit) {
      if (hit.exp * 1000 > Date.now()) return hit;
      this.verified.delete(token);
    }
    try {
      const { payload } = await jwtVerify(token, this.keySet, { algorithms: ['EdDSA'], issuer: ISSUER, requiredClaims: ['sub', 'jti', 'exp'] });
      if (
        typeof payload.username !== 'string' ||
        typeof payload.admin !== 'boolean' ||
        (payload.sid !== undefined && !(typeof payload.sid === 'string' && UUID.test(payload.sid))) ||
        (payload.use !== undefined && payload.use !== 'ws')
      )
        throw new SbError('TOKEN_INVALID', 'access token is invalid');
      const claims = payload as unknown as AccessClaims;
      // Evict the oldest entry (Map keeps insertion order) to stay bounded.
      if (this.verified.size >= VERIFIED_CACHE_MAX) this.verified.delete(this.verified.keys().next().value as string);
      this.verified.set(token, claims);
      return claims;
    } catch (e) {
      if (e instanceof SbError) throw e;
      if (e instanceof joseErrors.JWTExpired) throw new SbError('TOKEN_EXPIRED', 'access token has expired; refresh it');
      throw new SbError('TOKEN_INVALID', 'access token is invalid');
    }
  }
}
