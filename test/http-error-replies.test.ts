// How the REST layer answers each kind of failure, from the error alone: the runtime's refusals are
// 503 OVERLOADED / 504 TIMEOUT with Retry-After, an unreachable store 503 UNAVAILABLE, a driver
// error that escaped the store (a bug) a 500 INTERNAL. Runs the real router on uWS, port 0.

import t from 'tap';
import { ActorLimitError, AskTimeoutError, MailboxFullError } from '../src/actors/runtime.js';
import { ERROR_CODES, type ErrorCode, SbError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { StoreUnavailableError } from '../src/store/errors.js';
import { HttpRouter, type Route, STATUS_TEXT } from '../src/transport/http.js';
import { listenExclusive, uWS } from '../src/transport/uws.js';

const failures: Record<string, () => unknown> = {
  mailbox: () => new MailboxFullError('room', 'r1', 1000),
  limit: () => new ActorLimitError('room', 'r1', 100),
  ask: () => new AskTimeoutError('room', 'r1', 5000),
  store: () => new StoreUnavailableError({ cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }),
  driver: () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
};

const routes: Route[] = Object.entries(failures).map(([name, make]) => ({
  method: 'GET',
  path: `/fail/${name}`,
  auth: false,
  summary: name,
  tags: [],
  responses: {},
  handle: () => {
    throw make();
  },
}));

const app = uWS.App();
new HttpRouter({
  log: createLogger('silent'),
  maxBodyBytes: 1024,
  corsOrigins: [],
  trustProxy: false,
  verifyAccess: () => Promise.reject(new SbError('TOKEN_INVALID', 'no tokens here')),
  verifyApiKey: () => Promise.resolve(undefined),
})
  .add(...routes)
  .mount(app);
const socket = await listenExclusive(app, '127.0.0.1', 0);
if (!socket) throw new Error('could not listen');
t.teardown(() => uWS.us_listen_socket_close(socket));
const base = `http://127.0.0.1:${uWS.us_socket_local_port(socket as never)}`;

async function get(name: string) {
  const r = await fetch(`${base}/fail/${name}`);
  return { status: r.status, statusText: r.statusText, retryAfter: r.headers.get('retry-after'), body: (await r.json()) as { error: { code: ErrorCode } } };
}

t.test('a full mailbox or the actor cap: 503 OVERLOADED, Retry-After 1', async (t) => {
  for (const name of ['mailbox', 'limit']) {
    const r = await get(name);
    t.equal(r.status, 503, name);
    t.equal(r.body.error.code, 'OVERLOADED', name);
    t.equal(r.retryAfter, '1', name);
  }
});

t.test('an ask timeout: 504 TIMEOUT, Retry-After 1', async (t) => {
  const r = await get('ask');
  t.equal(r.status, 504);
  t.equal(r.statusText, 'Gateway Timeout');
  t.equal(r.body.error.code, 'TIMEOUT');
  t.equal(r.retryAfter, '1');
});

t.test('the store unreachable: 503 UNAVAILABLE, Retry-After 5, without the driver’s words', async (t) => {
  const r = await get('store');
  t.equal(r.status, 503);
  t.equal(r.body.error.code, 'UNAVAILABLE');
  t.equal(r.retryAfter, '5');
  t.notMatch(JSON.stringify(r.body), /ECONNREFUSED/);
});

t.test('a driver error the store did not translate is a bug: 500 INTERNAL', async (t) => {
  const r = await get('driver');
  t.equal(r.status, 500);
  t.equal(r.body.error.code, 'INTERNAL');
  t.equal(r.retryAfter, null);
  t.notMatch(JSON.stringify(r.body), /ECONNREFUSED/);
});

t.test('every status of the code table has a reason phrase', async (t) => {
  for (const [code, spec] of Object.entries(ERROR_CODES)) t.ok(STATUS_TEXT[spec.http], `${code}: ${spec.http}`);
});
