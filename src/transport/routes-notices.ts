// A person's own stream over REST (the same as the WebSocket's `feed`), and their notification
// level per room. docs/protocol.md describes the notices themselves.

import type { NoticesService } from '../chat/notices-service.js';
import type { NotifyLevel } from '../protocol/frames.js';
import type { Ctx, Route } from './http.js';

const tags = ['notices'];

const notice = {
  type: 'object',
  required: ['t', 'n'],
  description:
    'A numbered frame of your stream, as the WebSocket sends it: `notice` (kind `room_added`, `room_removed`, `role_changed` or `notify`), `read` or `contact` (docs/protocol.md)',
  properties: { t: { enum: ['notice', 'read', 'contact'] }, n: { type: 'integer', minimum: 1 }, kind: { type: 'string' } },
};

export function noticeRoutes(notices: NoticesService): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/notices',
      auth: true,
      summary: 'Catch up on your own stream',
      description:
        "What concerns you outside the rooms you watch, numbered 1, 2, 3... per person: the notices after `since` (your device's last `n`; leave it out on a device that has none, to learn where the stream stands), at most 100 (then `more`: ask again after the last), and the rooms you have unread messages in (at most 200, most unread first; messages themselves are not numbered notices). `reset`: some after `since` were pruned (`SB_NOTICE_RETENTION_DAYS`), or `since` is past `n` (not this stream's number): reload rooms and contacts, then go on from `n`. The same as the WebSocket's `feed` request.",
      tags,
      query: { type: 'object', properties: { since: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } } },
      responses: {
        200: {
          description: 'Your stream after `since`',
          schema: {
            type: 'object',
            required: ['n', 'notices', 'unread'],
            properties: {
              n: { type: 'integer', description: "Your stream's last number: resume after it next time" },
              notices: { type: 'array', items: notice },
              more: { type: 'boolean', description: 'More notices follow: ask again with `since` the last one' },
              reset: { type: 'boolean', description: 'Notices after `since` were pruned' },
              unread: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['room', 'seq', 'unread', 'mentions'],
                  properties: {
                    room: { type: 'string', format: 'uuid' },
                    seq: { type: 'integer', description: "The room's last seq" },
                    unread: { type: 'integer' },
                    mentions: { type: 'integer' },
                  },
                },
              },
            },
          },
        },
      },
      async handle(ctx: Ctx<unknown, { since?: number }>) {
        return { body: await notices.feed(ctx.user.id, ctx.query.since) };
      },
    },
    {
      method: 'PUT',
      path: '/api/v1/rooms/:id/notifications',
      auth: true,
      uuidParams: ['id'],
      summary: 'Set your notification level in a room (members)',
      description:
        '`all` (the default): a `notice` for new messages; `mentions`: only for messages that mention you (`@username`); `muted`: none. Unread counts go on counting either way. Your other devices get a `notice` of kind `notify`.',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['level'],
        properties: { level: { enum: ['all', 'mentions', 'muted'] } },
      },
      responses: {
        200: { description: 'Your level now', schema: { type: 'object', properties: { level: { enum: ['all', 'mentions', 'muted'] } } } },
        403: { description: 'Not a member (NOT_MEMBER)' },
        404: { description: 'No such room (or hidden from you)' },
      },
      async handle(ctx: Ctx<{ level: NotifyLevel }>) {
        await notices.setLevel(ctx.user, ctx.params.id as string, ctx.body.level);
        return { body: { level: ctx.body.level } };
      },
    },
  ];
}
