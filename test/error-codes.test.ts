// The one code table: every code has an HTTP status and a WebSocket meaning, SbError takes its
// status from it, the runtime's refusals are SbErrors with the codes clients see, and
// docs/protocol.md lists exactly the codes of the table with the same status and meaning.

import { readFile } from 'node:fs/promises';
import t from 'tap';
import { ActorLimitError, ActorStoppedError, AskTimeoutError, MailboxFullError } from '../src/actors/runtime.js';
import { RETRYABLE_PUBLISH_CODES } from '../src/client/errors.js';
import { ERROR_CODES, type ErrorCode, httpStatus, isErrorCode, RateLimitedError, SbError } from '../src/errors.js';
import type { ErrorFrame, NackFrame } from '../src/protocol/frames.js';
import { StoreUnavailableError } from '../src/store/errors.js';
import { FrameError } from '../src/transport/ws-frames.js';

const codes = Object.keys(ERROR_CODES) as ErrorCode[];

t.test('every code has an HTTP status and a WebSocket meaning; httpStatus is derived from the table', async (t) => {
  t.ok(codes.length > 0);
  for (const code of codes) {
    const spec = ERROR_CODES[code];
    t.ok(Number.isInteger(spec.http) && spec.http >= 400 && spec.http <= 599, `${code}: an error status (${spec.http})`);
    t.ok(spec.ws === 'retryable' || spec.ws === 'terminal' || spec.ws === null, `${code}: a WebSocket meaning (${spec.ws})`);
    t.equal(httpStatus[code], spec.http, `${code}: httpStatus agrees`);
    t.equal(new SbError(code, 'x').status, spec.http, `${code}: SbError takes its status from the table`);
    t.ok(isErrorCode(code));
  }
  t.same(Object.keys(httpStatus).sort(), [...codes].sort(), 'httpStatus has no code of its own');
  t.notOk(isErrorCode('GAP'), 'a client-side code is not a hub code');
  t.notOk(isErrorCode('toString'), 'nor is an inherited property');
});

t.test('the codes the SDK resends a publish on are exactly the retryable ones a nack carries', async (t) => {
  const retryable = codes.filter((c) => ERROR_CODES[c].ws === 'retryable' && c !== 'STOPPED');
  t.same([...RETRYABLE_PUBLISH_CODES].sort(), retryable.sort());
});

t.test('the runtime and the store refuse with SbErrors: the same code and status on every transport', async (t) => {
  const cases: [SbError, ErrorCode, number][] = [
    [new MailboxFullError('room', 'r', 3), 'OVERLOADED', 503],
    [new ActorLimitError('room', 'r', 2), 'OVERLOADED', 503],
    [new AskTimeoutError('room', 'r', 100), 'TIMEOUT', 504],
    [new ActorStoppedError('room', 'r'), 'STOPPED', 503],
    [new StoreUnavailableError({ cause: new Error('down') }), 'UNAVAILABLE', 503],
  ];
  for (const [e, code, status] of cases) {
    t.type(e, SbError, `${e.name} is an SbError`);
    t.equal(e.code, code, `${e.name}: ${code}`);
    t.equal(e.status, status, `${e.name}: ${status}`);
    t.ok(e.retryAfterS !== undefined && e.retryAfterS > 0, `${e.name}: says when to retry (REST: Retry-After)`);
    t.equal(ERROR_CODES[e.code].ws, 'retryable', `${e.name}: retryable over WebSocket`);
  }
  const cause = new Error('the handler failed');
  t.equal(new ActorStoppedError('room', 'r', { cause }).cause, cause, 'a stop keeps the failure that caused it');
  t.equal(new RateLimitedError(2).retryAfterS, 2);
  t.equal(new SbError('NOT_FOUND', 'x').retryAfterS, undefined, 'a refusal that waiting does not fix has no Retry-After');
});

t.test('a frame error carries its own code, with that code’s status', async (t) => {
  for (const code of ['BAD_FRAME', 'UNKNOWN_TYPE', 'VALIDATION'] as const) {
    const e = new FrameError(1, code, 'x');
    t.equal(e.code, code);
    t.equal(e.frameCode, code);
    t.equal(e.status, 400);
  }
});

t.test('a code outside the table does not compile, in a frame or an SbError', async (t) => {
  // @ts-expect-error: NOPE is not a code of the table
  const frame: ErrorFrame = { t: 'error', id: 1, code: 'NOPE', message: 'x' };
  // @ts-expect-error: nor in a nack
  const nack: NackFrame = { t: 'nack', id: 1, cid: 'c', code: 'NOPE', message: 'x' };
  // @ts-expect-error: nor in an SbError
  const err = new SbError('NOPE', 'x');
  t.ok(frame && nack && err, 'checked by the type checker (tsc over the tests)');
});

/** The rows `| \`CODE\` | …cells… |` of the first table after `heading`. */
function tableAfter(doc: string, heading: string): Map<string, string[]> {
  const at = doc.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`no heading ${heading}`);
  const lines = doc.slice(at + heading.length + 2).split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  const rows = new Map<string, string[]>();
  for (const line of lines.slice(start)) {
    if (!line.startsWith('|')) break;
    const cells = line
      .slice(1, -1)
      .split(' | ')
      .map((c) => c.trim());
    const m = /^`([A-Z_]+)`$/.exec(cells[0] ?? '');
    if (m) rows.set(m[1] as string, cells.slice(1));
  }
  return rows;
}

t.test('docs/protocol.md lists every code with its HTTP status and its WebSocket meaning', async (t) => {
  const doc = await readFile(new URL('../docs/protocol.md', import.meta.url), 'utf8');

  const rest = tableAfter(doc, '### Errors');
  t.same([...rest.keys()].sort(), [...codes].sort(), 'the REST table lists exactly the codes of the table');
  for (const [code, [status]] of rest) {
    if (isErrorCode(code)) t.equal(Number(status), ERROR_CODES[code].http, `${code}: the documented status is the table's`);
  }

  const ws = tableAfter(doc, '### Error codes');
  const sentOverWs = codes.filter((c) => ERROR_CODES[c].ws !== null);
  t.same([...ws.keys()].sort(), sentOverWs.sort(), 'the WebSocket table lists exactly the codes sent in frames');
  for (const [code, cells] of ws) {
    if (!isErrorCode(code)) continue;
    const retryable = cells[2] ?? '';
    t.equal(retryable.startsWith('Yes'), ERROR_CODES[code].ws === 'retryable', `${code}: documented as ${ERROR_CODES[code].ws} (“${retryable.slice(0, 40)}”)`);
  }
});
