// The server API, for backends: admins manage API keys with their user tokens; a backend holding a
// key posts as a bot or the system, writes to a person's own stream, creates rooms, adds members
// and disconnects people. Each route names the scope its key must grant.

import type { ApiKeysService } from '../auth/api-keys.js';
import { USERNAME_RE } from '../auth/auth-service.js';
import type { PublishBudget } from '../chat/publish-budget.js';
import { APP_NOTICE_BYTES, type ServerService } from '../chat/server-service.js';
import { WAIT_MS } from '../cluster/ask.js';
import { ValidationError } from '../errors.js';
import { API_SCOPES, type ApiKey, type ApiScope } from '../store/api-keys.js';
import type { Ctx, Route } from './http.js';
import { refs, UUID_PATTERN } from './schemas.js';

const keyView = (k: ApiKey) => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  scopes: k.scopes,
  createdBy: k.createdBy,
  createdAt: k.createdAt,
  lastUsedAt: k.lastUsedAt,
  revokedAt: k.revokedAt,
});

const keySchema = {
  type: 'object',
  required: ['id', 'name', 'prefix', 'scopes', 'createdAt', 'lastUsedAt', 'revokedAt'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    prefix: { type: 'string', description: "The secret's first 12 characters, to recognise it" },
    scopes: { type: 'array', items: { enum: [...API_SCOPES] } },
    createdBy: { type: ['string', 'null'], format: 'uuid' },
    createdAt: { type: 'string', format: 'date-time' },
    lastUsedAt: { type: ['string', 'null'], format: 'date-time', description: 'Within a minute' },
    revokedAt: { type: ['string', 'null'], format: 'date-time' },
  },
};

const keyed = { 401: { description: 'No API key, or an unknown or revoked one (UNAUTHENTICATED)' } };
const scoped = (scope: ApiScope) => ({ ...keyed, 403: { description: `The key lacks the \`${scope}\` scope (FORBIDDEN)` } });

export function serverRoutes(keys: ApiKeysService, server: ServerService, publishBudget: PublishBudget): Route[] {
  const adminTags = ['Server API keys'];
  const tags = ['Server API'];
  return [
    {
      method: 'POST',
      path: '/api/v1/admin/api-keys',
      auth: true,
      admin: true,
      summary: 'Create a server API key (admins)',
      description: `The answer holds the key's \`secret\` (\`sbk_\` and 43 characters), shown this once: the hub keeps only its SHA-256. A backend sends it as \`Authorization: Bearer sbk_...\` to the \`/api/v1/server/...\` routes its scopes allow: \`publish\` (post as a bot or the system; write to a person's stream), \`presence\` (who is online), \`users\` (disconnect someone), \`rooms\` (create rooms, add members). At most 1,000 live keys.`,
      tags: adminTags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'scopes'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 64, description: 'What it is for; app notices name it as `from`' },
          scopes: { type: 'array', minItems: 1, maxItems: API_SCOPES.length, items: { enum: [...API_SCOPES] } },
        },
      },
      responses: {
        201: { description: 'Created: the key and its secret', schema: { type: 'object', properties: { apiKey: keySchema, secret: { type: 'string' } } } },
        409: { description: '1,000 live keys already (CONFLICT)' },
      },
      async handle(ctx: Ctx<{ name: string; scopes: ApiScope[] }>) {
        const { apiKey, secret } = await keys.create(ctx.user.id, ctx.body.name.trim() || ctx.body.name, ctx.body.scopes);
        ctx.log.info({ apiKey: apiKey.id, name: apiKey.name, scopes: apiKey.scopes }, 'API key created');
        return { status: 201, body: { apiKey: keyView(apiKey), secret } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/admin/api-keys',
      auth: true,
      admin: true,
      summary: 'List the server API keys, revoked ones too (admins)',
      tags: adminTags,
      responses: {
        200: { description: 'Newest first; never a secret', schema: { type: 'object', properties: { apiKeys: { type: 'array', items: keySchema } } } },
      },
      async handle() {
        return { body: { apiKeys: (await keys.list()).map(keyView) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/admin/api-keys/:id',
      auth: true,
      admin: true,
      uuidParams: ['id'],
      summary: 'Revoke a server API key (admins)',
      description: 'From the next request on, on every node, the key is refused (401). Revoking a revoked key changes nothing.',
      tags: adminTags,
      responses: { 204: { description: 'Revoked' }, 404: { description: 'No such key' } },
      async handle(ctx) {
        const key = await keys.revoke(ctx.params.id as string);
        ctx.log.info({ apiKey: key.id, name: key.name }, 'API key revoked');
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/server/rooms/:id/messages',
      auth: false,
      apiKey: 'publish',
      uuidParams: ['id'],
      summary: 'Post in a group room as a bot, or as the system',
      description:
        "`as` names the bot (a username: 3–32 letters, digits, `_`, `.`, `-`); without it the message comes from the system account (`~system`, displayed `System`), which every key shares (so use UUIDs as `cid`s). The first post as a name creates the bot for this key, which alone posts as it (another key: 403; a person's name: 409 `USERNAME_TAKEN`; 100 bots a key); a bot joins a room the first time it posts there (a `member_joined` event), and cannot post in direct rooms (403), where it is banned (403 `BANNED`), or once an admin disabled it (403 `ACCOUNT_DISABLED`). Everything else is as a person's post: `cid` makes retries safe, mentions and notices follow, the size limit holds, and the key's posts share one publish budget. Bots post text only.",
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['cid', 'body'],
        properties: {
          cid: { type: 'string', minLength: 1, maxLength: 64, description: "Client message id, unique among the bot's messages" },
          body: { type: 'string', minLength: 1 },
          as: { type: 'string', pattern: USERNAME_RE.source, description: 'The bot to post as' },
        },
      },
      responses: {
        201: { description: 'Stored', schema: { type: 'object', properties: { message: refs.Message, duplicate: { const: false } } } },
        200: { description: 'A retry: the original message', schema: { type: 'object', properties: { message: refs.Message, duplicate: { const: true } } } },
        ...keyed,
        403: {
          description:
            'The key lacks the `publish` scope, the name is another key’s bot, the bot is disabled (ACCOUNT_DISABLED) or banned there (BANNED), or the room is direct (FORBIDDEN)',
        },
        404: { description: 'No such room' },
        409: { description: 'The name is a person’s (USERNAME_TAKEN), the key has its 100 bots, or the cid was used for another message (CONFLICT)' },
        429: { description: "Over the key's publish budget (RATE_LIMITED)" },
      },
      async handle(ctx: Ctx<{ cid: string; body: string; as?: string }>) {
        publishBudget.take(`key:${ctx.key.id}`);
        const r = await server.post(ctx.key.id, ctx.params.id as string, ctx.body.as, { cid: ctx.body.cid, body: ctx.body.body });
        return { status: r.duplicate ? 200 : 201, body: r };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/server/users/:id/notices',
      auth: false,
      apiKey: 'publish',
      uuidParams: ['id'],
      summary: "Put a notice in a person's own stream",
      description: `Their sockets receive \`{"t":"notice","n":...,"kind":"app","data":...,"from":"<key name>"}\`, numbered in their stream like every notice: a device that was offline gets it from \`feed\` or \`GET /api/v1/notices\`. \`data\` is any JSON value of at most ${APP_NOTICE_BYTES} bytes.`,
      tags,
      body: { type: 'object', additionalProperties: false, required: ['data'], properties: { data: { description: 'Your JSON value' } } },
      responses: {
        202: { description: 'Appended to their stream (and sent to their sockets)' },
        ...scoped('publish'),
        404: { description: 'No such user' },
        413: { description: 'data over the limit' },
        429: { description: "Over the key's publish budget, shared with its posts (RATE_LIMITED)" },
      },
      async handle(ctx: Ctx<{ data: unknown }>) {
        publishBudget.take(`key:${ctx.key.id}`);
        await server.notify(ctx.params.id as string, ctx.body.data, ctx.key.name);
        return { status: 202 };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/server/rooms',
      auth: false,
      apiKey: 'rooms',
      summary: 'Create a group room, with members',
      description:
        'Owned by `owner` (a user id), or by the system account when absent; each of `members` is added (a `member_joined` event, and a `room_added` notice in their stream).',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 100 },
          owner: { type: 'string', pattern: UUID_PATTERN },
          members: { type: 'array', maxItems: 100, items: { type: 'string', pattern: UUID_PATTERN } },
        },
      },
      responses: {
        201: { description: 'Created', schema: { type: 'object', properties: { room: refs.Room } } },
        ...scoped('rooms'),
        404: { description: 'A user that does not exist' },
      },
      async handle(ctx: Ctx<{ name: string; owner?: string; members?: string[] }>) {
        const room = await server.createRoom(ctx.body.name, ctx.body.owner, ctx.body.members ?? []);
        return { status: 201, body: { room } };
      },
    },
    {
      method: 'PUT',
      path: '/api/v1/server/rooms/:id/members/:userId',
      auth: false,
      apiKey: 'rooms',
      uuidParams: ['id', 'userId'],
      summary: 'Add a person to a group room',
      description:
        'By the system account: a `member_joined` event, and a `room_added` notice in their stream. Direct rooms: 403; someone banned there: 403 `BANNED`.',
      tags,
      responses: {
        200: { description: 'Whether they were added (false: a member already)', schema: { type: 'object', properties: { added: { type: 'boolean' } } } },
        ...scoped('rooms'),
        404: { description: 'No such room or user' },
      },
      async handle(ctx) {
        return { body: { added: await server.addMember(ctx.params.id as string, ctx.params.userId as string) } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/server/presence',
      auth: false,
      apiKey: 'presence',
      query: {
        type: 'object',
        required: ['users'],
        properties: { users: { type: 'string', minLength: 36, maxLength: 3_700, description: 'Comma-separated user ids, at most 100' } },
      },
      summary: 'Which of these people are online',
      description: `Online: holding a WebSocket on some node. Every node of the cluster is asked at once; one that does not answer within ${WAIT_MS} ms (a node dying) is left out, and the answer says \`partial: true\`.`,
      tags,
      responses: {
        200: {
          description: 'Those online, in the order asked',
          schema: { type: 'object', properties: { online: { type: 'array', items: { type: 'string', format: 'uuid' } }, partial: { type: 'boolean' } } },
        },
        ...scoped('presence'),
      },
      async handle(ctx: Ctx<unknown, { users: string }>) {
        const ids = ctx.query.users.split(',').map((s) => s.trim());
        if (ids.length > 100) throw new ValidationError('users', 'at most 100 ids');
        const bad = ids.find((id) => !new RegExp(UUID_PATTERN).test(id));
        if (bad !== undefined) throw new ValidationError('users', `${JSON.stringify(bad.slice(0, 40))} is not a user id`);
        return { body: await server.presence(ids) };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/server/users/:id/disconnect',
      auth: false,
      apiKey: 'users',
      uuidParams: ['id'],
      summary: "Close a person's WebSockets, on every node",
      description:
        'Each closes with 4004 (`disconnected by the server`); their login sessions stay valid, so clients may reconnect (to end sessions, disable the account instead). Across a cluster the order goes out at most once (core NATS).',
      tags,
      responses: { 202: { description: 'Sent to every node' }, ...scoped('users'), 404: { description: 'No such user' } },
      async handle(ctx) {
        await server.disconnect(ctx.params.id as string);
        return { status: 202 };
      },
    },
  ];
}
