// Unit tests for the actor runtime under a fake clock: mailbox order and bounds, ask timeouts,
// supervision (restart / resume / stop, start() failures), passivation, shutdown and metrics.
// `flush()` is one event-loop turn: the runtime's work here is all microtasks, so it settles fully.

import { pino } from 'pino';
import t from 'tap';
import {
  type Actor,
  ActorLimitError,
  ActorStoppedError,
  ActorSystem,
  type ActorSystemOptions,
  AskTimeoutError,
  MailboxFullError,
} from '../src/actors/runtime.js';
import { FakeClock } from './helpers/fake-clock.js';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

function setup(options: ActorSystemOptions = {}) {
  const clock = new FakeClock();
  const lines: Record<string, any>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const system = new ActorSystem(log, { clock, ...options });
  return { clock, lines, system };
}

t.test('messages are handled one at a time, in arrival order, after start()', async (t) => {
  const { system, clock } = setup();
  const seen: number[] = [];
  let active = 0;
  let maxActive = 0;
  let created = 0;
  let started = false;
  system.register<number, number>('worker', (id, ctx) => {
    created++;
    t.match(ctx, { kind: 'worker', id: 'w1', clock });
    t.equal(ctx.self, system.ref('worker', id), 'ctx.self is the cached ref');
    t.type(ctx.log.info, 'function');
    return {
      async start() {
        await Promise.resolve();
        started = true;
      },
      async handle(n) {
        t.ok(started, 'start() finished before the first message');
        active++;
        maxActive = Math.max(maxActive, active);
        for (let i = 0; i < 5 - (n % 5); i++) await Promise.resolve(); // earlier messages take longer
        seen.push(n);
        active--;
        return n * 2;
      },
    };
  });
  const ref = system.ref<number, number>('worker', 'w1');
  t.equal(system.metrics().actors, 0, 'a bare address holds nothing');
  t.equal(created, 0, 'the instance is created on the first message');
  for (let i = 0; i < 5; i++) t.ok(ref.tell(i));
  t.equal(system.ref('worker', 'w1'), system.ref('worker', 'w1'), 'refs of a live actor are cached');
  t.same(await Promise.all([5, 6, 7, 8, 9].map((n) => ref.ask(n))), [10, 12, 14, 16, 18]);
  t.same(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.equal(maxActive, 1, 'never two handlers at once');
  t.equal(created, 1);
  t.equal(clock.pending, 1, 'answered asks cleared their timers; only the idle timer is left');
});

t.test('a full mailbox fails fast; what was accepted is still handled', async (t) => {
  const { system } = setup({ mailboxLimit: 3 });
  const gate = deferred();
  const seen: number[] = [];
  system.register<number, void>('slow', () => ({
    async handle(n) {
      if (n === 0) await gate.promise;
      seen.push(n);
    },
  }));
  const ref = system.ref<number, void>('slow', 's');
  t.ok(ref.tell(0));
  await flush();
  t.equal(ref.depth, 0, 'the message being handled is not queued');
  for (let i = 1; i <= 3; i++) t.ok(ref.tell(i));
  t.equal(ref.depth, 3);
  t.notOk(ref.tell(4), 'tell returns false when full');
  const err = await ref.ask(5).catch((e: unknown) => e);
  t.type(err, MailboxFullError);
  t.match(err, { code: 'OVERLOADED', message: /slow\/s: mailbox full \(3 messages\)/ });
  t.same(system.metrics().mailboxDepth, { max: 3, total: 3 });
  gate.resolve();
  await flush();
  t.same(seen, [0, 1, 2, 3]);
  t.equal(ref.depth, 0);
});

t.test('ask always times out, by its own timeout or the default; the message may still be handled', async (t) => {
  const { system, clock } = setup({ askTimeoutMs: 5_000 });
  const gate = deferred();
  const handled: string[] = [];
  system.register<string, string>('stuck', () => ({
    async handle(m) {
      await gate.promise;
      handled.push(m);
      return m;
    },
  }));
  const ref = system.ref<string, string>('stuck', 'x');
  let first: unknown;
  const p1 = ref.ask('a', 100).catch((e: unknown) => (first = e));
  clock.advance(99);
  await flush();
  t.equal(first, undefined, 'not yet');
  clock.advance(1);
  await p1;
  t.type(first, AskTimeoutError);
  t.match(first, { code: 'TIMEOUT', message: /stuck\/x: no reply within 100 ms/ });

  let second: unknown;
  const p2 = ref.ask('b').catch((e: unknown) => (second = e));
  clock.advance(4_999);
  await flush();
  t.equal(second, undefined);
  clock.advance(1);
  await p2;
  t.match(second, { code: 'TIMEOUT', message: /5000 ms/ });

  gate.resolve();
  t.equal(await ref.ask('c', 100), 'c');
  t.same(handled, ['a', 'b', 'c'], 'timed-out messages were still handled');
});

/** A counter whose durable state is what it last saved to `store`. */
function counterKind(onError?: Actor<string, number>['onError']) {
  const store = new Map<string, number>();
  const stats = { created: 0, starts: 0, stops: 0, failStop: false };
  const boom = new Error('boom');
  const factory = (id: string): Actor<string, number> => {
    stats.created++;
    let count = 0;
    return {
      async start() {
        stats.starts++;
        count = store.get(id) ?? 0;
      },
      async stop() {
        stats.stops++;
        if (stats.failStop) throw new Error('stop failed');
      },
      handle(msg) {
        if (msg === 'inc') return ++count;
        if (msg === 'save') store.set(id, count);
        if (msg === 'boom') throw boom;
        return count;
      },
      ...(onError ? { onError } : {}),
    };
  };
  return { factory, stats, boom };
}

t.test('restart: the failing ask gets the error, state is reloaded by start(), later messages succeed', async (t) => {
  const { system, lines } = setup();
  const { factory, stats, boom } = counterKind();
  system.register('counter', factory);
  const ref = system.ref<string, number>('counter', 'c1');
  await ref.ask('inc');
  await ref.ask('inc');
  await ref.ask('save');
  t.equal(await ref.ask('inc'), 3, 'in memory: 3, saved: 2');
  const failed = ref.ask('boom').catch((e: unknown) => e);
  const next = ref.ask('get');
  t.equal(await failed, boom, 'the asker gets the original error');
  t.equal(await next, 2, 'the queued message went to a fresh instance with the saved state');
  t.same(stats, { created: 2, starts: 2, stops: 1, failStop: false });
  t.match(
    lines.find((l) => l.msg === 'actor handle failed'),
    { level: 50, kind: 'counter', id: 'c1', decision: 'restart', err: { message: 'boom' } },
  );
  t.equal(await ref.ask('inc'), 3);

  // A failing stop() is logged and the restart goes on; a tell that fails has nobody to answer.
  stats.failStop = true;
  t.ok(ref.tell('boom'));
  t.equal(await ref.ask('get'), 2);
  t.equal(stats.starts, 3);
  t.match(
    lines.find((l) => l.msg === 'actor stop failed'),
    { kind: 'counter', id: 'c1', reason: 'restart', err: { message: 'stop failed' } },
  );
  t.same(system.metrics().failed, 2);
});

t.test('onError that throws counts as restart', async (t) => {
  const { system, lines } = setup();
  const { factory, stats, boom } = counterKind(() => {
    throw new Error('bad policy');
  });
  system.register('counter', factory);
  const ref = system.ref<string, number>('counter', 'c');
  await t.rejects(ref.ask('boom'), boom);
  t.equal(await ref.ask('get'), 0);
  t.equal(stats.starts, 2);
  t.ok(lines.some((l) => l.msg === 'actor onError threw; restarting' && l.err.message === 'bad policy'));
});

t.test('resume keeps the instance and its state', async (t) => {
  const { system } = setup();
  const decided: unknown[] = [];
  const { factory, stats, boom } = counterKind((err) => {
    decided.push(err);
    return 'resume';
  });
  system.register('counter', factory);
  const ref = system.ref<string, number>('counter', 'c');
  await ref.ask('inc');
  await t.rejects(ref.ask('boom'), boom);
  t.equal(await ref.ask('inc'), 2, 'unsaved state survived');
  t.same(decided, [boom], 'onError got the error');
  t.same(stats, { created: 1, starts: 1, stops: 0, failStop: false });
});

t.test('stop drops the instance and refuses what was queued; the next message creates a new one', async (t) => {
  const { system } = setup();
  const { factory, stats, boom } = counterKind(() => 'stop');
  system.register('counter', factory);
  const ref = system.ref<string, number>('counter', 'c');
  await ref.ask('inc');
  const results = await Promise.allSettled([ref.ask('boom'), ref.ask('get'), ref.ask('inc')]);
  const reasons = results.map((r) => (r as PromiseRejectedResult).reason);
  t.equal(reasons[0], boom, 'the failing ask gets its error');
  t.type(reasons[1], ActorStoppedError);
  t.type(reasons[2], ActorStoppedError);
  t.match(reasons[1], { code: 'STOPPED', message: 'actor counter/c: stopped' });
  t.same(stats, { created: 1, starts: 1, stops: 1, failStop: false });
  t.equal(system.metrics().actors, 0);
  t.equal(await ref.ask('get'), 0);
  t.same(stats, { created: 2, starts: 2, stops: 1, failStop: false });
});

t.test('a failed start() (or factory) rejects the queued messages; the next message retries', async (t) => {
  const { system, lines } = setup();
  const startErr = new Error('db down');
  const boom = new Error('boom');
  const mode = { failStart: true, failFactory: false };
  system.register<string, string>('flaky', () => {
    if (mode.failFactory) throw new Error('factory failed');
    return {
      async start() {
        if (mode.failStart) throw startErr;
      },
      handle(m) {
        if (m === 'boom') throw boom;
        return m;
      },
    };
  });
  const ref = system.ref<string, string>('flaky', 'f');
  const a = ref.ask('a');
  const b = ref.ask('b');
  t.ok(ref.tell('c'));
  await t.rejects(a, startErr);
  await t.rejects(b, startErr);
  t.equal(system.metrics().actors, 0, 'discarded');
  t.match(
    lines.find((l) => l.msg === 'actor start failed'),
    { kind: 'flaky', id: 'f', err: { message: 'db down' } },
  );

  mode.failStart = false;
  mode.failFactory = true;
  await t.rejects(ref.ask('d'), { message: 'factory failed' });
  mode.failFactory = false;
  t.equal(await ref.ask('e'), 'e');

  // A restart whose start() fails rejects what is queued behind the failure.
  mode.failStart = true;
  const failed = ref.ask('boom');
  const queued = ref.ask('x');
  await t.rejects(failed, boom);
  await t.rejects(queued, startErr);
  mode.failStart = false;
  t.equal(await ref.ask('y'), 'y');
});

t.test('passivation: stopped after idleMs without incoming messages, re-created on the next one', async (t) => {
  const { system, clock } = setup({ idleMs: 1_000 });
  const stats = { created: 0, starts: 0, stops: 0 };
  system.register<string, string>('room', () => {
    stats.created++;
    return {
      async start() {
        stats.starts++;
      },
      async stop() {
        stats.stops++;
      },
      handle: (m) => m,
    };
  });
  const ref = system.ref<string, string>('room', 'r');
  await ref.ask('a');
  clock.advance(600);
  await ref.ask('b');
  clock.advance(400);
  await flush();
  t.equal(stats.stops, 0, 'the message at 600 ms postponed passivation');
  clock.advance(599);
  await flush();
  t.equal(stats.stops, 0);
  clock.advance(1);
  await flush();
  t.equal(stats.stops, 1, 'idle for 1000 ms since the last incoming message');
  t.equal(system.metrics().actors, 0);
  t.equal(ref.depth, 0);
  t.not(system.ref('room', 'r'), ref, 'the address was forgotten');
  t.equal(await ref.ask('c'), 'c', 'an old ref still works');
  t.same(stats, { created: 2, starts: 2, stops: 1 });

  // A ref that never got a message is forgotten too, without creating an instance.
  const ghost = system.ref('room', 'ghost');
  clock.advance(1_000);
  await flush();
  t.not(system.ref('room', 'ghost'), ghost);
  t.equal(stats.created, 2);
});

t.test('passivation waits for a busy actor and hands messages that arrive during stop() to a new instance', async (t) => {
  const { system, clock } = setup({ idleMs: 1_000 });
  const stats = { created: 0, stops: 0 };
  const gate = deferred();
  let stopGate = deferred();
  system.register<string, string>('room', () => {
    stats.created++;
    return {
      async stop() {
        stats.stops++;
        await stopGate.promise;
      },
      async handle(m) {
        if (m === 'slow') await gate.promise;
        return m;
      },
    };
  });
  const ref = system.ref<string, string>('room', 'r');
  const slow = ref.ask('slow', 10_000);
  await flush();
  clock.advance(1_000);
  await flush();
  t.equal(stats.stops, 0, 'not passivated while handling');
  gate.resolve();
  await slow;
  await flush(); // the mailbox loop ends just after the reply
  clock.advance(1_000);
  await flush();
  t.equal(stats.stops, 1, 'stop() in progress');
  const during = ref.ask('during');
  stopGate.resolve();
  t.equal(await during, 'during');
  await flush();
  t.equal(stats.created, 2, 'a fresh instance handled it');
  t.equal(system.metrics().actors, 1);
  stopGate = deferred();
  stopGate.resolve();
  clock.advance(1_000);
  await flush();
  t.equal(stats.stops, 2, 'the idle timer was re-armed for the new instance');
  t.equal(system.metrics().actors, 0);
});

t.test('canPassivate vetoes passivation until it returns true; a throwing veto keeps the actor', async (t) => {
  const { system, clock, lines } = setup({ idleMs: 1_000 });
  let subscribers = 1;
  let stops = 0;
  system.register<string, void>('room', () => ({
    canPassivate() {
      if (subscribers < 0) throw new Error('broken');
      return subscribers === 0;
    },
    async stop() {
      stops++;
    },
    handle() {},
  }));
  await system.ref<string, void>('room', 'r').ask('hi');
  clock.advance(3_000);
  await flush();
  t.equal(stops, 0, 'vetoed three times');
  subscribers = -1;
  clock.advance(1_000);
  await flush();
  t.equal(stops, 0);
  t.ok(lines.some((l) => l.msg === 'actor canPassivate threw; staying alive' && l.kind === 'room'));
  subscribers = 0;
  clock.advance(1_000);
  await flush();
  t.equal(stops, 1);
});

t.test('stopAll drains the mailboxes, awaits stop(), refuses new messages and is idempotent', async (t) => {
  const { system, clock } = setup();
  const gate = deferred();
  const seen: string[] = [];
  const stopped: string[] = [];
  system.register<string, string>('w', (id) => ({
    async stop() {
      await Promise.resolve();
      stopped.push(id);
    },
    async handle(m) {
      if (m === 'x') await gate.promise;
      seen.push(`${id}:${m}`);
      return m;
    },
  }));
  const a = system.ref<string, string>('w', 'a');
  const b = system.ref<string, string>('w', 'b');
  system.ref('w', 'never-used');
  const pa = a.ask('x');
  t.ok(a.tell('y'));
  const pb = b.ask('z');
  await flush();
  let finished = false;
  const done = system.stopAll(1_000).then(() => {
    finished = true;
  });
  t.equal(system.stopAll(5), system.stopAll(1_000), 'the same promise');
  t.notOk(a.tell('late'));
  await t.rejects(a.ask('late'), ActorStoppedError);
  const fresh = system.ref<string, string>('w', 'fresh');
  t.notOk(fresh.tell('m'), 'refs taken after stopAll refuse too');
  await t.rejects(fresh.ask('m'), { code: 'STOPPED' });
  await flush();
  t.notOk(finished, 'waits for the busy actor');
  gate.resolve();
  await done;
  t.equal(await pa, 'x');
  t.equal(await pb, 'z');
  t.same(seen.sort(), ['a:x', 'a:y', 'b:z']);
  t.same(stopped.sort(), ['a', 'b']);
  t.match(system.metrics(), { actors: 0, mailboxDepth: { max: 0, total: 0 } });
  t.equal(clock.pending, 0, 'no timers left');
});

t.test('stopAll resolves by its deadline, refusing what is still queued', async (t) => {
  const { system, clock, lines } = setup();
  const gate = deferred();
  let stops = 0;
  system.register<string, string>('w', () => ({
    async stop() {
      stops++;
    },
    async handle(m) {
      await gate.promise;
      return m;
    },
  }));
  const ref = system.ref<string, string>('w', 'stuck');
  const busy = ref.ask('busy', 60_000);
  const queued = ref.ask('queued', 60_000).catch((e: unknown) => e);
  await flush();
  let finished = false;
  const done = system.stopAll(1_000).then(() => {
    finished = true;
  });
  clock.advance(999);
  await flush();
  t.notOk(finished);
  clock.advance(1);
  await done;
  t.type(await queued, ActorStoppedError);
  t.ok(lines.some((l) => l.msg === 'actor shutdown deadline passed; abandoning busy actors' && l.actors === 1));
  t.equal(stops, 0);
  gate.resolve();
  t.equal(await busy, 'busy', 'the abandoned handler finishes on its own');
  await flush();
  t.equal(stops, 1, 'and its stop() still runs');
});

t.test('metrics count handled and failed messages and time spent in handle', async (t) => {
  const { system, clock } = setup();
  system.register<number, number>('m', () => ({
    handle(ms) {
      if (ms < 0) throw new Error('negative');
      clock.t += ms;
      return ms;
    },
    onError: () => 'resume',
  }));
  const ref = system.ref<number, number>('m', 'one');
  t.same(system.metrics(), { actors: 0, mailboxDepth: { max: 0, total: 0 }, handled: 0, failed: 0, handleMs: { count: 0, sum: 0, max: 0 } });
  t.equal(await ref.ask(3), 3, 'a synchronous handler');
  t.equal(await ref.ask(7), 7);
  await t.rejects(ref.ask(-1), { message: 'negative' });
  t.same(system.metrics(), { actors: 1, mailboxDepth: { max: 0, total: 0 }, handled: 2, failed: 1, handleMs: { count: 3, sum: 10, max: 7 } });
});

t.test('the default clock, and registry errors', async (t) => {
  const system = new ActorSystem(pino({ level: 'silent' }));
  system.register<string, string>('echo', () => ({ handle: (m) => m }));
  t.throws(() => system.register('echo', () => ({ handle: () => {} })), /already registered: echo/);
  t.throws(() => system.ref('nope', 'x'), /unknown actor kind: nope/);
  t.equal(await system.ref<string, string>('echo', 'e').ask('hi'), 'hi');
  await system.stopAll(1_000);
});

t.test('stopAll during a passivation lets it finish, drains what arrived meanwhile, and leaves no timers', async (t) => {
  const { system, clock } = setup({ idleMs: 1_000 });
  const stopGate = deferred();
  const events: string[] = [];
  let created = 0;
  system.register<string, string>('room', () => {
    const n = ++created;
    return {
      async stop() {
        events.push(`stop ${n}`);
        if (n === 1) await stopGate.promise;
      },
      handle(m) {
        events.push(`${m} by ${n}`);
        return m;
      },
    };
  });
  const ref = system.ref<string, string>('room', 'r');
  await ref.ask('a');
  clock.advance(1_000);
  await flush();
  const during = ref.ask('during');
  const done = system.stopAll(5_000);
  stopGate.resolve();
  await done;
  t.equal(await during, 'during');
  t.same(events, ['a by 1', 'stop 1', 'during by 2', 'stop 2']);
  t.equal(clock.pending, 0);
});

t.test('#8 actor cap: a message to a new address past maxActors is refused; absent entities and failed starts leave at once', async (t) => {
  const { system, clock } = setup({ maxActors: 2 });
  const gate = deferred();
  system.register<string, string>('thing', (id) => ({
    async start() {
      if (id === 'broken') throw new Error('cannot load');
    },
    async handle(m) {
      if (m === 'hold') await gate.promise;
      return `${id}:${m}`;
    },
    passivateNow: () => id.startsWith('absent'),
  }));
  // An absent entity answers, then is forgotten: it never holds a slot.
  for (let i = 0; i < 10; i++) t.equal(await system.ref<string, string>('thing', `absent${i}`).ask('hi'), `absent${i}:hi`);
  await flush();
  t.equal(system.metrics().actors, 0, 'no absent entity lingers');
  t.match(
    await system
      .ref('thing', 'broken')
      .ask('x')
      .catch((e: unknown) => e),
    { message: 'cannot load' },
  );
  await flush();
  t.equal(system.metrics().actors, 0, 'a failed start does not linger either');
  // Two live actors fill the node.
  const a = system.ref<string, string>('thing', 'a');
  const b = system.ref<string, string>('thing', 'b');
  const held = a.ask('hold', 60_000);
  t.equal(await b.ask('x'), 'b:x');
  t.equal(system.metrics().actors, 2);
  const err = await system
    .ref('thing', 'c')
    .ask('x')
    .catch((e: unknown) => e);
  t.type(err, ActorLimitError);
  t.match(err, { code: 'OVERLOADED', message: /not started, the node hosts its limit of 2 actors/ });
  t.notOk(system.ref('thing', 'c').tell('x'), 'tell to a new address is refused too');
  t.equal(await b.ask('y'), 'b:y', 'live actors are still served');
  gate.resolve();
  t.equal(await held, 'a:hold');
  // Idle actors passivate and free their slots.
  clock.advance(60_000);
  await flush();
  await flush();
  t.equal(system.metrics().actors, 0);
  t.equal(await system.ref<string, string>('thing', 'c').ask('x'), 'c:x', 'a freed slot is reused');
});

t.test('#8 actor cap: a passivateNow that throws is logged and the actor stays', async (t) => {
  const { system, lines } = setup();
  system.register<string, string>('odd', () => ({
    handle: (m) => m,
    passivateNow: () => {
      throw new Error('boom');
    },
  }));
  t.equal(await system.ref<string, string>('odd', 'o').ask('x'), 'x');
  await flush();
  t.equal(system.metrics().actors, 1, 'still live');
  t.ok(lines.some((l) => l.msg === 'actor passivateNow threw; staying alive'));
});
