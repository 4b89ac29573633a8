// /api/v1/robots: registration with certificate enrollment, the owner's management (rename, delete,
// rotate, revoke, grants) and the command audit log. The permission rules live in RobotsService.

import type { RobotsService } from '../robots/robots-service.js';
import type { AuditCursor, GrantRole } from '../store/robots.js';
import type { Ctx, Route } from './http.js';
import { csrErrors, csrField, robotEnrollRoutes } from './routes-robot-enroll.js';
import { cursorParam, decodeCursor, limitParam, nextCursor, refs, UUID_PATTERN } from './schemas.js';

const isUuid = (s: string) => new RegExp(UUID_PATTERN).test(s);
/** JSON has no bytes: binary inside a payload goes out as base64, as in `tm` on JSON connections. */
const jsonSafe = (v: unknown): unknown =>
  v instanceof Uint8Array
    ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')
    : Array.isArray(v)
      ? v.map(jsonSafe)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]))
        : v;
const page = (items: Record<string, unknown>) => ({
  type: 'object',
  properties: { ...items, nextCursor: { type: ['string', 'null'], description: 'Pass as `cursor` for the next page; null on the last page' } },
});
const noContent = { 204: { description: 'Done' } };
const notOwner = { 403: { description: 'Only a viewer or operator: the owner or an admin must do this (NOT_OWNER)' } };
const hidden = { 404: { description: 'No such robot, or it is not visible to you (no role, not an admin)' } };
const caMissing = { 503: { description: 'The robot CA is not initialised: the operator must run `switchboard pki init` (UNAVAILABLE)' } };
const nameBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 64, example: 'rover-1', description: 'Unique among the owner’s robots, case-insensitively' } },
};

/** Audit cursors: the last record's issue time and id (the log's sort key, newest first). */
const auditKey = (c: { issuedAt: Date; id: string }) => `${c.issuedAt.toISOString()}|${c.id}`;
function auditCursor(raw: string | undefined): AuditCursor | undefined {
  let parsed: AuditCursor | undefined;
  const key = decodeCursor(raw, (k) => {
    const parts = k.split('|');
    const [at, id] = parts;
    const issuedAt = new Date(at ?? '');
    if (parts.length !== 2 || id === undefined || !isUuid(id) || Number.isNaN(issuedAt.getTime()) || issuedAt.toISOString() !== at) return false;
    parsed = { issuedAt, id };
    return true;
  });
  return key === undefined ? undefined : parsed;
}

export function robotRoutes(robots: RobotsService): Route[] {
  const tags = ['robots'];
  const one = { uuidParams: ['id'] };
  return [
    ...robotEnrollRoutes(robots),
    {
      method: 'POST',
      path: '/api/v1/robots',
      auth: true,
      summary: 'Register a robot and issue its client certificate',
      description:
        'The caller becomes the owner. With `csr` (a certificate signing request made on the robot), the certificate is for the robot’s own key and no key is made: the answer has no `privateKeyPem`. Without it, the answer carries a new private key: **the key is returned this once and never stored**. The certificate is signed by the robot CA with CN = robot id.',
      tags,
      body: { ...nameBody, properties: { ...nameBody.properties, csr: csrField } },
      responses: {
        201: {
          description: 'Registered',
          schema: { type: 'object', properties: { robot: refs.Robot }, allOf: [refs.Enrollment] },
        },
        ...csrErrors,
        409: { description: 'You already have a robot of that name (CONFLICT)' },
        ...caMissing,
      },
      async handle(ctx: Ctx<{ name: string; csr?: string }>) {
        const { robot, enrollment } = await robots.create(ctx.user, ctx.body.name, ctx.body.csr);
        return { status: 201, body: { robot, ...enrollment } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/robots',
      auth: true,
      summary: 'List my robots (owned or granted)',
      description: 'Each with your `role`. Admins see only their own here; they reach any robot by id.',
      tags,
      query: { type: 'object', properties: { limit: limitParam(50, 200), cursor: cursorParam } },
      responses: { 200: { description: 'A page of robots, ordered by id', schema: page({ robots: { type: 'array', items: refs.Robot } }) } },
      async handle(ctx: Ctx<unknown, { limit: number; cursor?: string }>) {
        const after = decodeCursor(ctx.query.cursor, isUuid);
        const list = await robots.list(ctx.user, ctx.query.limit, after);
        return { body: { robots: list, nextCursor: nextCursor(list, ctx.query.limit, (r) => r.id) } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/robots/:id',
      auth: true,
      ...one,
      summary: 'A robot, with its certificates (viewers and up)',
      tags,
      responses: {
        200: {
          description: 'The robot',
          schema: {
            type: 'object',
            properties: { robot: { allOf: [refs.Robot, { type: 'object', properties: { certificates: { type: 'array', items: refs.RobotCertificate } } }] } },
          },
        },
        ...hidden,
      },
      async handle(ctx) {
        return { body: { robot: await robots.get(ctx.user, ctx.params.id as string) } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/robots/:id/status',
      auth: true,
      ...one,
      summary: 'Whether a robot is connected, its telemetry channels and the control lease (viewers and up)',
      tags,
      responses: {
        200: { description: 'Its live state', schema: { type: 'object', properties: { status: refs.RobotStatus } } },
        ...hidden,
      },
      async handle(ctx) {
        return { body: { status: await robots.status(ctx.user, ctx.params.id as string) } };
      },
    },
    {
      method: 'PATCH',
      path: '/api/v1/robots/:id',
      auth: true,
      ...one,
      summary: 'Rename a robot (owner or admin)',
      tags,
      body: nameBody,
      responses: {
        200: { description: 'Renamed', schema: { type: 'object', properties: { robot: refs.Robot } } },
        ...notOwner,
        ...hidden,
        409: { description: 'The owner already has a robot of that name (CONFLICT)' },
      },
      async handle(ctx: Ctx<{ name: string }>) {
        return { body: { robot: await robots.rename(ctx.user, ctx.params.id as string, ctx.body.name) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/robots/:id',
      auth: true,
      ...one,
      summary: 'Delete a robot with its grants, certificates and audit log (owner or admin)',
      tags,
      responses: { ...noContent, ...notOwner, ...hidden },
      async handle(ctx) {
        await robots.delete(ctx.user, ctx.params.id as string);
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/robots/:id/certificate',
      auth: true,
      ...one,
      summary: 'Rotate: issue a new certificate and revoke every other (owner or admin)',
      description:
        'With `{"csr": ...}` (a certificate signing request made on the robot) the hub signs a certificate for the robot’s own key and returns no key. With no body, it makes a new key, returned this once and never stored. Either way every other certificate of the robot is revoked: `revoked` counts them. (A connected robot renews without cutting its link over the robot protocol: RENEW.)',
      tags,
      bodyOptional: true,
      body: { type: 'object', additionalProperties: false, properties: { csr: csrField } },
      responses: {
        201: {
          description: 'Issued',
          schema: { allOf: [refs.Enrollment, { type: 'object', properties: { revoked: { type: 'integer', minimum: 0 } } }] },
        },
        ...csrErrors,
        ...notOwner,
        ...hidden,
        ...caMissing,
      },
      async handle(ctx: Ctx<{ csr?: string }>) {
        const { enrollment, revoked } = await robots.rotate(ctx.user, ctx.params.id as string, ctx.body.csr);
        return { status: 201, body: { ...enrollment, revoked } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/robots/:id/certificate',
      auth: true,
      ...one,
      summary: 'Revoke every certificate of a robot (owner or admin)',
      description: 'The robot cannot authenticate until a rotation issues it a new certificate.',
      tags,
      responses: {
        200: {
          description: 'Revoked',
          schema: { type: 'object', properties: { revoked: { type: 'integer', minimum: 0, description: 'How many were still valid' } } },
        },
        ...notOwner,
        ...hidden,
      },
      async handle(ctx) {
        return { body: { revoked: await robots.revoke(ctx.user, ctx.params.id as string) } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/robots/:id/grants',
      auth: true,
      ...one,
      summary: 'Who holds a role on a robot (owner or admin)',
      tags,
      responses: {
        200: {
          description: 'The grants, by username (the owner holds none)',
          schema: { type: 'object', properties: { grants: { type: 'array', items: refs.Grant } } },
        },
        ...notOwner,
        ...hidden,
      },
      async handle(ctx) {
        return { body: { grants: await robots.grants(ctx.user, ctx.params.id as string) } };
      },
    },
    {
      method: 'PUT',
      path: '/api/v1/robots/:id/grants/:userId',
      auth: true,
      uuidParams: ['id', 'userId'],
      summary: 'Grant a user a role on a robot, or change it (owner or admin)',
      description:
        '`viewer`: sees the robot and its audit log. `operator`: also watches it, holds its control lease and sends it commands and emergency stops.',
      tags,
      body: { type: 'object', additionalProperties: false, required: ['role'], properties: { role: { enum: ['viewer', 'operator'] } } },
      responses: {
        200: { description: 'Granted', schema: { type: 'object', properties: { grant: refs.Grant } } },
        ...notOwner,
        404: { description: 'No such robot (or not visible to you), or no such user' },
        409: { description: 'The user is the owner (CONFLICT)' },
      },
      async handle(ctx: Ctx<{ role: GrantRole }>) {
        return { body: { grant: await robots.grant(ctx.user, ctx.params.id as string, ctx.params.userId as string, ctx.body.role) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/robots/:id/grants/:userId',
      auth: true,
      uuidParams: ['id', 'userId'],
      summary: "Remove a user's role on a robot (owner or admin)",
      tags,
      responses: { ...noContent, ...notOwner, 404: { description: 'No such robot (or not visible to you), or the user holds no grant' } },
      async handle(ctx) {
        await robots.revokeGrant(ctx.user, ctx.params.id as string, ctx.params.userId as string);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/robots/:id/audit',
      auth: true,
      ...one,
      summary: "A robot's command audit log, newest first (viewers and up)",
      tags,
      query: { type: 'object', properties: { limit: limitParam(50, 200), cursor: cursorParam } },
      responses: {
        200: { description: 'A page of commands, newest first', schema: page({ commands: { type: 'array', items: refs.Command } }) },
        ...hidden,
      },
      async handle(ctx: Ctx<unknown, { limit: number; cursor?: string }>) {
        const before = auditCursor(ctx.query.cursor);
        const commands = await robots.audit(ctx.user, ctx.params.id as string, ctx.query.limit, before);
        return { body: { commands, nextCursor: nextCursor(commands, ctx.query.limit, auditKey) } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/robots/:id/telemetry/:channel',
      auth: true,
      ...one,
      summary: "Stored samples of one of a robot's reliable channels, oldest first (viewers and up)",
      description:
        'The samples the robot numbered (`seq`) on a reliable channel, by the channel’s name, kept for `SB_ROBOT_HISTORY_MS` and at most `SB_ROBOT_HISTORY_MAX_SAMPLES` per channel. Page with `since` = the last `seq` received. Binary data is base64.',
      tags,
      query: {
        type: 'object',
        properties: {
          since: { type: 'integer', minimum: -1, maximum: Number.MAX_SAFE_INTEGER, default: -1, description: 'Only samples numbered above this' },
          limit: limitParam(100, 1_000),
        },
      },
      responses: {
        200: {
          description: 'Samples after `since`, oldest first',
          schema: {
            type: 'object',
            properties: {
              samples: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['seq', 'ts', 'data'],
                  properties: {
                    seq: { type: 'integer' },
                    ts: { type: 'integer', description: "The robot's timestamp, ms" },
                    data: { description: 'The payload' },
                  },
                },
              },
            },
          },
        },
        ...hidden,
      },
      async handle(ctx: Ctx<unknown, { since: number; limit: number }>) {
        const samples = await robots.history(ctx.user, ctx.params.id as string, ctx.params.channel as string, ctx.query.since, ctx.query.limit);
        return { body: { samples: samples.map((s) => ({ ...s, data: jsonSafe(s.data) })) } };
      },
    },
  ];
}
