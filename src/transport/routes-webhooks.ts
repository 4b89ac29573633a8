// Webhooks, as admins manage them: register an endpoint for events (its signing secret shown once),
// list and delete endpoints, and read an endpoint's delivery log.

import { checkHttpUrl } from '../auth/profile.js';
import { LOG_DAYS, MAX_ATTEMPTS, MAX_PENDING, MAX_WEBHOOKS, TIMEOUT_MS, type WebhooksService } from '../chat/webhooks-service.js';
import { WEBHOOK_EVENTS, type WebhookEvent } from '../store/webhooks.js';
import type { Ctx, Route } from './http.js';

const tags = ['Webhooks'];

const webhookSchema = {
  type: 'object',
  required: ['id', 'url', 'events', 'createdAt', 'disabledAt', 'disabledReason'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    url: { type: 'string', format: 'uri' },
    events: { type: 'array', items: { enum: [...WEBHOOK_EVENTS] } },
    createdBy: { type: ['string', 'null'], format: 'uuid' },
    createdAt: { type: 'string', format: 'date-time' },
    disabledAt: { type: ['string', 'null'], format: 'date-time', description: 'Set when its backlog passed the limit: nothing more is queued for it' },
    disabledReason: { type: ['string', 'null'] },
  },
};

export function webhookRoutes(webhooks: WebhooksService): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/admin/webhooks',
      auth: true,
      admin: true,
      summary: 'Register a webhook endpoint (admins)',
      description: `Each event of the types listed is POSTed to \`url\` as JSON \`{id, type, createdAt, data}\`, signed as Standard Webhooks specifies: \`webhook-id\` (the event id: the same on every retry, your idempotency key), \`webhook-timestamp\` (Unix seconds) and \`webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">\`, keyed with the base64-decoded part of the secret after \`whsec_\`. The secret is in this answer only. A 2xx answer within ${TIMEOUT_MS / 1000} s delivers; anything else is retried after 1, 2, 4... s (at most an hour apart), ${MAX_ATTEMPTS} attempts in all. Events of one room (or robot) are delivered one at a time, in order. At most ${MAX_WEBHOOKS} endpoints.`,
      tags,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['url', 'events'],
        properties: {
          url: { type: 'string', minLength: 1, maxLength: 2048, example: 'https://backend.example.com/hooks/switchboard' },
          events: { type: 'array', minItems: 1, maxItems: WEBHOOK_EVENTS.length, items: { enum: [...WEBHOOK_EVENTS] } },
        },
      },
      responses: {
        201: {
          description: 'Registered: the endpoint and its signing secret',
          schema: { type: 'object', properties: { webhook: webhookSchema, secret: { type: 'string' } } },
        },
        409: { description: `${MAX_WEBHOOKS} endpoints already (CONFLICT)` },
      },
      async handle(ctx: Ctx<{ url: string; events: WebhookEvent[] }>) {
        const { webhook, secret } = await webhooks.create(ctx.user.id, checkHttpUrl(ctx.body.url, 'url', 2048), ctx.body.events);
        ctx.log.info({ webhook: webhook.id, events: webhook.events }, 'webhook registered');
        return { status: 201, body: { webhook, secret } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/admin/webhooks',
      auth: true,
      admin: true,
      summary: 'List the webhook endpoints (admins)',
      tags,
      responses: {
        200: { description: 'Oldest first; never a secret', schema: { type: 'object', properties: { webhooks: { type: 'array', items: webhookSchema } } } },
      },
      async handle() {
        return { body: { webhooks: await webhooks.list() } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/admin/webhooks/:id',
      auth: true,
      admin: true,
      uuidParams: ['id'],
      summary: 'Delete a webhook endpoint and its deliveries (admins)',
      tags,
      responses: {
        204: { description: 'Deleted: nothing more is sent to it' },
        404: { description: 'No such webhook' },
      },
      async handle(ctx) {
        await webhooks.delete(ctx.params.id as string);
        ctx.log.info({ webhook: ctx.params.id }, 'webhook deleted');
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/admin/webhooks/:id/deliveries',
      auth: true,
      admin: true,
      uuidParams: ['id'],
      query: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 } } },
      summary: "A webhook endpoint's delivery log (admins)",
      description: `Newest first: each event's type and id, its attempts, the last answer's status or error, and its state (\`pending\` with \`nextAt\`, \`delivered\`, or \`failed\` after ${MAX_ATTEMPTS} attempts). Kept ${LOG_DAYS} days after they finish. An endpoint with more than ${MAX_PENDING} pending is disabled (\`disabledAt\`) by the hourly check: delete it and register it again.`,
      tags,
      responses: {
        200: {
          description: 'The deliveries',
          schema: {
            type: 'object',
            properties: {
              deliveries: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    id: { type: 'string' },
                    eventId: { type: 'string', format: 'uuid' },
                    type: { enum: [...WEBHOOK_EVENTS] },
                    createdAt: { type: 'string', format: 'date-time' },
                    attempts: { type: 'integer' },
                    state: { enum: ['pending', 'delivered', 'failed'] },
                    deliveredAt: { type: ['string', 'null'], format: 'date-time' },
                    nextAt: { type: ['string', 'null'], format: 'date-time' },
                    lastStatus: { type: ['integer', 'null'] },
                    lastError: { type: ['string', 'null'] },
                  },
                },
              },
            },
          },
        },
        404: { description: 'No such webhook' },
      },
      async handle(ctx: Ctx<unknown, { limit: number }>) {
        return { body: { deliveries: await webhooks.deliveries(ctx.params.id as string, ctx.query.limit) } };
      },
    },
  ];
}
