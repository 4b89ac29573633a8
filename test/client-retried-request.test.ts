// The SDK's one retried request (room `sub`, robot `watch`, `pub`) under mocked timers: what is
// sent when, what is retried after which delay, and which replies reach the owner.

import { mock } from 'node:test';
import t from 'tap';
import { SwitchboardError } from '../src/client/errors.js';
import { type ReplyFrame, type RequestBody, Requests } from '../src/client/requests.js';
import { RetriedRequest, type RetryOwner, Waiters } from '../src/client/retried-request.js';
import type { ClientFrame } from '../src/protocol/frames.js';

const TIMEOUT_MS = 1000;

/** A reply frame before its request id is filled in. */
type Reply = ReplyFrame extends infer F ? (F extends ReplyFrame ? Omit<F, 'id'> : never) : never;

function rig(over: Partial<RetryOwner> = {}) {
  const sent: (ClientFrame & { id: number })[] = [];
  const delays: [number, string][] = [];
  const answers: [ReplyFrame, number][] = [];
  const unsent: SwitchboardError[] = [];
  const state = { open: true, wanted: true, tooLarge: false, n: 0 };
  const requests = new Requests({
    isOpen: () => state.open,
    timeoutMs: TIMEOUT_MS,
    send: (f) => {
      if (state.tooLarge) throw new SwitchboardError('TOO_LARGE', 'frame too large');
      sent.push(f as ClientFrame & { id: number });
    },
  });
  const host = {
    isOpen: () => state.open,
    timeoutMs: TIMEOUT_MS,
    requests,
    retryDelay: (attempt: number, code: string) => {
      delays.push([attempt, code]);
      return 100 * attempt;
    },
  };
  const req = new RetriedRequest(host, {
    frame: (): RequestBody => ({ t: 'sub', room: 'r', since: ++state.n }),
    wanted: () => state.wanted,
    retryable: (f) => f.t === 'error' && f.code === 'UNAVAILABLE',
    answer: (f, id) => answers.push([f, id]),
    unsent: (e) => unsent.push(e),
    ...over,
  });
  const reply = (f: Reply, id = sent.at(-1)?.id as number) => requests.settle({ ...f, id } as ReplyFrame & { id: number });
  return { req, requests, sent, delays, answers, unsent, state, reply };
}

t.beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
t.afterEach(() => mock.timers.reset());

t.test('one attempt at a time; its answer reaches the owner once', async (t) => {
  const r = rig();
  r.req.send();
  r.req.send();
  t.equal(r.sent.length, 1, 'a second send() while in flight sends nothing');
  t.ok(r.req.inFlight);
  r.reply({ t: 'subscribed', room: 'r', seq: 7 });
  r.reply({ t: 'subscribed', room: 'r', seq: 7 });
  t.equal(r.answers.length, 1);
  t.equal(r.answers[0]?.[1], r.sent[0]?.id, 'the answer names its attempt');
  t.notOk(r.req.inFlight);
  mock.timers.tick(10 * TIMEOUT_MS);
  t.equal(r.sent.length, 1, 'nothing is sent after an answer');
});

t.test('no reply in time: asked again after a backoff, with a fresh frame; the late reply is ignored', async (t) => {
  const r = rig();
  r.req.send();
  mock.timers.tick(TIMEOUT_MS - 1);
  t.equal(r.sent.length, 1);
  mock.timers.tick(1);
  t.same(r.delays, [[1, 'TIMEOUT']]);
  t.ok(r.req.delayed);
  r.reply({ t: 'subscribed', room: 'r', seq: 1 }, r.sent[0]?.id);
  t.equal(r.answers.length, 0, 'a reply to the abandoned attempt is dropped');
  mock.timers.tick(99);
  t.equal(r.sent.length, 1);
  mock.timers.tick(1);
  t.equal(r.sent.length, 2);
  t.equal((r.sent[1] as { since?: number }).since, 2, 'the frame is built again for each attempt');
  t.not(r.sent[1]?.id, r.sent[0]?.id, 'a new request id');
});

t.test('retryable refusals back off with a growing attempt number; an answer resets it', async (t) => {
  const r = rig();
  r.req.send();
  r.reply({ t: 'error', code: 'UNAVAILABLE', message: 'busy' });
  r.req.send();
  t.equal(r.sent.length, 1, 'send() while a retry waits out its delay sends nothing');
  mock.timers.tick(100);
  r.reply({ t: 'error', code: 'UNAVAILABLE', message: 'busy' });
  mock.timers.tick(200);
  t.equal(r.sent.length, 3);
  t.same(r.delays, [
    [1, 'UNAVAILABLE'],
    [2, 'UNAVAILABLE'],
  ]);
  r.reply({ t: 'error', code: 'FORBIDDEN', message: 'no' });
  t.equal(r.answers[0]?.[0].t, 'error', 'a refusal that is not retryable is the answer');
  r.req.send();
  r.reply({ t: 'error', code: 'UNAVAILABLE', message: 'busy' });
  t.same(r.delays.at(-1), [1, 'UNAVAILABLE'], 'the count starts again after an answer');
});

t.test('a dropped connection ends the attempt without a retry; send() on the next hello asks again', async (t) => {
  const r = rig();
  r.req.send();
  r.state.open = false;
  r.requests.lost();
  t.notOk(r.req.inFlight);
  mock.timers.tick(10 * TIMEOUT_MS);
  t.equal(r.sent.length, 1, 'no retry timer survives the lost attempt');
  r.req.send();
  t.equal(r.sent.length, 1, 'nothing is sent while disconnected');
  r.state.open = true;
  r.req.send();
  t.equal(r.sent.length, 2);
});

t.test('a delay that ends while disconnected sends nothing; the next hello sends', async (t) => {
  const r = rig();
  r.req.send();
  r.reply({ t: 'error', code: 'UNAVAILABLE', message: 'busy' });
  r.state.open = false;
  mock.timers.tick(100);
  t.equal(r.sent.length, 1);
  t.notOk(r.req.delayed);
  r.state.open = true;
  r.req.send();
  t.equal(r.sent.length, 2);
});

t.test('cancel() forgets the attempt and the pending retry; a request no longer wanted is not retried', async (t) => {
  const r = rig();
  r.req.send();
  r.req.cancel();
  r.reply({ t: 'subscribed', room: 'r', seq: 1 }, r.sent[0]?.id);
  t.equal(r.answers.length, 0);
  r.req.send();
  r.reply({ t: 'error', code: 'UNAVAILABLE', message: 'busy' });
  r.req.cancel();
  mock.timers.tick(10 * TIMEOUT_MS);
  t.equal(r.sent.length, 2, 'the cancelled retry never went out');
  r.req.send();
  r.state.wanted = false;
  mock.timers.tick(TIMEOUT_MS);
  t.notOk(r.req.delayed, 'no delay is scheduled for a request nobody wants');
  mock.timers.tick(10 * TIMEOUT_MS);
  t.equal(r.sent.length, 3);
  r.req.send();
  t.equal(r.sent.length, 3, 'send() sends nothing unwanted');
});

t.test('an attempt that cannot be sent is reported, not retried', async (t) => {
  const r = rig();
  r.state.tooLarge = true;
  r.req.send();
  t.equal(r.unsent.length, 1);
  t.equal(r.unsent[0]?.code, 'TOO_LARGE');
  t.notOk(r.req.inFlight);
  t.notOk(r.req.delayed);
});

t.test('the client ending drops the attempt without an answer', async (t) => {
  const r = rig();
  r.req.send();
  r.requests.failAll(new SwitchboardError('CLOSED', 'closed'));
  t.notOk(r.req.inFlight);
  mock.timers.tick(10 * TIMEOUT_MS);
  t.equal(r.answers.length, 0);
  t.equal(r.sent.length, 1);
});

t.test('waiters: each expires on its own deadline; the rest settle together', async (t) => {
  const w = new Waiters<number>();
  const expired: string[] = [];
  const a = w.wait(100, () => {
    expired.push('a');
    return new SwitchboardError('TIMEOUT', 'a');
  });
  const b = w.wait(300, () => new SwitchboardError('TIMEOUT', 'b'));
  const c = w.wait(300, () => new SwitchboardError('TIMEOUT', 'c'));
  mock.timers.tick(100);
  await t.rejects(a, { code: 'TIMEOUT', message: 'a' });
  t.same(expired, ['a']);
  t.equal(w.size, 2);
  w.resolveAll(5);
  t.equal(await b, 5);
  t.equal(await c, 5);
  t.equal(w.size, 0);
  const d = w.wait(100, () => new SwitchboardError('TIMEOUT', 'd'));
  w.rejectAll(new SwitchboardError('CLOSED', 'gone'));
  await t.rejects(d, { code: 'CLOSED' });
  mock.timers.tick(1000);
});
