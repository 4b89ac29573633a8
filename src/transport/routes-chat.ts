// /api/v1/users and /api/v1/rooms: user search, the room lifecycle, members and message history.

import { USERNAME_RE } from '../auth/auth-service.js';
import { EMAIL_MAX } from '../auth/email-auth.js';
import type { PublishBudget } from '../chat/publish-budget.js';
import type { RoomsService } from '../chat/rooms-service.js';
import { notFound } from '../errors.js';
import type { Store } from '../store/store.js';
import type { Ctx, Route } from './http.js';
import { publicUser } from './routes-auth.js';
import { cursorParam, decodeCursor, limitParam, nextCursor, refs, UUID_PATTERN } from './schemas.js';

const isUuid = (s: string) => new RegExp(UUID_PATTERN).test(s);
export const page = (items: Record<string, unknown>) => ({
  type: 'object',
  properties: { ...items, nextCursor: { type: ['string', 'null'], description: 'Pass as `cursor` for the next page; null on the last page' } },
});
export const noContent = { 204: { description: 'Done' } };

export function chatRoutes(rooms: RoomsService, store: Store, publishBudget: PublishBudget): Route[] {
  const users = ['users'];
  const tags = ['rooms'];
  const roomParams = { uuidParams: ['id'] };
  return [
    {
      method: 'GET',
      path: '/api/v1/users',
      auth: true,
      summary: 'Find people',
      description:
        'By name: everyone with a word of their username (whole, or split at `.`, `_`, `-`) or display name starting with each word of `q` (case-insensitive; at most 4 words count; `q` empty lists everyone). By email: with an `@` in `q`, only the account that verified exactly that address, regardless of case (no partial matches, for privacy). Never you. Ordered by username.',
      tags: users,
      query: {
        type: 'object',
        properties: { q: { type: 'string', maxLength: EMAIL_MAX, default: '', example: 'ada love' }, limit: limitParam(20, 100), cursor: cursorParam },
      },
      responses: { 200: { description: 'A page of users, ordered by username', schema: page({ users: { type: 'array', items: refs.User } }) } },
      async handle(ctx: Ctx<unknown, { q: string; limit: number; cursor?: string }>) {
        const after = decodeCursor(ctx.query.cursor, (k) => USERNAME_RE.test(k));
        const found = await store.users.search(ctx.query.q, ctx.query.limit, after, ctx.user.id);
        return { body: { users: found.map(publicUser), nextCursor: nextCursor(found, ctx.query.limit, (u) => u.username.toLowerCase()) } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/users/:id',
      auth: true,
      ...roomParams,
      summary: 'A user by id',
      tags: users,
      responses: { 200: { description: 'The user', schema: { type: 'object', properties: { user: refs.User } } } },
      async handle(ctx) {
        const u = await store.users.byId(ctx.params.id as string);
        if (!u) throw notFound('user');
        return { body: { user: publicUser(u) } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/rooms',
      auth: true,
      summary: 'Create a group room, or open the direct room with another user',
      description:
        'Group: `{"kind":"group","name":"..."}`; the creator becomes its owner. Direct: `{"kind":"direct","peerId":"<user id>"}`; opening an existing conversation returns it with 200.',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['kind'],
        properties: {
          kind: { enum: ['group', 'direct'] },
          name: { type: 'string', minLength: 1, maxLength: 100 },
          peerId: { type: 'string', pattern: UUID_PATTERN },
        },
      },
      responses: {
        201: { description: 'Created', schema: { type: 'object', properties: { room: refs.Room } } },
        200: { description: 'The direct room already existed', schema: { type: 'object', properties: { room: refs.Room } } },
      },
      async handle(ctx: Ctx<{ kind: 'group' | 'direct'; name?: string; peerId?: string }>) {
        const { room, created } = await rooms.create(ctx.user.id, ctx.body);
        return { status: created ? 201 : 200, body: { room } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/rooms',
      auth: true,
      summary: 'List my rooms, or search group rooms',
      description: '`scope=mine` (default): rooms you belong to. `scope=public`: group rooms whose name contains `q`.',
      tags,
      query: {
        type: 'object',
        properties: {
          scope: { enum: ['mine', 'public'], default: 'mine' },
          q: { type: 'string', maxLength: 100 },
          limit: limitParam(50, 200),
          cursor: cursorParam,
        },
      },
      responses: { 200: { description: 'A page of rooms, ordered by id', schema: page({ rooms: { type: 'array', items: refs.Room } }) } },
      async handle(ctx: Ctx<unknown, { scope: 'mine' | 'public'; q?: string; limit: number; cursor?: string }>) {
        const cursor = decodeCursor(ctx.query.cursor, isUuid);
        const list = await rooms.list(ctx.user.id, { ...ctx.query, cursor });
        return { body: { rooms: list, nextCursor: nextCursor(list, ctx.query.limit, (r) => r.id) } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/rooms/:id',
      auth: true,
      ...roomParams,
      summary: 'A room',
      description: 'Any group room; a direct room only to its two members (404 to others).',
      tags,
      responses: { 200: { description: 'The room', schema: { type: 'object', properties: { room: refs.Room } } } },
      async handle(ctx) {
        return { body: { room: await rooms.get(ctx.user.id, ctx.params.id as string) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/rooms/:id',
      auth: true,
      ...roomParams,
      summary: 'Delete a room and its history (owner or admin)',
      description: 'Its subscribers get a `room_deleted` event and their subscriptions end. An admin may delete any room, direct rooms included.',
      tags,
      responses: { ...noContent, 403: { description: 'Not the owner (NOT_OWNER)' } },
      async handle(ctx) {
        await rooms.delete(ctx.user, ctx.params.id as string);
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/rooms/:id/join',
      auth: true,
      ...roomParams,
      summary: 'Join a group room (no-op when already a member)',
      tags,
      responses: {
        200: { description: 'Joined', schema: { type: 'object', properties: { room: refs.Room } } },
        403: { description: 'Direct rooms cannot be joined (FORBIDDEN); the room banned you (BANNED)' },
      },
      async handle(ctx) {
        return { body: { room: await rooms.join(ctx.user, ctx.params.id as string) } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/rooms/:id/leave',
      auth: true,
      ...roomParams,
      summary: 'Leave a group room',
      tags,
      responses: {
        ...noContent,
        403: { description: 'Not a member, or a direct room' },
        409: { description: 'The owner cannot leave; delete the room instead' },
      },
      async handle(ctx) {
        await rooms.leave(ctx.user, ctx.params.id as string);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/rooms/:id/members',
      auth: true,
      ...roomParams,
      summary: 'Members of a room (members only)',
      tags,
      query: { type: 'object', properties: { limit: limitParam(100, 200), cursor: cursorParam } },
      responses: {
        200: { description: 'A page of members', schema: page({ members: { type: 'array', items: refs.Member } }) },
        403: { description: 'Not a member (NOT_MEMBER)' },
      },
      async handle(ctx: Ctx<unknown, { limit: number; cursor?: string }>) {
        const cursor = decodeCursor(ctx.query.cursor, isUuid);
        const members = await rooms.members(ctx.user.id, ctx.params.id as string, ctx.query.limit, cursor);
        return { body: { members, nextCursor: nextCursor(members, ctx.query.limit, (m) => m.userId) } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/rooms/:id/messages',
      auth: true,
      ...roomParams,
      summary: 'Message history (members only)',
      description:
        'Messages and timeline events (`event`: joins, leaves, removals, bans, role changes, renames, deletions) in ascending `seq`; a deleted message is a tombstone (`deletedAt`, empty body). With `after`: the `limit` messages after that seq (page forward). With `before`: the `limit` messages before it (page back). Neither: the latest `limit`.',
      tags,
      query: {
        type: 'object',
        properties: {
          before: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Only messages with a smaller seq' },
          after: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Only messages with a larger seq' },
          limit: limitParam(50, 200),
        },
      },
      responses: {
        200: {
          description: 'A page of history',
          schema: {
            type: 'object',
            properties: { messages: { type: 'array', items: refs.Message }, lastSeq: { type: 'integer', description: "The room's newest seq" } },
          },
        },
        403: { description: 'Not a member (NOT_MEMBER)' },
      },
      async handle(ctx: Ctx<unknown, { before?: number; after?: number; limit: number }>) {
        const { room, messages } = await rooms.history(ctx.user.id, ctx.params.id as string, ctx.query);
        return { body: { messages, lastSeq: room.lastSeq } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/rooms/:id/messages',
      auth: true,
      ...roomParams,
      summary: 'Post a message (members only; idempotent by cid)',
      description:
        'Returns the stored message with its `seq`. Retrying with the same `cid` returns the original message (200, `duplicate: true`); reusing a cid for a different message is a 409.',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['cid', 'body'],
        properties: {
          cid: { type: 'string', minLength: 1, maxLength: 64, description: 'Client message id, unique per sender' },
          body: { type: 'string', description: 'Message text (size limit: SB_MAX_MESSAGE_BYTES); may be empty when it carries attachments' },
          attachments: {
            type: 'array',
            maxItems: 10,
            items: { type: 'string', pattern: UUID_PATTERN },
            description: 'Ids of files you uploaded (POST /api/v1/attachments), at most 10; the message shows them in this order',
          },
        },
      },
      responses: {
        201: { description: 'Stored', schema: { type: 'object', properties: { message: refs.Message, duplicate: { const: false } } } },
        200: { description: 'A retry: the original message', schema: { type: 'object', properties: { message: refs.Message, duplicate: { const: true } } } },
        403: { description: 'Not a member (NOT_MEMBER)' },
        409: { description: 'cid already used for a different message' },
        429: { description: 'Over your publish budget (shared with WebSocket `pub`); wait Retry-After seconds (RATE_LIMITED)' },
      },
      async handle(ctx: Ctx<{ cid: string; body: string; attachments?: string[] }>) {
        // The same per-user budget as WebSocket `pub`: posting over REST is no way around it.
        publishBudget.take(ctx.user.id);
        const r = await rooms.post(ctx.user, ctx.params.id as string, ctx.body);
        return { status: r.duplicate ? 200 : 201, body: r };
      },
    },
  ];
}
