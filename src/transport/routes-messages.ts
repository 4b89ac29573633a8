// A posted message, after posting: its sender edits it, its sender or a moderator deletes it, and
// members react to it. Each change is a timeline event in the room's order (docs/protocol.md).

import type { PublishBudget } from '../chat/publish-budget.js';
import { MAX_EMOJI_PER_MESSAGE, type RoomsService } from '../chat/rooms-service.js';
import { notFound } from '../errors.js';
import type { Ctx, Route } from './http.js';
import { noContent } from './routes-chat.js';
import { refs } from './schemas.js';

const tags = ['rooms'];
const SEQ_RE = /^[1-9][0-9]{0,15}$/;
const overBudget = { 429: { description: 'Over your publish budget, shared with posts (RATE_LIMITED)' } };
const refused = {
  403: { description: 'Not allowed: not a member, not the sender, past the edit window, or not a moderator (NOT_MEMBER, FORBIDDEN)' },
  404: { description: 'No such room (or hidden from you), or no message at that seq' },
};

/** The `:seq` of the path: a positive safe integer, or 404 (like any other path that names nothing). */
function seqOf(ctx: Ctx<unknown, unknown>): number {
  const raw = ctx.params.seq as string;
  if (!SEQ_RE.test(raw) || !Number.isSafeInteger(Number(raw))) throw notFound('message');
  return Number(raw);
}

/** Edits and reactions each take a seq in the room's log: they spend the sender's publish budget, as posts do. */
export function messageRoutes(rooms: RoomsService, publishBudget: PublishBudget): Route[] {
  const message = '/api/v1/rooms/:id/messages/:seq';
  const reaction = `${message}/reactions/:emoji`;
  const reactionDoc = {
    ...refused,
    409: { description: `The message was deleted, is a timeline event, or already has ${MAX_EMOJI_PER_MESSAGE} different reactions (CONFLICT)` },
  };
  const react = (add: boolean): Route => ({
    method: add ? 'PUT' : 'DELETE',
    path: reaction,
    auth: true,
    uuidParams: ['id'],
    summary: add ? 'React to a message (members)' : 'Take your reaction back',
    description: add
      ? `\`:emoji\` is one emoji (URL-encoded) or a \`:short_code:\`. Each person reacts once per emoji; a message takes at most ${MAX_EMOJI_PER_MESSAGE} different ones. A \`reaction_added\` event follows in the room; history lists each message's reactions with counts. Reacting twice is a no-op.`
      : 'A `reaction_removed` event follows in the room. Removing a reaction you have not made is a no-op.',
    tags,
    responses: { ...noContent, 400: { description: 'Not an emoji (VALIDATION, field emoji)' }, ...reactionDoc, ...overBudget },
    async handle(ctx) {
      publishBudget.take(ctx.user.id);
      await rooms.react(ctx.user, ctx.params.id as string, seqOf(ctx), ctx.params.emoji as string, add);
      return { status: 204 };
    },
  });
  return [
    {
      method: 'PATCH',
      path: message,
      auth: true,
      uuidParams: ['id'],
      summary: 'Edit your message (its sender, within SB_EDIT_WINDOW_S)',
      description:
        'History then shows the new text with `editedAt`; a `message_edited` event carrying it follows in the room, live and on resume. The same text again changes nothing.',
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['body'],
        properties: { body: { type: 'string', minLength: 1, description: 'The new text (size limit: SB_MAX_MESSAGE_BYTES)' } },
      },
      responses: {
        200: { description: 'The message as it is now', schema: { type: 'object', properties: { message: refs.Message } } },
        ...refused,
        409: { description: 'The message was deleted, or is a timeline event (CONFLICT)' },
        413: { description: 'The new text is over SB_MAX_MESSAGE_BYTES (PAYLOAD_TOO_LARGE)' },
        ...overBudget,
      },
      async handle(ctx: Ctx<{ body: string }>) {
        publishBudget.take(ctx.user.id);
        return { body: { message: await rooms.editMessage(ctx.user, ctx.params.id as string, seqOf(ctx), ctx.body.body) } };
      },
    },
    {
      method: 'DELETE',
      path: message,
      auth: true,
      uuidParams: ['id'],
      summary: 'Delete a message (its sender within SB_EDIT_WINDOW_S; the owner, moderators and admins at any time)',
      description:
        'The message stays in history as a tombstone: same seq, sender and time, an empty body and `deletedAt` (its reactions and earlier texts go). A `message_deleted` event naming its seq follows in the room, live and on resume. Deleting a deleted message changes nothing; timeline events cannot be deleted (409).',
      tags,
      responses: { ...noContent, ...refused, 409: { description: 'A timeline event (CONFLICT)' } },
      async handle(ctx) {
        await rooms.deleteMessage(ctx.user, ctx.params.id as string, seqOf(ctx));
        return { status: 204 };
      },
    },
    react(true),
    react(false),
  ];
}
