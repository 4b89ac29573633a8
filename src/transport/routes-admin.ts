// What the console's operators view reads (admins only): every node of the cluster with its
// figures, and the accounts with their disabled state. (Disabling: routes-moderation.ts; API keys
// and webhooks: routes-server.ts, routes-webhooks.ts.)

import { USERNAME_RE } from '../auth/auth-service.js';
import { EMAIL_MAX } from '../auth/email-auth.js';
import { WAIT_MS } from '../cluster/ask.js';
import type { Store } from '../store/store.js';
import type { Ctx, Route } from './http.js';
import { page } from './routes-chat.js';
import { ADMIN_USER, adminView } from './routes-moderation.js';
import { cursorParam, decodeCursor, limitParam, nextCursor } from './schemas.js';

const tags = ['Administration'];
const num = (description: string) => ({ type: 'number', description });

const NODE = {
  type: 'object',
  properties: {
    node: { type: 'string', description: 'The node id (SB_NODE_ID)' },
    url: { type: 'string', description: 'Where the node listens' },
    startedAt: num('When it started, ms since the epoch'),
    version: { type: 'string' },
    ready: { type: 'boolean', description: 'What its /readyz says' },
    at: num('When it answered, ms since the epoch (its clock)'),
    connections: num('Open WebSockets'),
    robots: num('Connected robots'),
    actors: num('Live room and robot actors'),
    mailboxMax: num('The deepest actor mailbox'),
    published: num('Messages it made durable since it started'),
    deliveries: num('Frames it handed to subscribers since it started'),
    framesIn: num('WebSocket frames received since it started'),
    framesOut: num('WebSocket frames sent since it started'),
    httpRequests: num('HTTP requests answered since it started'),
    commits: num('Group commits since it started'),
    commitSeconds: num('Seconds those commits took in all'),
    rssBytes: num('Resident memory'),
    cpuSeconds: num('CPU time used since it started'),
  },
};

export function adminRoutes(deps: { store: Store; nodes(): Promise<{ nodes: unknown[]; partial: boolean }> }): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/admin/nodes',
      auth: true,
      admin: true,
      summary: 'The nodes of the cluster, each with its figures (admins)',
      description: `Every live node is asked at once and answers for itself: this node first, then the others. One that does not answer within ${WAIT_MS} ms is left out, and \`partial\` says so. Counters run since each node started: two answers some seconds apart give the rates.`,
      tags,
      responses: {
        200: {
          description: 'The nodes',
          schema: { type: 'object', properties: { nodes: { type: 'array', items: NODE }, partial: { type: 'boolean' } } },
        },
      },
      handle: async () => ({ body: await deps.nodes() }),
    },
    {
      method: 'GET',
      path: '/api/v1/admin/users',
      auth: true,
      admin: true,
      summary: 'Find accounts, with whether they are disabled (admins)',
      description: 'The search of `GET /api/v1/users` (you included), each account as an admin sees it.',
      tags,
      query: {
        type: 'object',
        properties: { q: { type: 'string', maxLength: EMAIL_MAX, default: '' }, limit: limitParam(20, 100), cursor: cursorParam },
      },
      responses: { 200: { description: 'A page of accounts, by username', schema: page({ users: { type: 'array', items: ADMIN_USER } }) } },
      async handle(ctx: Ctx<unknown, { q: string; limit: number; cursor?: string }>) {
        const after = decodeCursor(ctx.query.cursor, (k) => USERNAME_RE.test(k));
        const found = await deps.store.users.search(ctx.query.q, ctx.query.limit, after);
        return { body: { users: found.map(adminView), nextCursor: nextCursor(found, ctx.query.limit, (u) => u.username.toLowerCase()) } };
      },
    },
  ];
}
