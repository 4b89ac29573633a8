// /api/v1/contacts and /api/v1/blocks: friend requests, contacts and blocks. Each change is also a
// `contact` frame on the WebSockets of both people (docs/protocol.md).

import { USERNAME_RE } from '../auth/auth-service.js';
import type { ContactsService } from '../chat/contacts-service.js';
import type { ContactEntry, ContactList } from '../store/contacts.js';
import type { Ctx, Route } from './http.js';
import { publicUser } from './routes-auth.js';
import { noContent, page } from './routes-chat.js';
import { cursorParam, decodeCursor, limitParam, nextCursor, refs, UUID_PATTERN } from './schemas.js';

const entry = { type: 'object', required: ['user', 'since'], properties: { user: refs.User, since: { type: 'string', format: 'date-time' } } };
const entries = (name: string) => page({ [name]: { type: 'array', items: entry } });
const userParam = { uuidParams: ['userId'] };
const tags = ['contacts'];
const notFoundDoc = (what: string) => ({ 404: { description: `No such user, or no such ${what}` } });

export function peopleRoutes(contacts: ContactsService): Route[] {
  const listed = async (ctx: Ctx<unknown, { limit: number; cursor?: string }>, which: ContactList, name: string) => {
    const after = decodeCursor(ctx.query.cursor, (k) => USERNAME_RE.test(k));
    const found = await contacts.list(ctx.user.id, which, ctx.query.limit, after);
    return {
      body: {
        [name]: found.map((e: ContactEntry) => ({ user: publicUser(e.user), since: e.since })),
        nextCursor: nextCursor(found, ctx.query.limit, (e) => e.user.username.toLowerCase()),
      },
    };
  };
  const paging = { type: 'object', properties: { limit: limitParam(50, 200), cursor: cursorParam } };
  const me = (ctx: Ctx) => ({ id: ctx.user.id, username: ctx.user.username });
  return [
    {
      method: 'GET',
      path: '/api/v1/contacts',
      auth: true,
      summary: 'Your contacts',
      description: 'People who accepted your request, or whose request you accepted, by username; `since` is when.',
      tags,
      query: paging,
      responses: { 200: { description: 'A page of contacts', schema: entries('contacts') } },
      handle: (ctx: Ctx<unknown, { limit: number; cursor?: string }>) => listed(ctx, 'contacts', 'contacts'),
    },
    {
      method: 'DELETE',
      path: '/api/v1/contacts/:userId',
      auth: true,
      ...userParam,
      summary: 'Remove a contact',
      tags,
      responses: { ...noContent, ...notFoundDoc('contact') },
      async handle(ctx) {
        await contacts.remove(me(ctx), ctx.params.userId as string);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/contacts/requests',
      auth: true,
      summary: 'Contact requests to you, or from you',
      tags,
      query: { ...paging, properties: { ...paging.properties, direction: { enum: ['incoming', 'outgoing'], default: 'incoming' } } },
      responses: { 200: { description: 'A page of requests, by username', schema: entries('requests') } },
      handle: (ctx: Ctx<unknown, { limit: number; cursor?: string; direction: 'incoming' | 'outgoing' }>) => listed(ctx, ctx.query.direction, 'requests'),
    },
    {
      method: 'POST',
      path: '/api/v1/contacts/requests',
      auth: true,
      summary: 'Ask someone to be a contact',
      description:
        'A new request is 201 `{"status": "requested"}`. If they had already asked you, you become contacts at once: 200 `{"status": "accepted"}`. Already contacts, or already asked: 409 CONFLICT. Either of you has blocked the other: 403 FORBIDDEN.',
      tags,
      body: { type: 'object', additionalProperties: false, required: ['userId'], properties: { userId: { type: 'string', pattern: UUID_PATTERN } } },
      responses: {
        200: { description: 'Contacts now', schema: { type: 'object', properties: { status: { const: 'accepted' } } } },
        201: { description: 'Asked', schema: { type: 'object', properties: { status: { const: 'requested' } } } },
        403: { description: 'A block between you (FORBIDDEN)' },
        409: { description: 'Already contacts, or already asked (CONFLICT)' },
      },
      async handle(ctx: Ctx<{ userId: string }>) {
        const status = await contacts.request(me(ctx), ctx.body.userId);
        return { status: status === 'requested' ? 201 : 200, body: { status } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/contacts/requests/:userId/accept',
      auth: true,
      ...userParam,
      summary: 'Accept a contact request',
      tags,
      responses: { ...noContent, ...notFoundDoc('request from them') },
      async handle(ctx) {
        await contacts.accept(me(ctx), ctx.params.userId as string);
        return { status: 204 };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/contacts/requests/:userId',
      auth: true,
      ...userParam,
      summary: 'Cancel your request to them, or decline theirs',
      tags,
      responses: { ...noContent, ...notFoundDoc('request between you') },
      async handle(ctx) {
        await contacts.dropRequest(me(ctx), ctx.params.userId as string);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/blocks',
      auth: true,
      summary: 'People you blocked',
      tags,
      query: paging,
      responses: { 200: { description: 'A page of blocks, by username', schema: entries('blocks') } },
      handle: (ctx: Ctx<unknown, { limit: number; cursor?: string }>) => listed(ctx, 'blocked', 'blocks'),
    },
    {
      method: 'PUT',
      path: '/api/v1/blocks/:userId',
      auth: true,
      ...userParam,
      summary: 'Block someone',
      description:
        'Ends any contact or request between you. They cannot open a direct room with you, post to one you share (nor can you), or find you in search. They are not told; a contact or request of theirs just ends. Blocking twice is a no-op.',
      tags,
      responses: { ...noContent, ...notFoundDoc('user') },
      async handle(ctx) {
        await contacts.block(me(ctx), ctx.params.userId as string);
        return { status: 204 };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/blocks/:userId',
      auth: true,
      ...userParam,
      summary: 'Unblock someone',
      tags,
      responses: { ...noContent, ...notFoundDoc('block') },
      async handle(ctx) {
        await contacts.unblock(me(ctx), ctx.params.userId as string);
        return { status: 204 };
      },
    },
  ];
}
