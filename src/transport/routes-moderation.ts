// Moderation: renaming rooms, room roles, removing and banning members (owners, moderators,
// admins), and an admin disabling accounts. (Deleting messages: routes-messages.ts.) Each change to a room is also a timeline
// event in its history and on its subscribers' sockets (docs/protocol.md).

import type { AuthService } from '../auth/auth-service.js';
import type { RoomsService } from '../chat/rooms-service.js';
import type { User } from '../store/users.js';
import type { Ctx, Route } from './http.js';
import { publicUser } from './routes-auth.js';
import { noContent, page } from './routes-chat.js';
import { cursorParam, decodeCursor, limitParam, nextCursor, refs, UUID_PATTERN } from './schemas.js';

const tags = ['moderation'];
const memberParams = { uuidParams: ['id', 'userId'] };
const refused = {
  403: { description: 'Your role is not high enough, or a direct room (FORBIDDEN, NOT_OWNER)' },
  404: { description: 'No such room (or hidden from you), or no such user or member' },
};

/** An account as an admin sees it. */
export const ADMIN_USER = {
  allOf: [refs.User],
  properties: { isAdmin: { type: 'boolean' }, disabledAt: { type: ['string', 'null'], format: 'date-time' } },
};
export const adminView = (u: User) => ({ ...publicUser(u), isAdmin: u.isAdmin, disabledAt: u.disabledAt });

export function moderationRoutes(rooms: RoomsService, auth: AuthService): Route[] {
  const roomParams = { uuidParams: ['id'] };
  const setDisabled = (disabled: boolean): Route => ({
    method: 'POST',
    path: `/api/v1/admin/users/:id/${disabled ? 'disable' : 'enable'}`,
    auth: true,
    admin: true,
    ...roomParams,
    summary: disabled ? 'Disable an account (admins)' : 'Enable a disabled account again (admins)',
    description: disabled
      ? 'Its sessions end at once on every node: its tokens are refused with 403 ACCOUNT_DISABLED and its WebSockets close with 4103. It cannot log in (by password or code) until enabled; its rooms, messages and robots stay. Disabling an account already disabled changes nothing; you cannot disable yourself (409).'
      : 'It can log in again (its old sessions stay ended).',
    tags,
    responses: {
      200: {
        description: 'The account',
        schema: {
          type: 'object',
          properties: {
            user: ADMIN_USER,
          },
        },
      },
      404: { description: 'No such user' },
      ...(disabled && { 409: { description: 'Your own account (CONFLICT)' } }),
    } as Route['responses'],
    async handle(ctx) {
      return { body: { user: adminView(await auth.setDisabled(ctx.user.id, ctx.params.id as string, disabled)) } };
    },
  });
  return [
    {
      method: 'PATCH',
      path: '/api/v1/rooms/:id',
      auth: true,
      ...roomParams,
      summary: 'Rename a group room, or turn its read receipts on or off (owner, moderators, admins)',
      description:
        "A new `name`: members see a `room_renamed` event in the room, in order with its messages. `receipts`: whether members see each other's read markers (`readSeq` in the member list; off by default; direct rooms always show them).",
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 100 }, receipts: { type: 'boolean' } },
      },
      responses: { 200: { description: 'The room as it is now', schema: { type: 'object', properties: { room: refs.Room } } }, ...refused },
      async handle(ctx: Ctx<{ name?: string; receipts?: boolean }>) {
        return { body: { room: await rooms.update(ctx.user, ctx.params.id as string, ctx.body) } };
      },
    },
    {
      method: 'PUT',
      path: '/api/v1/rooms/:id/read',
      auth: true,
      ...roomParams,
      summary: 'Move your read marker (members)',
      description:
        'Marks the room read up to `seq` (at most its `lastSeq`); a marker only moves forward, so a device behind another changes nothing. Your other sockets get a `read` frame; in a direct room the other person gets a `receipt` frame. Posting moves your marker to your message too. `GET /rooms` then shows `unread` and `mentions` from the new marker.',
      tags: ['rooms'],
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['seq'],
        properties: { seq: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
      },
      responses: {
        200: { description: 'The room with your read state', schema: { type: 'object', properties: { room: refs.Room } } },
        400: { description: "`seq` past the room's last seq (VALIDATION)" },
        403: { description: 'Not a member (NOT_MEMBER)' },
      },
      async handle(ctx: Ctx<{ seq: number }>) {
        return { body: { room: await rooms.markRead(ctx.user, ctx.params.id as string, ctx.body.seq) } };
      },
    },
    {
      method: 'PATCH',
      path: '/api/v1/rooms/:id/members/:userId',
      auth: true,
      ...memberParams,
      summary: "Change a member's role (owner, admins)",
      description:
        '`moderator`: may rename the room, remove and ban members, and delete messages. `member`: takes that back. The owner keeps their role. A `role_changed` event follows in the room.',
      tags,
      body: { type: 'object', additionalProperties: false, required: ['role'], properties: { role: { enum: ['moderator', 'member'] } } },
      responses: {
        200: {
          description: 'The member with their new role',
          schema: {
            type: 'object',
            properties: { member: { type: 'object', properties: { userId: { type: 'string' }, username: { type: 'string' }, role: { type: 'string' } } } },
          },
        },
        ...refused,
        409: { description: "The owner's role (CONFLICT)" },
      },
      async handle(ctx: Ctx<{ role: 'moderator' | 'member' }>) {
        return { body: { member: await rooms.setRole(ctx.user, ctx.params.id as string, ctx.params.userId as string, ctx.body.role) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/rooms/:id/members/:userId',
      auth: true,
      ...memberParams,
      summary: 'Remove a member (owner, moderators, admins)',
      description:
        'Only someone of a lower role: a moderator removes members, the owner (or an admin) removes moderators too; nobody removes the owner. Their subscriptions end after a `member_removed` event; they may join again (ban them to prevent that).',
      tags,
      responses: { ...noContent, ...refused },
      async handle(ctx) {
        await rooms.remove(ctx.user, ctx.params.id as string, ctx.params.userId as string, false);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/rooms/:id/bans',
      auth: true,
      ...roomParams,
      summary: 'Who is banned from a room (owner, moderators, admins)',
      tags,
      query: { type: 'object', properties: { limit: limitParam(100, 200), cursor: cursorParam } },
      responses: { 200: { description: 'A page of bans, by user id', schema: page({ bans: { type: 'array', items: refs.Ban } }) }, ...refused },
      async handle(ctx: Ctx<unknown, { limit: number; cursor?: string }>) {
        const cursor = decodeCursor(ctx.query.cursor, (k) => new RegExp(UUID_PATTERN).test(k));
        const bans = await rooms.bans(ctx.user, ctx.params.id as string, ctx.query.limit, cursor);
        return { body: { bans, nextCursor: nextCursor(bans, ctx.query.limit, (b) => b.userId) } };
      },
    },
    {
      method: 'PUT',
      path: '/api/v1/rooms/:id/bans/:userId',
      auth: true,
      ...memberParams,
      summary: 'Ban someone from a room (owner, moderators, admins)',
      description:
        'Removes them if they are a member (the same rule of rank as removing) and keeps them from joining again (403 BANNED) until the ban is lifted. A `member_banned` event follows in the room. Banning someone already banned changes nothing.',
      tags,
      responses: { ...noContent, ...refused },
      async handle(ctx) {
        await rooms.remove(ctx.user, ctx.params.id as string, ctx.params.userId as string, true);
        return { status: 204 };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/rooms/:id/bans/:userId',
      auth: true,
      ...memberParams,
      summary: 'Lift a ban (owner, moderators, admins)',
      tags,
      responses: { ...noContent, ...refused },
      async handle(ctx) {
        await rooms.unban(ctx.user, ctx.params.id as string, ctx.params.userId as string);
        return { status: 204 };
      },
    },
    setDisabled(true),
    setDisabled(false),
  ];
}
