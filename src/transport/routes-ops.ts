// Operational endpoints: liveness, readiness, the JWKS, the OpenAPI document and its docs page,
// and the web console's files.

import type { SigningKey } from '../auth/keys.js';
import { notFound, SbError } from '../errors.js';
import { ConsoleFiles } from './console-files.js';
import type { Route } from './http.js';

export function opsRoutes(deps: {
  ready(): Promise<{ ok: boolean; detail: Record<string, unknown> }>;
  key: SigningKey;
  openapi(): unknown;
  metrics(): Promise<{ contentType: string; data: string }>;
  console?: ConsoleFiles;
}): Route[] {
  const tags = ['operations'];
  const files = deps.console ?? new ConsoleFiles();
  const page = (name: string, acceptEncoding: string | undefined) => {
    const reply = files.reply(name, acceptEncoding);
    if (!reply) throw new SbError('UNAVAILABLE', 'the web console is not built: `npm run build` builds it into dist/console');
    return reply;
  };
  const status = { type: 'object', properties: { status: { type: 'string' } } };
  return [
    {
      method: 'GET',
      path: '/healthz',
      auth: false,
      summary: 'Liveness: the process is serving',
      tags,
      responses: { 200: { description: 'Alive', schema: status } },
      handle: () => ({ body: { status: 'ok' } }),
    },
    {
      method: 'GET',
      path: '/readyz',
      auth: false,
      summary: 'Readiness: the store answers and its schema is current; 503 while starting or shutting down',
      tags,
      responses: { 200: { description: 'Ready', schema: status }, 503: { description: 'Not ready', schema: status } },
      async handle() {
        const r = await deps.ready();
        return { status: r.ok ? 200 : 503, body: { status: r.ok ? 'ready' : 'unavailable', ...r.detail } };
      },
    },
    {
      method: 'GET',
      path: '/.well-known/jwks.json',
      auth: false,
      summary: 'Public keys that verify access tokens (JWKS)',
      tags,
      responses: { 200: { description: 'JSON Web Key Set', schema: { type: 'object', properties: { keys: { type: 'array' } } } } },
      handle: () => ({ body: deps.key.jwks, headers: { 'cache-control': 'public, max-age=300' } }),
    },
    {
      method: 'GET',
      path: '/api/openapi.json',
      auth: false,
      summary: 'This OpenAPI 3.1 document',
      tags,
      responses: { 200: { description: 'OpenAPI document', schema: { type: 'object' } } },
      handle: () => ({ body: deps.openapi() }),
    },
    {
      method: 'GET',
      path: '/docs',
      auth: false,
      internal: true,
      summary: 'API reference page',
      tags,
      responses: { 200: { description: 'HTML' }, 503: { description: 'The console was not built' } },
      handle: (ctx) => page('docs.html', ctx.headers['accept-encoding']),
    },
    {
      method: 'GET',
      path: '/metrics',
      auth: false,
      internal: true,
      summary: 'Prometheus metrics',
      tags,
      responses: { 200: { description: 'Prometheus text exposition format' } },
      handle: async () => ({ raw: await deps.metrics() }),
    },
    {
      method: 'GET',
      path: '/',
      auth: false,
      internal: true,
      summary: 'The web console',
      tags,
      responses: { 200: { description: 'HTML' }, 503: { description: 'The console was not built' } },
      handle: (ctx) => page('index.html', ctx.headers['accept-encoding']),
    },
    {
      method: 'GET',
      path: '/assets/:file',
      auth: false,
      internal: true,
      summary: "A file of the web console's build",
      tags,
      responses: { 200: { description: 'The file, cached for a year (its name holds its hash)' }, 404: { description: 'No such file' } },
      handle: (ctx) => {
        const reply = files.reply(`assets/${ctx.params.file}`, ctx.headers['accept-encoding']);
        if (!reply) throw notFound('file');
        return reply;
      },
    },
  ];
}
