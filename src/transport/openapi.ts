// Builds the OpenAPI 3.1 document from the route table, so the document cannot list a route the
// server lacks or miss one it has. Error responses every route can give are added here.

import type { Route } from './http.js';
import { components, refs } from './schemas.js';
import type { Schema } from './validate.js';

export function openApiDocument(routes: readonly Route[], version: string): Schema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (r.internal) continue;
    const oaPath = r.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters: Schema[] = [];
    for (const m of r.path.matchAll(/:([A-Za-z]+)/g)) {
      parameters.push({ name: m[1], in: 'path', required: true, schema: { type: 'string', format: 'uuid' } });
    }
    const q = (r.query?.properties ?? {}) as Record<string, Schema>;
    const required = (r.query?.required ?? []) as string[];
    for (const [name, schema] of Object.entries(q)) {
      const { description, ...rest } = schema;
      parameters.push({ name, in: 'query', required: required.includes(name), description, schema: rest });
    }
    const responses: Record<string, unknown> = {};
    for (const [code, doc] of Object.entries(r.responses)) {
      const isError = Number(code) >= 400;
      const schema = doc.schema ?? (isError ? refs.Error : undefined);
      responses[code] = { description: doc.description, ...(schema ? { content: { 'application/json': { schema } } } : {}) };
    }
    // A streamed upload's body is the file itself, of the type it declares.
    const requestBody = r.streamBody ? { requestBody: { required: true, content: { '*/*': { schema: { type: 'string', format: 'binary' } } } } } : {};
    const err = (code: number, description: string) => {
      responses[code] ??= { description, content: { 'application/json': { schema: refs.Error } } };
    };
    if (r.body || r.query) err(400, 'Malformed or invalid input (BAD_JSON, VALIDATION; `field` names the culprit)');
    if (r.auth) err(401, 'Missing, expired or invalid access token');
    if (r.admin)
      err(403, r.method === 'GET' ? 'Not an admin (FORBIDDEN)' : 'Not an admin (FORBIDDEN), or a cookie session without a valid X-CSRF-Token (CSRF)');
    if (r.auth && r.method !== 'GET') err(403, 'Cookie session without a valid X-CSRF-Token (CSRF)');
    if (r.uuidParams?.length) err(404, 'No such resource');
    if (r.body) {
      err(413, 'Body larger than SB_MAX_BODY_BYTES');
      err(415, 'Body not sent as application/json');
    }
    err(500, 'Internal error (the message carries a request id)');
    paths[oaPath] ??= {};
    (paths[oaPath] as Record<string, unknown>)[r.method.toLowerCase()] = {
      operationId: `${r.method.toLowerCase()}${r.path.replace(/\/api\/v1/, '').replace(/[/:.-]+(\w)/g, (_, c: string) => c.toUpperCase())}`,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: r.tags,
      ...(parameters.length ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: !r.bodyOptional, content: { 'application/json': { schema: r.body } } } } : requestBody),
      responses,
      ...(r.auth ? { security: [{ bearer: [] }, { cookie: [] }] } : r.apiKey ? { security: [{ serverKey: [r.apiKey] }] } : { security: [] }),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchboard',
      version,
      description: 'REST API of the Switchboard realtime hub. Errors always have the shape `{"error":{"code","message"}}`.',
    },
    servers: [{ url: '/' }],
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        cookie: { type: 'apiKey', in: 'cookie', name: 'sb_access', description: 'Browser sessions; state-changing requests also need X-CSRF-Token' },
        serverKey: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'sbk_...',
          description: 'A server API key (POST /api/v1/admin/api-keys), granting the scope each route names: publish, presence, users, rooms',
        },
      },
    },
    paths,
  };
}
