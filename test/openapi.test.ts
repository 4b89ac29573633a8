// The OpenAPI document against the live server: every public route is documented, every documented
// operation is served, each operation is complete, every $ref resolves, and /docs renders it.

import { randomUUID } from 'node:crypto';
import t from 'tap';
import { Api, type ApiResponse, uniqueName } from './helpers/api.js';
import { startTestHub } from './helpers/hub.js';

const hub = await startTestHub(t, { env: { SB_ARGON2_MEMORY_KIB: '8192', SB_ARGON2_TIME_COST: '1' } });
const api = new Api(hub.url);
const res = await api.get('/api/openapi.json');
const doc = res.body;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

interface Operation {
  summary?: string;
  operationId?: string;
  parameters?: { name: string; in: string }[];
  responses?: Record<string, { description?: string }>;
  security?: Record<string, string[]>[];
}

/** Every documented operation as [path, method, operation]. */
const operations: [string, string, Operation][] = Object.entries((doc?.paths ?? {}) as Record<string, Record<string, Operation>>).flatMap(([path, ops]) =>
  Object.entries(ops)
    .filter(([m]) => METHODS.includes(m))
    .map(([m, op]): [string, string, Operation] => [path, m, op]),
);
const toOpenApi = (path: string) => path.replace(/:([A-Za-z]+)/g, '{$1}');
const routes = hub.router.list();
const routeOf = (path: string, method: string) => routes.find((r) => toOpenApi(r.path) === path && r.method.toLowerCase() === method);

/** A request the router did not route: no such path (404 "no route ...") or not that method (405). */
const isRouteMiss = (r: ApiResponse) => r.status === 405 || (r.status === 404 && /^no route/.test(r.body?.error?.message ?? ''));

t.test('the document is OpenAPI 3.1.0 JSON', async (t) => {
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^application\/json/);
  t.equal(doc.openapi, '3.1.0');
  t.type(doc.info?.title, 'string');
  t.type(doc.info?.version, 'string');
  t.type(doc.paths, 'object');
  t.ok(operations.length >= 15, `documents the API (${operations.length} operations)`);
});

t.test('every public route is documented, and nothing else', async (t) => {
  const shown = routes.filter((r) => !r.internal);
  for (const r of shown) {
    t.ok(doc.paths[toOpenApi(r.path)]?.[r.method.toLowerCase()], `${r.method} ${r.path} is in paths`);
  }
  t.equal(operations.length, shown.length, 'one operation per public route');
  for (const r of routes.filter((r) => r.internal)) {
    t.notOk(doc.paths[toOpenApi(r.path)]?.[r.method.toLowerCase()], `internal ${r.method} ${r.path} is left out`);
  }
  for (const [path, method] of operations) t.ok(routeOf(path, method), `${method.toUpperCase()} ${path} is a route`);
});

t.test('every documented operation is served by the live server', async (t) => {
  const user = await api.signUp(uniqueName('oa'));
  // The probe itself must tell a miss from a hit.
  t.ok(isRouteMiss(await api.get('/api/v1/no-such-thing', { token: user.token })), 'an unknown path is a route miss');
  t.ok(isRouteMiss(await api.request('PUT', '/healthz')), 'an unknown method is a route miss');
  t.notOk(isRouteMiss(await api.get(`/api/v1/rooms/${randomUUID()}`, { token: user.token })), 'a missing room is not');

  for (const [path, method] of operations) {
    const url = path.replace(/\{[^}]+\}/g, () => randomUUID());
    const r = await api.request(method.toUpperCase(), url, undefined, { token: user.token });
    t.notOk(isRouteMiss(r), `${method.toUpperCase()} ${url} is routed: ${r.status} ${r.text.slice(0, 200)}`);
    t.ok(r.status < 500, `${method.toUpperCase()} ${path} answered without an internal error (${r.status})`);
  }
});

t.test('every operation is complete', async (t) => {
  const ids = new Set<string>();
  for (const [path, method, op] of operations) {
    const name = `${method.toUpperCase()} ${path}`;
    const route = routeOf(path, method);
    const codes = Object.keys(op.responses ?? {});
    t.ok(typeof op.summary === 'string' && op.summary.length > 0, `${name}: summary`);
    t.ok(
      codes.some((c) => /^2\d\d$/.test(c)),
      `${name}: a 2xx response`,
    );
    t.ok(codes.includes('500'), `${name}: a 500 response`);
    for (const c of codes) t.type(op.responses?.[c]?.description, 'string', `${name} ${c}: description`);
    if (route?.auth) {
      t.ok(codes.includes('401'), `${name}: authenticated, so 401 is declared`);
      t.ok((op.security ?? []).length > 0, `${name}: security requirement`);
    } else if (route?.apiKey) {
      t.ok(codes.includes('401') && codes.includes('403'), `${name}: a server API route declares 401 and 403`);
      t.same(op.security, [{ serverKey: [route.apiKey] }], `${name}: an API key with its scope`);
    } else {
      t.same(op.security, [], `${name}: public`);
    }
    if (route?.body)
      t.ok(
        ['400', '413', '415'].every((c) => codes.includes(c)),
        `${name}: takes a body, so 400, 413 and 415 are declared`,
      );
    for (const [, p] of path.matchAll(/\{([^}]+)\}/g)) {
      t.ok(
        op.parameters?.some((x) => x.in === 'path' && x.name === p),
        `${name}: path parameter ${p} declared`,
      );
    }
    t.type(op.operationId, 'string', `${name}: operationId`);
    t.notOk(ids.has(op.operationId as string), `${name}: operationId is unique`);
    ids.add(op.operationId as string);
  }
});

t.test('every $ref resolves to a defined component', async (t) => {
  const refs: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === '$ref' && typeof x === 'string') refs.push(x);
        else walk(x);
      }
    }
  };
  walk(doc);
  t.ok(refs.length > 0, 'the document uses $refs');
  const resolve = (ref: string): unknown =>
    ref
      .slice(2)
      .split('/')
      .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
      .reduce<unknown>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), doc);
  for (const ref of new Set(refs)) {
    t.match(ref, /^#\/components\//, `${ref} is local`);
    const target = resolve(ref);
    t.ok(target !== null && typeof target === 'object', `${ref} resolves`);
  }
});

t.test('/docs renders the document', async (t) => {
  const page = await api.get('/docs');
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.match(page.text, /<html/i);
  t.match(page.text, /<script type="module" crossorigin src="\/assets\/docs-[\w-]+\.js">/, 'Swagger UI, bundled (console-docs.test.ts runs it in Chromium)');
});
