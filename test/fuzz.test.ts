// Property-based fuzzing (fast-check, fixed seeds, bounded runs) of everything that reads what an
// outsider sends: sb.v1 frames in both encodings, robot frames and the robot byte stream, and REST
// request validation; then a seeded corpus of known-nasty inputs; then a bounded run of random
// frames against a live hub socket. The rule everywhere: no crash, every input is either accepted or
// answered with a documented error code (with the request id when the frame had a usable one).

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import t from 'tap';
import { httpStatus, SbError } from '../src/errors.js';
import { InvalidUtf8Error, packPlain, unpackPlain } from '../src/protocol/codec.js';
import { FrameReader, parseHubFrame, parseRobotFrame, RobotProtocolError } from '../src/protocol/robot.js';
import type { Route } from '../src/transport/http.js';
import { authRoutes } from '../src/transport/routes-auth.js';
import { chatRoutes } from '../src/transport/routes-chat.js';
import { robotRoutes } from '../src/transport/routes-robots.js';
import { type Schema, validateBody, validateQuery } from '../src/transport/validate.js';
import { FrameError, parseFrame, requestId } from '../src/transport/ws-frames.js';
import { Api, uniqueName } from './helpers/api.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { connect, ENCODINGS, type Encoding, type Frame, pack, type RawClient } from './helpers/ws.js';

const SEED = 16;
const RUNS = 600;
const FRAME_CODES = new Set(['BAD_FRAME', 'UNKNOWN_TYPE', 'VALIDATION']);
const TYPES = ['sub', 'unsub', 'pub', 'hist', 'typing', 'auth', 'ping', 'watch', 'unwatch', 'cmd', 'estop', 'lease'];

/** Every code a reply may carry, each of which docs/protocol.md must document. */
const protocolDoc = readFileSync('docs/protocol.md', 'utf8');
const DOCUMENTED = new Set([...Object.keys(httpStatus), ...FRAME_CODES, 'OVERLOADED']);

/** Parses like the WebSocket transport; anything thrown must be a FrameError with a frame code and the right id. */
function checkParse(message: Uint8Array, isBinary: boolean, encoding: Encoding, expectedId: number | null | undefined): void {
  try {
    parseFrame(message, isBinary, encoding);
  } catch (e) {
    if (!(e instanceof FrameError)) throw new Error(`not a FrameError: ${String(e)}`);
    if (!FRAME_CODES.has(e.frameCode)) throw new Error(`undocumented frame code ${e.frameCode}`);
    if (expectedId !== undefined && e.id !== expectedId) throw new Error(`error id ${e.id}, expected ${expectedId}`);
    if (/stack|at .*\.ts|\n/.test(e.message)) throw new Error(`message leaks internals: ${e.message}`);
  }
}

const bytesOf = (enc: Encoding, v: unknown): Uint8Array => (enc === 'msgpack' ? pack(v) : Buffer.from(JSON.stringify(v)));

/** Field values a frame might carry: the right kind, the wrong kind, and edge values. */
const field = fc.oneof(
  fc.uuid(),
  fc.string({ maxLength: 80 }),
  fc.integer(),
  fc.constantFrom(0, -1, 1, 2 ** 53, 2 ** 53 - 1, 1e308, Number.NaN, 600_001, 99),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('acquire', 'renew', 'release', '', '\u0000', '\ud800', 'x'.repeat(65)),
  fc.jsonValue({ maxDepth: 3 }),
);
const badId = fc.oneof(fc.string({ maxLength: 5 }), fc.integer({ max: 0 }), fc.double({ noInteger: true }), fc.constant(2 ** 53), fc.constant(null));
/** Frames shaped like requests: a known (or nearly known) type, any of the known fields, an id or not. */
const requestLike = fc.record(
  {
    t: fc.oneof(fc.constantFrom(...TYPES), fc.string({ maxLength: 8 })),
    id: fc.oneof(fc.integer({ min: 1, max: 2 ** 31 }), badId),
    room: field,
    robot: field,
    since: field,
    cid: field,
    body: field,
    before: field,
    after: field,
    limit: field,
    token: field,
    name: field,
    args: field,
    timeoutMs: field,
    op: field,
    ttlMs: field,
    force: field,
    extra: field,
  },
  { requiredKeys: ['t'] },
);

t.test('fuzz: sb.v1 frame decoding never throws anything but a documented FrameError', async (t) => {
  for (const enc of ENCODINGS) {
    const binary = enc === 'msgpack';
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (b, asBinary) => checkParse(b, asBinary, enc, asBinary === binary ? undefined : null)),
      { seed: SEED, numRuns: RUNS },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200, unit: 'binary' }), (s) => checkParse(Buffer.from(s), binary, enc, undefined)),
      { seed: SEED, numRuns: RUNS },
    );
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => checkParse(bytesOf(enc, v), binary, enc, requestId(v))),
      { seed: SEED, numRuns: RUNS },
    );
    fc.assert(
      fc.property(requestLike, (v) =>
        checkParse(bytesOf(enc, v), binary, enc, enc === 'json' && Object.values(v).some((x) => Number.isNaN(x)) ? undefined : requestId(v)),
      ),
      { seed: SEED, numRuns: RUNS * 2 },
    );
    t.pass(`${enc}: ${RUNS * 5} cases`);
  }
});

t.test('fuzz: valid frames survive decoding unchanged (the property can fail)', async (t) => {
  const valid = fc.oneof(
    fc.record({ t: fc.constant('ping'), id: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) }),
    fc.record({ t: fc.constant('sub'), id: fc.integer({ min: 1 }), room: fc.uuid(), since: fc.nat() }, { requiredKeys: ['t', 'id', 'room'] }),
    fc.record({
      t: fc.constant('pub'),
      id: fc.integer({ min: 1 }),
      room: fc.uuid(),
      cid: fc.string({ minLength: 1, maxLength: 64, unit: 'grapheme-ascii' }),
      body: fc.string({ minLength: 1, unit: 'grapheme' }),
    }),
    fc.record(
      {
        t: fc.constant('cmd'),
        id: fc.integer({ min: 1 }),
        robot: fc.uuid(),
        name: fc.string({ minLength: 1, maxLength: 64, unit: 'grapheme-ascii' }),
        args: fc.jsonValue({ maxDepth: 5 }),
      },
      { requiredKeys: ['t', 'id', 'robot', 'name'] },
    ),
  );
  for (const enc of ENCODINGS) {
    fc.assert(
      fc.property(valid, (v) => {
        const parsed = parseFrame(bytesOf(enc, v), enc === 'msgpack', enc);
        // JSON turns -0 into 0; compare as the wire does.
        if (JSON.stringify(parsed) !== JSON.stringify(v)) throw new Error(`changed: ${JSON.stringify(parsed)}`);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    t.pass(`${enc}: valid frames accepted as sent`);
  }
});

/** Robot frames: only RobotProtocolErrors, each with one of its documented codes. */
function checkRobot(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof RobotProtocolError)) throw new Error(`not a RobotProtocolError: ${String(e)}`);
  }
}

t.test('fuzz: robot frames and the robot byte stream', async (t) => {
  const robotValue = fc.array(fc.oneof(fc.constantFrom(1, 3, 4, 12, 0, 255), fc.jsonValue({ maxDepth: 3 }), fc.uint8Array({ maxLength: 16 })), {
    maxLength: 5,
  });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        robotValue.map((v) => new Uint8Array(packPlain(v))),
      ),
      (b) => {
        checkRobot(() => parseRobotFrame(Buffer.from(b)));
        checkRobot(() => parseHubFrame(Buffer.from(b)));
      },
    ),
    { seed: SEED, numRuns: RUNS * 2 },
  );
  // The stream reader: any bytes in any chunking yield whole frames or FRAME_TOO_LARGE, never more than it was given.
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
      const reader = new FrameReader(256);
      let out = 0;
      const given = chunks.reduce((n, c) => n + c.length, 0);
      try {
        for (const c of chunks) for (const f of reader.push(Buffer.from(c))) out += 4 + f.length;
      } catch (e) {
        if (!(e instanceof RobotProtocolError) || e.code !== 'FRAME_TOO_LARGE') throw e;
      }
      if (out > given) throw new Error('read more than was given');
    }),
    { seed: SEED, numRuns: RUNS },
  );
  t.pass('robot frames: only RobotProtocolErrors');
});

/** The REST routes' schemas (the handlers are never called: dependencies are stand-ins). */
const stub = {} as never;
const routes: Route[] = [...authRoutes(stub, stub, stub, { cookieSecure: false } as never), ...chatRoutes(stub, stub, stub), ...robotRoutes(stub)];

function checkValidation(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SbError) || e.code !== 'VALIDATION') throw new Error(`not a VALIDATION error: ${String(e)}`);
  }
}

t.test('fuzz: REST request validation answers VALIDATION or accepts', async (t) => {
  const withBody = routes.filter((r) => r.body);
  const withQuery = routes.filter((r) => r.query);
  t.ok(withBody.length >= 5 && withQuery.length >= 2, `${withBody.length} body schemas, ${withQuery.length} query schemas`);
  for (const r of withBody) {
    const keys = Object.keys((r.body as { properties?: object }).properties ?? {});
    const shaped = fc.dictionary(fc.oneof(fc.constantFrom(...(keys.length ? keys : ['x'])), fc.string({ maxLength: 6 })), field, { maxKeys: 6 });
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }), shaped), (v) => checkValidation(() => validateBody(r.body as Schema, v))),
      { seed: SEED, numRuns: 300 },
    );
  }
  for (const r of withQuery) {
    const keys = Object.keys((r.query as { properties?: object }).properties ?? {});
    const shaped = fc.dictionary(fc.oneof(fc.constantFrom(...(keys.length ? keys : ['x'])), fc.string({ maxLength: 6 })), fc.string({ maxLength: 40 }), {
      maxKeys: 6,
    });
    fc.assert(
      fc.property(shaped, (q) => checkValidation(() => validateQuery(r.query as Schema, { ...q }))),
      { seed: SEED, numRuns: 300 },
    );
  }
});

/** Known-nasty inputs, run every time: each must get a documented error (or be accepted). */
const deep = (n: number, open = '[', close = ']') => `${open.repeat(n)}1${close.repeat(n)}`;
const corpus: { name: string; enc: Encoding; data: Uint8Array | string }[] = [
  { name: 'empty text', enc: 'json', data: '' },
  { name: 'JSON null', enc: 'json', data: 'null' },
  { name: 'JSON array', enc: 'json', data: '[{"t":"ping","id":1}]' },
  { name: '__proto__ key', enc: 'json', data: '{"t":"ping","id":1,"__proto__":{"admin":true}}' },
  { name: 'constructor type', enc: 'json', data: '{"t":"constructor","id":1}' },
  { name: 'toString type', enc: 'json', data: '{"t":"toString","id":2}' },
  { name: 'duplicate keys', enc: 'json', data: '{"t":"ping","id":1,"id":"x"}' },
  { name: 'huge id', enc: 'json', data: '{"t":"ping","id":1e400}' },
  { name: '100k-deep args', enc: 'json', data: `{"t":"cmd","id":3,"robot":"${randomUUID()}","name":"x","args":${deep(100_000)}}` },
  { name: '100k-deep objects', enc: 'json', data: `{"t":"cmd","id":4,"args":${deep(50_000, '{"a":', '}')}}` },
  { name: 'lone surrogate body', enc: 'json', data: `{"t":"pub","id":5,"room":"${randomUUID()}","cid":"c","body":"\\ud800"}` },
  { name: 'NUL body', enc: 'json', data: `{"t":"pub","id":6,"room":"${randomUUID()}","cid":"c","body":"\\u0000"}` },
  { name: 'msgpack 0xc1', enc: 'msgpack', data: new Uint8Array([0xc1]) },
  { name: 'msgpack truncated str32', enc: 'msgpack', data: new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]) },
  { name: 'msgpack map32 of 4G entries', enc: 'msgpack', data: new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff]) },
  { name: 'msgpack timestamp ext', enc: 'msgpack', data: new Uint8Array([0x81, 0xa1, 0x74, 0xd6, 0xff, 0, 0, 0, 1]) },
  { name: 'msgpack trailing bytes', enc: 'msgpack', data: new Uint8Array([...pack({ t: 'ping', id: 1 }), 0x00]) },
  { name: 'msgpack invalid UTF-8 key', enc: 'msgpack', data: new Uint8Array([0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x69, 0xff, 0x01]) },
  { name: 'msgpack 200-deep arrays', enc: 'msgpack', data: new Uint8Array([...new Array(200).fill(0x91), 0x01]) },
  {
    name: 'msgpack bigint id',
    enc: 'msgpack',
    data: new Uint8Array([0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x69, 0x64, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
  },
];

t.test('fuzz corpus: every known-nasty input gets a documented FrameError', async (t) => {
  for (const c of corpus) {
    const bytes = typeof c.data === 'string' ? Buffer.from(c.data) : c.data;
    t.doesNotThrow(() => checkParse(bytes, c.enc === 'msgpack', c.enc, undefined), c.name);
  }
  const deepArgs = corpus.find((c) => c.name === '100k-deep args')?.data as string;
  t.match(
    (() => {
      try {
        return parseFrame(Buffer.from(deepArgs), false, 'json');
      } catch (e) {
        return e;
      }
    })(),
    { frameCode: 'VALIDATION', id: 3 },
    'deep args: VALIDATION with the id',
  );
  // REST bodies meet the same nesting: a deep body is a VALIDATION error, not a stack overflow.
  const deepBody = JSON.parse(`{"name":${deep(100_000)}}`);
  for (const r of routes.filter((x) => x.body))
    t.doesNotThrow(() => checkValidation(() => validateBody(r.body as Schema, deepBody)), `${r.method} ${r.path}: deep body`);
});

t.test('#11 MessagePack UTF-8 check: every type is stepped over, every string width checked', async (t) => {
  const str = (n: number) => 'é'.repeat(n / 2);
  const value = {
    small: [0, 1, -1, -33, 200, -200, 70_000, -70_000, 2 ** 40, -(2 ** 40), 1.5, true, false, null],
    bytes: [new Uint8Array(10), new Uint8Array(300), new Uint8Array(70_000)],
    strings: [str(10), str(40), str(300), str(70_000)],
    array16: new Array(20).fill(1),
    array32: new Array(70_000).fill(0),
    map16: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  };
  const bytes = packPlain(value);
  // Byte arrays come back as Buffers: compare through a form both share.
  const plain = (v: unknown) =>
    JSON.stringify(v, function (this: Record<string, unknown>, k, x) {
      const raw = this[k]; // before Buffer's toJSON
      return raw instanceof Uint8Array ? `bytes:${raw.length}` : x;
    });
  t.ok(plain(unpackPlain(bytes)) === plain(value), 'valid: decoded as sent');
  // What this encoder never writes but another may: map32, float32, a str8 key.
  const other = new Uint8Array([0xdf, 0, 0, 0, 2, 0xa1, 0x61, 0xca, 0x3f, 0x80, 0, 0, 0xd9, 1, 0x62, 0xd0, 0x80]);
  t.same(unpackPlain(other), { a: 1, b: -128 }, 'map32, float32, str8, int8');
  // Break one byte inside each string width: a lead byte of "é" becomes a lone continuation byte.
  for (const n of [10, 40, 300, 70_000]) {
    const broken = Buffer.from(packPlain({ s: str(n) }));
    broken[broken.length - 2] = 0x80;
    let thrown: unknown;
    try {
      unpackPlain(broken);
    } catch (e) {
      thrown = e;
    }
    t.ok(thrown instanceof InvalidUtf8Error, `str of ${n} bytes with invalid UTF-8: refused`);
  }
});

t.test('fuzz: a live hub answers a few hundred random frames with documented errors, then serves normally', async (t) => {
  for (const code of DOCUMENTED) t.match(protocolDoc, code, `${code} is documented in docs/protocol.md`);
  const hub = await startTestHub(t, {
    env: { ...FAST, SB_WS_MAX_VIOLATIONS: '10000', SB_WS_REQUESTS_PER_SECOND: '100000', SB_WS_PUBLISH_PER_SECOND: '100000', SB_WS_PUBLISH_BURST: '100000' },
  });
  const api = new Api(hub.url);
  const u = await api.signUp(uniqueName('fz'));
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'fuzz' }, { token: u.token })).body.room.id as string;
  const frames = fc.sample(
    fc.oneof(
      requestLike.map((v) => ({ ...v, ...(v.room === undefined || Math.abs(Number(v.id)) % 3 ? {} : { room }) })),
      fc.uint8Array({ maxLength: 60 }),
      fc.string({ maxLength: 60 }),
    ),
    { seed: SEED, numRuns: 300 },
  );
  for (const enc of ENCODINGS) {
    const c = await connect(hub.url, { encoding: enc, token: u.token });
    t.teardown(() => c.ws.terminate());
    let answered = 0;
    let usedId = 0;
    for (const f of frames) {
      // Request-shaped frames get a unique id when they have a usable one, so replies can be matched.
      const v = f instanceof Uint8Array || typeof f === 'string' ? f : { ...f, ...(requestId(f) === null ? {} : { id: 1_000_000 + ++usedId }) };
      const expect = v instanceof Uint8Array || typeof v === 'string' ? null : requestId(v);
      if (v instanceof Uint8Array) c.sendRaw(v);
      else if (typeof v === 'string') c.sendRaw(enc === 'json' ? v : Buffer.from(v));
      else c.send(v);
      const reply = await (expect === null ? c.next((r) => r.t === 'error' && r.id === null, 'an error with id null') : replyTo(c, expect));
      if (reply.t === 'error' || reply.t === 'nack') {
        if (!DOCUMENTED.has(reply.code)) t.fail(`undocumented code ${reply.code} for ${JSON.stringify(v).slice(0, 200)}`);
        if (reply.code === 'INTERNAL') t.fail(`INTERNAL for ${JSON.stringify(v).slice(0, 200)}`);
      }
      answered++;
    }
    t.equal(answered, frames.length, `${enc}: every frame answered`);
    t.equal(c.closeInfo, undefined, `${enc}: the socket is still open`);
  }
  const normal = await connect(hub.url, { encoding: 'json', token: u.token });
  t.teardown(() => normal.ws.terminate());
  t.match(await normal.request({ t: 'pub', room, cid: randomUUID(), body: 'still here' }), { t: 'ack' }, 'a normal client is served afterwards');
});

/** The one reply to request `id`: the error or success frame carrying it. */
function replyTo(c: RawClient, id: number): Promise<Frame> {
  return c.next((r) => r.id === id && r.t !== 'msg', `the reply to #${id}`);
}
