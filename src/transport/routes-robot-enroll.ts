// /api/v1/robots/bootstrap-tokens and /api/v1/robots/enroll: fleet bootstrap tokens (an owner's,
// shown once, stored as a hash) and robots enrolling themselves with one and their own key's
// certificate signing request. Listed before the /api/v1/robots/:id routes, which would otherwise
// take `bootstrap-tokens` for a robot id.

import { MAX_CSR_PEM_CHARS } from '../auth/csr.js';
import { TOKEN_DEFAULT_LIFETIME_S, TOKEN_MAX_LIFETIME_S, TOKEN_MAX_USES } from '../robots/robot-enroller.js';
import type { RobotsService } from '../robots/robots-service.js';
import type { Ctx, Route } from './http.js';
import { refs } from './schemas.js';

/** The `csr` field of a request body: a PEM PKCS#10 request made on the robot. */
export const csrField = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_CSR_PEM_CHARS,
  description:
    'A PEM certificate signing request (`-----BEGIN CERTIFICATE REQUEST-----`) made on the robot with its own key: EC P-256 or P-384, Ed25519, or RSA of 2048 to 8192 bits. Only its key is used: the certificate gets CN = the robot id and clientAuth, whatever the request asks. No private key is made or returned.',
  example: '-----BEGIN CERTIFICATE REQUEST-----\nMIHhMIGIAgEAMCYx...\n-----END CERTIFICATE REQUEST-----\n',
};

/** 400s a request with a `csr` may get. */
export const csrErrors = {
  400: {
    description:
      'Invalid body (VALIDATION; a `csr` over the size limit too), or a `csr` that cannot be signed: not a PEM PKCS#10 request (CSR_MALFORMED), a signature that does not verify with its key (CSR_SIGNATURE_INVALID), a key of another kind or size (CSR_KEY_UNSUPPORTED)',
  },
};

const tokenSchema = {
  type: 'object',
  required: ['id', 'name', 'prefix', 'uses', 'usesLeft', 'expiresAt', 'createdAt', 'lastUsedAt', 'revokedAt'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: ['string', 'null'] },
    prefix: { type: 'string', description: 'The first characters of the secret, to recognise it' },
    uses: { type: 'integer', description: 'How many robots it may enroll in all' },
    usesLeft: { type: 'integer' },
    expiresAt: { type: 'string', format: 'date-time' },
    createdAt: { type: 'string', format: 'date-time' },
    lastUsedAt: { type: ['string', 'null'], format: 'date-time' },
    revokedAt: { type: ['string', 'null'], format: 'date-time' },
  },
};

export function robotEnrollRoutes(robots: RobotsService): Route[] {
  const tags = ['robots'];
  const enroller = robots.enroller;
  return [
    {
      method: 'POST',
      path: '/api/v1/robots/bootstrap-tokens',
      auth: true,
      summary: 'Create a fleet bootstrap token: robots enroll themselves with it as yours',
      description: `The secret (\`sbb_...\`) is in this answer only; the hub stores its hash. It enrolls at most \`uses\` robots (1–${TOKEN_MAX_USES}, default 1) until \`expiresInS\` seconds from now (60 s to 30 days, default ${TOKEN_DEFAULT_LIFETIME_S} s), unless revoked first. You keep at most 100 tokens (ended ones are deleted 7 days after they end).`,
      tags,
      bodyOptional: true,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          name: { type: 'string', maxLength: 64, example: 'line 3 rovers' },
          uses: { type: 'integer', minimum: 1, maximum: TOKEN_MAX_USES, default: 1 },
          expiresInS: { type: 'integer', minimum: 60, maximum: TOKEN_MAX_LIFETIME_S, default: TOKEN_DEFAULT_LIFETIME_S },
        },
      },
      responses: {
        201: {
          description: 'Created: the token, and its secret (shown this once)',
          schema: { type: 'object', properties: { token: tokenSchema, secret: { type: 'string', example: 'sbb_Xq3v9aTm...' } } },
        },
        409: { description: 'You keep 100 tokens already (CONFLICT)' },
      },
      async handle(ctx: Ctx<{ name?: string; uses?: number; expiresInS?: number }>) {
        return { status: 201, body: await enroller.createToken(ctx.user, ctx.body) };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/robots/bootstrap-tokens',
      auth: true,
      summary: 'My fleet bootstrap tokens, newest first (never their secrets)',
      tags,
      responses: { 200: { description: 'Your tokens', schema: { type: 'object', properties: { tokens: { type: 'array', items: tokenSchema } } } } },
      async handle(ctx) {
        return { body: { tokens: await enroller.listTokens(ctx.user) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/robots/bootstrap-tokens/:id',
      auth: true,
      uuidParams: ['id'],
      summary: 'Revoke one of my fleet bootstrap tokens',
      description: 'No robot enrolls with it any more; the robots it enrolled stay.',
      tags,
      responses: {
        200: { description: 'Revoked', schema: { type: 'object', properties: { token: tokenSchema } } },
        404: { description: 'You have no token of that id' },
      },
      async handle(ctx) {
        return { body: { token: await enroller.revokeToken(ctx.user, ctx.params.id as string) } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/robots/enroll',
      auth: false,
      summary: 'A robot enrolls itself with a fleet bootstrap token and its own key’s certificate signing request',
      description:
        'Authenticated by the bootstrap token, not a user: `Authorization: Bearer sbb_...`. The robot is registered under `name` (unique among the token owner’s robots), owned by the token’s owner, and gets a certificate for the key of its `csr`, which never leaves it. Each enrollment takes one of the token’s uses (none is taken when the answer is an error). Rate-limited per client IP (60 a minute).',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'csr'],
        properties: { name: { type: 'string', minLength: 1, maxLength: 64, example: 'rover-17' }, csr: csrField },
      },
      responses: {
        201: {
          description: 'Enrolled',
          schema: { type: 'object', properties: { robot: refs.Robot }, allOf: [refs.Enrollment] },
        },
        ...csrErrors,
        401: {
          description:
            'No token, or one the hub does not know (BOOTSTRAP_TOKEN_UNKNOWN), expired (BOOTSTRAP_TOKEN_EXPIRED) or revoked (BOOTSTRAP_TOKEN_REVOKED)',
        },
        403: {
          description: 'The token has enrolled as many robots as it allows (BOOTSTRAP_TOKEN_USED_UP), or its owner is disabled (ACCOUNT_DISABLED)',
        },
        409: { description: 'The token’s owner already has a robot of that name (CONFLICT); the use is not taken' },
        429: { description: 'Too many enrollments from this IP (RATE_LIMITED)' },
        503: { description: 'The robot CA is not initialised (UNAVAILABLE)' },
      },
      async handle(ctx: Ctx<{ name: string; csr: string }>) {
        const m = /^Bearer\s+(\S+)$/i.exec(ctx.headers.authorization ?? '');
        const { robot, certificate } = await robots.enroll(m?.[1], ctx.ip, ctx.body.name, ctx.body.csr);
        return { status: 201, body: { robot, ...certificate } };
      },
    },
  ];
}
