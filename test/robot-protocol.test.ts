// The robot wire protocol as bytes: FrameReader over any chunking, the frame size limit read from the
// header alone, every valid frame accepted and every malformed one refused with its code, encode →
// parse round trips both ways, and the exact bytes of a telemetry frame (timestamps as int64).

import { Packr } from 'msgpackr';
import t, { type Test } from 'tap';
import {
  advertised,
  type Channel,
  encodeHubFrame,
  encodeRobotFrame,
  FrameReader,
  frameBytes,
  type HubFrame,
  MAX_CHANNELS,
  parseHubFrame,
  parseRobotFrame,
  ROBOT_PROTOCOL_VERSION,
  ROBOT_SCHEMAS_MAX_BYTES,
  type RobotFrame,
  RobotProtocolError,
  SCHEMA_MAX_BYTES,
  Tag,
  withdrawn,
} from '../src/protocol/robot.js';

/** An independent plain MessagePack encoder, for bodies the module's own encoder would never write. */
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false });
const body = (v: unknown): Buffer => packr.pack(v);
const header = (length: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length, 0);
  return b;
};
const framed = (b: Buffer): Buffer => Buffer.concat([header(b.length), b]);

/** A deterministic PRNG (mulberry32), so a failing split is reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Frame bodies of assorted sizes, including an empty one and one larger than a TLS record. */
const BODIES = [Buffer.alloc(0), Buffer.from([0x91, 0x04]), body([3, 1, 1_700_000_000_000, { x: 1 }]), Buffer.alloc(300, 7), Buffer.alloc(20_000, 9)];
const STREAM = Buffer.concat(BODIES.map(framed));

const pushAll = (reader: FrameReader, chunks: Buffer[]): Buffer[] => chunks.flatMap((c) => reader.push(c));

t.test('FrameReader', async (t) => {
  t.test('one byte at a time: each body completes on its last byte, and not before', async (t) => {
    const reader = new FrameReader(65_536);
    const out: Buffer[] = [];
    const completedAt: number[] = [];
    for (let i = 0; i < STREAM.length; i++) {
      const got = reader.push(STREAM.subarray(i, i + 1));
      for (const _ of got) completedAt.push(i + 1);
      out.push(...got);
    }
    t.same(out, BODIES);
    let end = 0;
    const ends = BODIES.map((b) => {
      end += 4 + b.length;
      return end;
    });
    t.same(completedAt, ends, 'each frame is returned exactly when its last byte arrives');
  });

  t.test('every frame in one chunk', async (t) => {
    const out = new FrameReader(65_536).push(STREAM);
    t.same(out, BODIES);
  });

  t.test('a length header split across chunks', async (t) => {
    for (const cut of [1, 2, 3]) {
      const reader = new FrameReader(65_536);
      const frame = framed(BODIES[2] as Buffer);
      t.same(reader.push(frame.subarray(0, cut)), [], `${cut} header byte(s): nothing yet`);
      t.same(reader.push(frame.subarray(cut, 4)), [], 'header complete, body missing: nothing yet');
      t.same(reader.push(frame.subarray(4)), [BODIES[2]], 'the body completes the frame');
    }
    // The header of the second frame straddles the chunk that ends the first.
    const two = Buffer.concat([framed(BODIES[1] as Buffer), framed(BODIES[2] as Buffer)]);
    const cut = 4 + (BODIES[1] as Buffer).length + 2;
    const reader = new FrameReader(65_536);
    t.same(reader.push(two.subarray(0, cut)), [BODIES[1]]);
    t.same(reader.push(two.subarray(cut)), [BODIES[2]]);
  });

  t.test('random splits of the same stream always give the same bodies', async (t) => {
    const random = rng(42);
    for (let round = 0; round < 200; round++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < STREAM.length; ) {
        const n = 1 + Math.floor(random() * (random() < 0.5 ? 8 : 5_000));
        chunks.push(STREAM.subarray(i, i + n));
        i += n;
      }
      const out = pushAll(new FrameReader(65_536), chunks);
      if (!t.same(out, BODIES, `round ${round}: ${chunks.length} chunks`)) break;
    }
  });

  t.test('a body is not changed by later pushes', async (t) => {
    const reader = new FrameReader(65_536);
    const frame = framed(Buffer.from('abcdef'));
    const [first] = reader.push(Buffer.concat([frame, frame.subarray(0, 3)]));
    const [second] = reader.push(frame.subarray(3));
    const [third] = reader.push(framed(Buffer.from('zzzzzzzz')));
    t.equal(first?.toString(), 'abcdef');
    t.equal(second?.toString(), 'abcdef');
    t.equal(third?.toString(), 'zzzzzzzz');
  });

  t.test('FRAME_TOO_LARGE from the header alone', async (t) => {
    const reader = new FrameReader(1_024);
    t.same(reader.push(header(1_024)), [], 'exactly the limit: waits for the body');
    t.same(reader.push(Buffer.alloc(1_024)), [Buffer.alloc(1_024)]);
    const tooLarge = header(1_025);
    t.throws(() => new FrameReader(1_024).push(tooLarge), { name: 'RobotProtocolError', code: 'FRAME_TOO_LARGE' }, 'one byte over, no body sent');
    const split = new FrameReader(1_024);
    t.same(split.push(tooLarge.subarray(0, 3)), [], 'three header bytes: the length is not known yet');
    t.throws(() => split.push(tooLarge.subarray(3)), { code: 'FRAME_TOO_LARGE' }, 'the fourth header byte decides');
    t.throws(() => new FrameReader(1_024).push(header(0xffffffff)), { code: 'FRAME_TOO_LARGE' }, '4 GiB declared: refused without buffering');
    const after = new FrameReader(1_024);
    t.throws(() => after.push(Buffer.concat([framed(Buffer.from([0x91, 0x04])), header(2_000)])), { code: 'FRAME_TOO_LARGE' }, 'also behind a good frame');
  });
});

const CH = (id: number, name = `ch${id}`, delivery: 0 | 1 = 0, schema: string | null = null): unknown[] => [id, name, 'msgpack', schema, delivery];

/** Expects parseRobotFrame to refuse `b` with `code` (or one of `code`). */
function refuses(t: Test, b: Buffer, code: RobotProtocolError['code'] | RobotProtocolError['code'][], what: string): void {
  try {
    const f = parseRobotFrame(b);
    t.fail(`${what}: accepted as ${JSON.stringify(f)}`);
  } catch (e) {
    if (!(e instanceof RobotProtocolError)) {
      t.fail(`${what}: threw ${(e as Error).name}: ${(e as Error).message}, not a RobotProtocolError`);
      return;
    }
    if (Array.isArray(code)) t.ok(code.includes(e.code), `${what}: ${e.code} ${e.message}`);
    else t.equal(e.code, code, `${what}: ${e.message}`);
  }
}

t.test('parseRobotFrame accepts every valid frame', async (t) => {
  const ok = (v: unknown, expected: RobotFrame, what: string) => t.same(parseRobotFrame(body(v)), expected, what);
  ok([1, 1, []], { tag: Tag.HELLO, version: 1, channels: [] }, 'HELLO without channels');
  ok(
    [1, 1, [CH(0, 'a', 0, 'geometry_msgs/Twist'), CH(65_535, 'b', 1)]],
    {
      tag: Tag.HELLO,
      version: 1,
      channels: [
        { id: 0, name: 'a', encoding: 'msgpack', schema: 'geometry_msgs/Twist', delivery: 'latest' },
        { id: 65_535, name: 'b', encoding: 'msgpack', schema: null, delivery: 'reliable' },
      ],
    },
    'HELLO: ids at both ends of the range, both deliveries, schema or null',
  );
  const many = Array.from({ length: MAX_CHANNELS }, (_, i) => CH(i));
  t.equal((parseRobotFrame(body([1, 1, many])) as Extract<RobotFrame, { tag: 1 }>).channels.length, MAX_CHANNELS, `HELLO with ${MAX_CHANNELS} channels`);
  const long = '🤖'.repeat(64); // 64 characters, 256 UTF-8 bytes
  t.equal(
    (parseRobotFrame(body([1, 1, [[1, long, long, 's'.repeat(256), 0]]])) as Extract<RobotFrame, { tag: 1 }>).channels[0]?.name,
    long,
    'names of 64 characters',
  );
  ok([3, 0, 0, null], { tag: Tag.TELEMETRY, channel: 0, ts: 0, payload: null }, 'TELEMETRY: zeros, null payload');
  ok(
    [3, 65_535, Number.MAX_SAFE_INTEGER, { a: [1, 'x'] }],
    { tag: Tag.TELEMETRY, channel: 65_535, ts: Number.MAX_SAFE_INTEGER, payload: { a: [1, 'x'] } },
    'TELEMETRY: largest channel and ts',
  );
  const bin = Buffer.from([1, 2, 3]);
  t.same((parseRobotFrame(body([3, 1, 5, bin])) as Extract<RobotFrame, { tag: 3 }>).payload, bin, 'a binary payload stays bytes');
  // A whole number written as a float64 and a ts written as uint64 are the same integers.
  const float = Buffer.from([0x94, 0x03, 0x01, 0xcb, ...f64(1_700_000_000_000), 0xc0]);
  t.same(parseRobotFrame(float), { tag: Tag.TELEMETRY, channel: 1, ts: 1_700_000_000_000, payload: null }, 'ts as a whole float64');
  const u64 = Buffer.from([0x94, 0x03, 0x01, 0xcf, ...u64be(1_700_000_000_000), 0xc0]);
  t.same(parseRobotFrame(u64), { tag: Tag.TELEMETRY, channel: 1, ts: 1_700_000_000_000, payload: null }, 'ts as uint64');
  ok([4], { tag: Tag.HEARTBEAT }, 'HEARTBEAT');
  ok([12, 'c1', 1], { tag: Tag.STATUS, command: 'c1', stage: 'accepted', detail: null }, 'STATUS without detail');
  ok([12, 'c1', 2, 'busy'], { tag: Tag.STATUS, command: 'c1', stage: 'rejected', detail: 'busy' }, 'STATUS rejected');
  ok([12, 'c1', 3, { ok: true }], { tag: Tag.STATUS, command: 'c1', stage: 'completed', detail: { ok: true } }, 'STATUS completed');
  ok([12, 'x'.repeat(64), 4, null], { tag: Tag.STATUS, command: 'x'.repeat(64), stage: 'failed', detail: null }, 'STATUS failed, 64-character id');
});

function f64(n: number): number[] {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n, 0);
  return [...b];
}
function u64be(n: number): number[] {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n), 0);
  return [...b];
}

t.test('parseRobotFrame refuses malformed frames with the right code', async (t) => {
  t.test('BAD_FRAME: not MessagePack, not an array, an empty array', async (t) => {
    refuses(t, Buffer.alloc(0), 'BAD_FRAME', 'an empty body');
    refuses(t, Buffer.from([0xc1]), 'BAD_FRAME', '0xc1 (never used in MessagePack)');
    refuses(t, Buffer.from([0x93, 0x03, 0x01]), 'BAD_FRAME', 'a truncated array');
    refuses(t, Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff]), 'BAD_FRAME', 'a str32 claiming 4 GiB');
    refuses(t, Buffer.concat([body([4]), Buffer.from([0x04])]), 'BAD_FRAME', 'bytes after the value');
    refuses(t, Buffer.from('{"t":1}'), 'BAD_FRAME', 'JSON text');
    refuses(t, body({ 0: 3 }), 'BAD_FRAME', 'a map');
    refuses(t, body('hello'), 'BAD_FRAME', 'a string');
    refuses(t, body(3), 'BAD_FRAME', 'a bare tag');
    refuses(t, body(null), 'BAD_FRAME', 'nil');
    refuses(t, body(Buffer.from([0x91, 0x04])), 'BAD_FRAME', 'a byte string holding a frame');
    refuses(t, body([]), 'BAD_FRAME', 'an empty array');
    refuses(t, Buffer.from([0x91, 0xd4, 0x05, 0x00]), 'BAD_FRAME', 'an unknown extension type');
  });

  t.test('UNKNOWN_TYPE: tags that are not robot frames', async (t) => {
    for (const tag of [0, Tag.WELCOME, Tag.ERROR, Tag.COMMAND, Tag.ESTOP, 6, 15, 99, 255, -1, 1.5, 'hello', null, true]) {
      refuses(t, body([tag, 1]), 'UNKNOWN_TYPE', `tag ${JSON.stringify(tag)}`);
    }
  });

  t.test('a tag the decoder turns into something JSON cannot print is still a protocol error', async (t) => {
    // msgpackr decodes its BigInt extension (type 0x42) even with moreTypes off: [5n]. Not plain
    // MessagePack (BAD_FRAME) or not a known tag (UNKNOWN_TYPE); either, but a RobotProtocolError.
    refuses(t, Buffer.from([0x91, 0xd4, 0x42, 0x05]), ['BAD_FRAME', 'UNKNOWN_TYPE'], 'a BigInt-extension tag');
    refuses(t, Buffer.from([0x92, 0xd4, 0x42, 0x05, 0x01]), ['BAD_FRAME', 'UNKNOWN_TYPE'], 'the same with an element after it');
  });

  t.test('VALIDATION: HELLO', async (t) => {
    refuses(t, body([1, 2, []]), 'VALIDATION', 'version 2');
    refuses(t, body([1, 0, []]), 'VALIDATION', 'version 0');
    refuses(t, body([1, '1', []]), 'VALIDATION', 'version as a string');
    refuses(t, body([1, 1]), 'VALIDATION', 'no channels');
    refuses(t, body([1, 1, [], 'extra']), 'VALIDATION', 'an extra element');
    refuses(t, body([1, 1, {}]), 'VALIDATION', 'channels as a map');
    refuses(t, body([1, 1, Array.from({ length: MAX_CHANNELS + 1 }, (_, i) => CH(i))]), 'VALIDATION', `${MAX_CHANNELS + 1} channels`);
    refuses(t, body([1, 1, [CH(1, 'a'), CH(1, 'b')]]), 'VALIDATION', 'duplicate channel ids');
    refuses(t, body([1, 1, [CH(1, 'a'), CH(2, 'a')]]), 'VALIDATION', 'duplicate channel names');
    refuses(t, body([1, 1, [[1, 'a', 'msgpack', null]]]), 'VALIDATION', 'a channel of 4 elements');
    refuses(t, body([1, 1, ['a']]), 'VALIDATION', 'a channel that is not an array');
    refuses(t, body([1, 1, [CH(-1)]]), 'VALIDATION', 'channel id -1');
    refuses(t, body([1, 1, [CH(65_536)]]), 'VALIDATION', 'channel id 65536');
    refuses(t, body([1, 1, [CH(1.5)]]), 'VALIDATION', 'channel id 1.5');
    refuses(t, body([1, 1, [[1, '', 'msgpack', null, 0]]]), 'VALIDATION', 'an empty name');
    refuses(t, body([1, 1, [[1, 'x'.repeat(65), 'msgpack', null, 0]]]), 'VALIDATION', 'a 65-character name');
    refuses(t, body([1, 1, [[1, 7, 'msgpack', null, 0]]]), 'VALIDATION', 'a numeric name');
    refuses(t, body([1, 1, [[1, 'a', null, null, 0]]]), 'VALIDATION', 'a nil encoding');
    refuses(t, body([1, 1, [[1, 'a', 'msgpack', '', 0]]]), 'VALIDATION', 'an empty schema');
    refuses(t, body([1, 1, [[1, 'a', 'msgpack', 's'.repeat(257), 0]]]), 'VALIDATION', 'a 257-character schema');
    for (const d of [2, -1, 'latest', null, true]) refuses(t, body([1, 1, [[1, 'a', 'msgpack', null, d]]]), 'VALIDATION', `delivery ${JSON.stringify(d)}`);
  });

  t.test('VALIDATION: TELEMETRY', async (t) => {
    for (const ch of [-1, 65_536, 1.5, '1', null]) refuses(t, body([3, ch, 5, null]), 'VALIDATION', `channel ${JSON.stringify(ch)}`);
    for (const ts of [-1, 1.5, '5', null, Number.MAX_SAFE_INTEGER + 1]) refuses(t, body([3, 1, ts, null]), 'VALIDATION', `ts ${JSON.stringify(ts)}`);
    refuses(t, Buffer.from([0x94, 0x03, 0x01, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0]), 'VALIDATION', 'ts 2^64-1 as uint64');
    refuses(t, body([3, 1, 5]), 'VALIDATION', 'no payload');
    t.same(parseRobotFrame(body([3, 1, 5, null, 7])), { tag: Tag.TELEMETRY, channel: 1, ts: 5, payload: null, seq: 7 }, 'a 5th element: the seq');
    for (const seq of [null, -1, 1.5, '7', Number.MAX_SAFE_INTEGER + 1]) refuses(t, body([3, 1, 5, null, seq]), 'VALIDATION', `seq ${JSON.stringify(seq)}`);
    refuses(t, body([3, 1, 5, null, 7, 8]), 'VALIDATION', 'a 6th element');
  });

  t.test('VALIDATION: STATUS', async (t) => {
    for (const stage of [0, 5, -1, 1.5, 'accepted', null]) refuses(t, body([12, 'c1', stage, null]), 'VALIDATION', `stage ${JSON.stringify(stage)}`);
    refuses(t, body([12, 'c1']), 'VALIDATION', 'no stage');
    refuses(t, body([12, 'c1', 3, null, 'extra']), 'VALIDATION', 'an extra element');
    refuses(t, body([12, '', 3, null]), 'VALIDATION', 'an empty command id');
    refuses(t, body([12, 'x'.repeat(65), 3, null]), 'VALIDATION', 'a 65-character command id');
    refuses(t, body([12, 42, 3, null]), 'VALIDATION', 'a numeric command id');
  });
});

t.test('channel schemas, ADVERTISE and WITHDRAW', async (t) => {
  const schema = '{"type":"object","properties":{"v":{"type":"number"}}}';
  const fds = Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]);
  t.test('a channel may carry a schema (text or bytes), in HELLO and ADVERTISE', async (t) => {
    const hello = parseRobotFrame(
      body([1, 1, [[1, 'battery', 'json', 'Battery', 0, 'jsonschema', schema], [2, 'pose', 'protobuf', 'foxglove.Pose', 1, 'protobuf', fds], CH(3)]]),
    );
    t.same(hello, {
      tag: Tag.HELLO,
      version: 1,
      channels: [
        { id: 1, name: 'battery', encoding: 'json', schema: 'Battery', delivery: 'latest', schemaEncoding: 'jsonschema', schemaData: schema },
        { id: 2, name: 'pose', encoding: 'protobuf', schema: 'foxglove.Pose', delivery: 'reliable', schemaEncoding: 'protobuf', schemaData: fds },
        { id: 3, name: 'ch3', encoding: 'msgpack', schema: null, delivery: 'latest' },
      ],
    });
    const encoding = parseRobotFrame(body([13, [[4, 'named', 'cdr', 'pkg/msg/T', 0, 'ros2msg', null]]]));
    t.same(encoding, {
      tag: Tag.ADVERTISE,
      channels: [{ id: 4, name: 'named', encoding: 'cdr', schema: 'pkg/msg/T', delivery: 'latest', schemaEncoding: 'ros2msg', schemaData: null }],
    });
    const max = 'x'.repeat(SCHEMA_MAX_BYTES);
    t.equal(
      (parseRobotFrame(body([13, [[1, 'a', 'json', null, 0, 'jsonschema', max]]])) as Extract<RobotFrame, { tag: 13 }>).channels[0]?.schemaData,
      max,
      `a schema of ${SCHEMA_MAX_BYTES} bytes`,
    );
    t.same(parseRobotFrame(body([14, [0, 65_535]])), { tag: Tag.WITHDRAW, channels: [0, 65_535] }, 'WITHDRAW');
  });

  t.test('VALIDATION: schemas, ADVERTISE and WITHDRAW frames', async (t) => {
    refuses(t, body([13, [[1, 'a', 'json', null, 0, 'jsonschema', 'x'.repeat(SCHEMA_MAX_BYTES + 1)]]]), 'VALIDATION', 'a schema one byte too large');
    refuses(t, body([13, [[1, 'a', 'json', null, 0, 'jsonschema', Buffer.alloc(SCHEMA_MAX_BYTES + 1)]]]), 'VALIDATION', 'a binary schema one byte too large');
    refuses(
      t,
      body([13, [[1, 'a', 'json', null, 0, 'jsonschema', '€'.repeat(SCHEMA_MAX_BYTES / 3 + 1)]]]),
      'VALIDATION',
      'a schema counted in UTF-8 bytes, not characters',
    );
    const nine = Array.from({ length: 5 }, (_, i) => [i, `c${i}`, 'json', null, 0, 'jsonschema', 'x'.repeat(SCHEMA_MAX_BYTES)]);
    refuses(t, body([1, 1, nine]), 'VALIDATION', `a HELLO whose schemas total more than ${ROBOT_SCHEMAS_MAX_BYTES} bytes`);
    refuses(t, body([13, [[1, 'a', 'json', null, 0, null, 'x']]]), 'VALIDATION', 'schema data without a schema encoding');
    refuses(t, body([13, [[1, 'a', 'json', null, 0, 'jsonschema', 5]]]), 'VALIDATION', 'schema data that is a number');
    refuses(t, body([13, [[1, 'a', 'json', null, 0, '', 'x']]]), 'VALIDATION', 'an empty schema encoding');
    refuses(t, body([13, [[1, 'a', 'json', null, 0, 'jsonschema']]]), 'VALIDATION', 'a channel of 6 elements');
    refuses(t, body([13, []]), 'VALIDATION', 'ADVERTISE of no channel');
    refuses(t, body([13]), 'VALIDATION', 'ADVERTISE without channels');
    refuses(t, body([13, [CH(1)], 'extra']), 'VALIDATION', 'ADVERTISE with an extra element');
    refuses(t, body([13, Array.from({ length: MAX_CHANNELS + 1 }, (_, i) => CH(i))]), 'VALIDATION', `ADVERTISE of ${MAX_CHANNELS + 1} channels`);
    refuses(t, body([13, [CH(1, 'a'), CH(1, 'b')]]), 'VALIDATION', 'ADVERTISE: duplicate ids');
    refuses(t, body([13, [CH(1, 'a'), CH(2, 'a')]]), 'VALIDATION', 'ADVERTISE: duplicate names');
    refuses(t, body([14, []]), 'VALIDATION', 'WITHDRAW of no channel');
    refuses(t, body([14, [1, 1]]), 'VALIDATION', 'WITHDRAW: an id twice');
    refuses(t, body([14, [65_536]]), 'VALIDATION', 'WITHDRAW: id 65536');
    refuses(t, body([14, 1]), 'VALIDATION', 'WITHDRAW: an id not in an array');
    refuses(t, body([14, Array.from({ length: MAX_CHANNELS + 1 }, (_, i) => i)]), 'VALIDATION', `WITHDRAW of ${MAX_CHANNELS + 1} ids`);
  });

  const chan = (id: number, name = `ch${id}`, schemaBytes = 0): Channel => ({
    id,
    name,
    encoding: 'json',
    schema: null,
    delivery: 'latest',
    ...(schemaBytes ? { schemaEncoding: 'jsonschema', schemaData: 'x'.repeat(schemaBytes) } : {}),
  });
  const set = (cs: Channel[]) => new Map(cs.map((c) => [c.id, c]));
  const violates = (fn: () => unknown, what: string) => t.throws(fn, { name: 'RobotProtocolError', code: 'VALIDATION' }, what);

  t.test('a robot has at most 64 channels at any time, and unique names', async (t) => {
    const full = set(Array.from({ length: MAX_CHANNELS }, (_, i) => chan(i)));
    violates(() => advertised(full, [chan(100)]), 'the 65th channel');
    t.equal(advertised(full, [chan(5, 'renamed')]).size, MAX_CHANNELS, 'replacing a channel by id at 64 is fine');
    t.equal(advertised(withdrawn(full, [0]), [chan(100)]).size, MAX_CHANNELS, 'after a withdraw there is room again');
    violates(() => advertised(set([chan(1, 'a')]), [chan(2, 'a')]), 'a name another id holds');
    t.same(
      [...advertised(set([chan(1, 'a')]), [chan(1, 'b'), chan(2, 'a')]).values()].map((c) => c.name),
      ['b', 'a'],
      'a name freed in the same ADVERTISE may be reused',
    );
    const before = set([chan(1)]);
    violates(() => advertised(before, [chan(2), chan(3, 'ch1')]), 'refused as a whole');
    t.same([...before.keys()], [1], 'and the set it was applied to is unchanged');
  });

  t.test(`a robot's schemas total at most ${ROBOT_SCHEMAS_MAX_BYTES} bytes at any time`, async (t) => {
    let cs = set([]);
    for (let i = 0; i < ROBOT_SCHEMAS_MAX_BYTES / SCHEMA_MAX_BYTES; i++) cs = advertised(cs, [chan(i, `c${i}`, SCHEMA_MAX_BYTES)]);
    violates(() => advertised(cs, [chan(99, 'one-more', 1)]), 'one byte over the total');
    t.equal(advertised(cs, [chan(0, 'c0', SCHEMA_MAX_BYTES - 1)]).size, 4, 'a smaller schema in place of a larger one fits');
  });

  t.test('WITHDRAW of an id the robot does not have', async (t) => {
    violates(() => withdrawn(set([chan(1)]), [2]), 'an unknown id');
    violates(() => withdrawn(set([chan(1)]), [1, 2]), 'refused as a whole, known ids with it');
    t.same([...withdrawn(set([chan(1), chan(2)]), [1]).keys()], [2], 'a known id goes');
  });
});

const CHANNELS: Channel[] = [
  { id: 1, name: 'pose', encoding: 'msgpack', schema: 'geometry_msgs/Pose2D', delivery: 'latest' },
  { id: 2, name: 'log', encoding: 'json', schema: null, delivery: 'reliable' },
];

/** Checks the 4-byte header of an encoded frame and returns its body. */
function unframe(t: Test, bytes: Buffer): Buffer {
  t.equal(bytes.readUInt32BE(0), bytes.length - 4, 'the header holds the body length');
  return bytes.subarray(4);
}

t.test('robot frames survive encode → parse', async (t) => {
  const frames: RobotFrame[] = [
    { tag: Tag.HELLO, version: ROBOT_PROTOCOL_VERSION, channels: CHANNELS },
    { tag: Tag.HELLO, version: ROBOT_PROTOCOL_VERSION, channels: [] },
    { tag: Tag.TELEMETRY, channel: 1, ts: Date.now(), payload: { x: 1.5, y: -2, names: ['a', 'b'], deep: { n: null } } },
    { tag: Tag.TELEMETRY, channel: 2, ts: 0, payload: 'a log line' },
    { tag: Tag.TELEMETRY, channel: 65_535, ts: Number.MAX_SAFE_INTEGER, payload: Buffer.from([0, 1, 2, 255]) },
    { tag: Tag.TELEMETRY, channel: 3, ts: 2 ** 32 - 1, payload: 2 ** 40 },
    { tag: Tag.HEARTBEAT },
    { tag: Tag.STATUS, command: 'c-1', stage: 'accepted', detail: null },
    { tag: Tag.STATUS, command: 'c-1', stage: 'rejected', detail: 'busy' },
    { tag: Tag.STATUS, command: 'c-1', stage: 'completed', detail: { result: [1, 2, 3] } },
    { tag: Tag.STATUS, command: 'c-1', stage: 'failed', detail: { error: 'stalled' } },
    { tag: Tag.ADVERTISE, channels: [{ ...(CHANNELS[0] as Channel), schemaEncoding: 'ros2msg', schemaData: 'float64 x\nfloat64 y\nfloat64 theta\n' }] },
    { tag: Tag.ADVERTISE, channels: [{ ...(CHANNELS[1] as Channel), schemaEncoding: 'protobuf', schemaData: Buffer.from([1, 2, 3]) }] },
    { tag: Tag.WITHDRAW, channels: [1, 2] },
    { tag: Tag.TELEMETRY, channel: 2, ts: 5, payload: 'numbered', seq: 0 },
    { tag: Tag.TELEMETRY, channel: 2, ts: 5, payload: null, seq: Number.MAX_SAFE_INTEGER },
  ];
  for (const f of frames) t.same(parseRobotFrame(unframe(t, encodeRobotFrame(f))), f, `tag ${f.tag}`);
  const noDetail = { tag: Tag.STATUS, command: 'c-2', stage: 'completed', detail: undefined } as const;
  t.same(parseRobotFrame(unframe(t, encodeRobotFrame(noDetail))), { ...noDetail, detail: null }, 'an undefined detail goes out as nil');
});

t.test('hub frames survive encode → parse', async (t) => {
  const frames: HubFrame[] = [
    { tag: Tag.WELCOME, robotId: '0b1c3e7a-5d2f-4c8e-9a61-3f7d2e4b5c6d', heartbeatMs: 5_000 },
    { tag: Tag.HEARTBEAT },
    { tag: Tag.ERROR, code: 'VALIDATION', message: 'TELEMETRY: channel 9 was not advertised in HELLO', ref: null },
    { tag: Tag.ERROR, code: 'UNKNOWN_COMMAND', message: 'no such command in flight', ref: 'c-1' },
    { tag: Tag.COMMAND, command: 'c-1', name: 'move', args: { x: 1, y: [2, 3], speed: 0.5 }, timeoutMs: 30_000 },
    { tag: Tag.COMMAND, command: 'c-2', name: 'ping', args: null, timeoutMs: 2 ** 33 },
    { tag: Tag.ESTOP, command: 'c-3' },
    { tag: Tag.WELCOME, robotId: '0b1c3e7a-5d2f-4c8e-9a61-3f7d2e4b5c6d', heartbeatMs: 5_000, lastStored: [] },
    {
      tag: Tag.WELCOME,
      robotId: '0b1c3e7a-5d2f-4c8e-9a61-3f7d2e4b5c6d',
      heartbeatMs: 5_000,
      lastStored: [
        [2, 41],
        [7, 2 ** 40],
      ],
    },
    { tag: Tag.ACK, channel: 2, seq: 41 },
    { tag: Tag.ACK, channel: 65_535, seq: Number.MAX_SAFE_INTEGER },
  ];
  for (const f of frames) t.same(parseHubFrame(unframe(t, encodeHubFrame(f))), f, `tag ${f.tag}`);
});

t.test('timestamps beyond 32 bits are int64 on the wire, never float', async (t) => {
  for (const ts of [2 ** 32, 2 ** 32 + 5, Date.now(), Number.MAX_SAFE_INTEGER]) {
    const bytes = encodeRobotFrame({ tag: Tag.TELEMETRY, channel: 1, ts, payload: null });
    // [header 4][0x94 fixarray][0x03 tag][0x01 channel][ts...]
    const marker = bytes[7] as number;
    t.ok(marker === 0xd3 || marker === 0xcf, `ts ${ts}: 0x${marker.toString(16)} (int64 0xd3 or uint64 0xcf)`);
    t.equal(bytes.length, 4 + 3 + 9 + 1, 'a 9-byte integer, then nil');
    const v = marker === 0xd3 ? bytes.readBigInt64BE(8) : bytes.readBigUInt64BE(8);
    t.equal(v, BigInt(ts), 'the exact value');
    t.equal((parseRobotFrame(bytes.subarray(4)) as Extract<RobotFrame, { tag: 3 }>).ts, ts, 'and it parses back as a number');
  }
  const small = encodeRobotFrame({ tag: Tag.TELEMETRY, channel: 1, ts: 2 ** 32 - 1, payload: null });
  t.equal(small[7], 0xce, 'up to 2^32 - 1: uint32');
  // [header 4][0x93][0x02 tag][0xa1 'r'][heartbeatMs...]
  const welcome = encodeHubFrame({ tag: Tag.WELCOME, robotId: 'r', heartbeatMs: 2 ** 40 });
  t.ok(welcome[8] === 0xd3 || welcome[8] === 0xcf, `hub frames too: 0x${welcome[8]?.toString(16)}`);
});

t.test('the exact size of a telemetry frame: 16 bytes plus the payload', async (t) => {
  const payload = { x: 1.5, y: 2.5 };
  const bytes = frameBytes([3, 1, Date.now(), payload]);
  // 4 length + 1 array header + 1 tag + 1 channel + 9 int64 ts = 16, then the payload:
  // de 00 02 (map16 of 2) + a1 78 'x' + cb <8> 1.5 + a1 79 'y' + cb <8> 2.5 = 25.
  t.equal(bytes.length, 41);
  t.equal(bytes.length, 16 + packr.pack(payload).length, '16 + the payload as MessagePack');
  t.same(bytes.subarray(0, 7), Buffer.from([0, 0, 0, 37, 0x94, 0x03, 0x01]));
  t.same(encodeRobotFrame({ tag: Tag.TELEMETRY, channel: 1, ts: Date.now(), payload }).length, 41, 'encodeRobotFrame writes the same');
});

/** Hex as docs/protocol.md prints it (whitespace and line breaks ignored). */
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ROBOT_ID = '7b3e9f2a-4c1d-4e8b-9a6f-2d5c8e1b0a47';
const COMMAND_ID = 'a1c5e9d3-6b2f-4a8e-8d7c-3f9b1e5a2c64';

t.test('the byte examples of the specification (docs/protocol.md, "Robot protocol")', async (t) => {
  const robot: [string, RobotFrame, string][] = [
    [
      'HELLO',
      { tag: Tag.HELLO, version: 1, channels: CHANNELS },
      `00 00 00 36 93 01 01 92 95 01 a4 70 6f 73 65 a7 6d 73 67 70 61 63 6b b4 67 65 6f 6d 65 74 72 79
       5f 6d 73 67 73 2f 50 6f 73 65 32 44 00 95 02 a3 6c 6f 67 a4 6a 73 6f 6e c0 01`,
    ],
    [
      'TELEMETRY, a pose',
      { tag: Tag.TELEMETRY, channel: 1, ts: 1_795_317_766_218, payload: { x: 1.5, y: -0.25, theta: 0.5 } },
      `00 00 00 34 94 03 01 d3 00 00 01 a2 01 47 18 4a de 00 03 a1 78 cb 3f f8 00 00 00 00 00 00 a1 79
       cb bf d0 00 00 00 00 00 00 a5 74 68 65 74 61 cb 3f e0 00 00 00 00 00 00`,
    ],
    [
      'TELEMETRY, 12 bytes of binary',
      { tag: Tag.TELEMETRY, channel: 1, ts: 1_795_317_766_218, payload: hex('000102030405060708090a0b') },
      '00 00 00 1a 94 03 01 d3 00 00 01 a2 01 47 18 4a c4 0c 00 01 02 03 04 05 06 07 08 09 0a 0b',
    ],
    ['HEARTBEAT', { tag: Tag.HEARTBEAT }, '00 00 00 02 91 04'],
    [
      'STATUS accepted',
      { tag: Tag.STATUS, command: COMMAND_ID, stage: 'accepted', detail: null },
      `00 00 00 2a 94 0c d9 24 61 31 63 35 65 39 64 33 2d 36 62 32 66 2d 34 61 38 65 2d 38 64 37 63 2d
       33 66 39 62 31 65 35 61 32 63 36 34 01 c0`,
    ],
    [
      'STATUS completed',
      { tag: Tag.STATUS, command: COMMAND_ID, stage: 'completed', detail: { ok: true } },
      `00 00 00 30 94 0c d9 24 61 31 63 35 65 39 64 33 2d 36 62 32 66 2d 34 61 38 65 2d 38 64 37 63 2d
       33 66 39 62 31 65 35 61 32 63 36 34 03 de 00 01 a2 6f 6b c3`,
    ],
    [
      'STATUS rejected',
      { tag: Tag.STATUS, command: COMMAND_ID, stage: 'rejected', detail: 'obstacle ahead' },
      `00 00 00 38 94 0c d9 24 61 31 63 35 65 39 64 33 2d 36 62 32 66 2d 34 61 38 65 2d 38 64 37 63 2d
       33 66 39 62 31 65 35 61 32 63 36 34 02 ae 6f 62 73 74 61 63 6c 65 20 61 68 65 61 64`,
    ],
    [
      'ADVERTISE, a channel with a JSON Schema',
      {
        tag: Tag.ADVERTISE,
        channels: [
          {
            id: 3,
            name: 'battery',
            encoding: 'json',
            schema: 'Battery',
            delivery: 'latest',
            schemaEncoding: 'jsonschema',
            schemaData: '{"type":"object","properties":{"percent":{"type":"number"}}}',
          },
        ],
      },
      `00 00 00 64 92 0d 91 97 03 a7 62 61 74 74 65 72 79 a4 6a 73 6f 6e a7 42 61 74 74 65 72 79 00 aa
       6a 73 6f 6e 73 63 68 65 6d 61 d9 3c 7b 22 74 79 70 65 22 3a 22 6f 62 6a 65 63 74 22 2c 22 70 72
       6f 70 65 72 74 69 65 73 22 3a 7b 22 70 65 72 63 65 6e 74 22 3a 7b 22 74 79 70 65 22 3a 22 6e 75
       6d 62 65 72 22 7d 7d 7d`,
    ],
    ['WITHDRAW', { tag: Tag.WITHDRAW, channels: [3] }, '00 00 00 04 92 0e 91 03'],
    [
      'TELEMETRY, numbered',
      { tag: Tag.TELEMETRY, channel: 2, ts: 1_795_317_766_218, payload: 'battery low', seq: 42 },
      '00 00 00 19 95 03 02 d3 00 00 01 a2 01 47 18 4a ab 62 61 74 74 65 72 79 20 6c 6f 77 2a',
    ],
  ];
  for (const [what, f, bytes] of robot) {
    t.same(encodeRobotFrame(f).toString('hex'), hex(bytes).toString('hex'), `${what}: ${hex(bytes).length} bytes`);
    t.same(parseRobotFrame(hex(bytes).subarray(4)), f, `${what}: parses back`);
  }
  const hub: [string, HubFrame, string][] = [
    [
      'WELCOME with lastStored',
      { tag: Tag.WELCOME, robotId: ROBOT_ID, heartbeatMs: 5_000, lastStored: [[2, 41]] },
      `00 00 00 2f 94 02 d9 24 37 62 33 65 39 66 32 61 2d 34 63 31 64 2d 34 65 38 62 2d 39 61 36 66 2d
       32 64 35 63 38 65 31 62 30 61 34 37 cd 13 88 91 92 02 29`,
    ],
    ['ACK', { tag: Tag.ACK, channel: 2, seq: 42 }, '00 00 00 04 93 06 02 2a'],
    [
      'WELCOME',
      { tag: Tag.WELCOME, robotId: ROBOT_ID, heartbeatMs: 5_000 },
      `00 00 00 2b 93 02 d9 24 37 62 33 65 39 66 32 61 2d 34 63 31 64 2d 34 65 38 62 2d 39 61 36 66 2d
       32 64 35 63 38 65 31 62 30 61 34 37 cd 13 88`,
    ],
    [
      'ERROR TIMEOUT',
      { tag: Tag.ERROR, code: 'TIMEOUT', message: 'send HELLO within 10000 ms', ref: null },
      `00 00 00 26 94 05 a7 54 49 4d 45 4f 55 54 ba 73 65 6e 64 20 48 45 4c 4c 4f 20 77 69 74 68 69 6e
       20 31 30 30 30 30 20 6d 73 c0`,
    ],
    [
      'ERROR UNKNOWN_COMMAND',
      { tag: Tag.ERROR, code: 'UNKNOWN_COMMAND', message: 'no such command in flight (finished, timed out or never sent)', ref: COMMAND_ID },
      `00 00 00 77 94 05 af 55 4e 4b 4e 4f 57 4e 5f 43 4f 4d 4d 41 4e 44 d9 3d 6e 6f 20 73 75 63 68 20
       63 6f 6d 6d 61 6e 64 20 69 6e 20 66 6c 69 67 68 74 20 28 66 69 6e 69 73 68 65 64 2c 20 74 69 6d
       65 64 20 6f 75 74 20 6f 72 20 6e 65 76 65 72 20 73 65 6e 74 29 d9 24 61 31 63 35 65 39 64 33 2d
       36 62 32 66 2d 34 61 38 65 2d 38 64 37 63 2d 33 66 39 62 31 65 35 61 32 63 36 34`,
    ],
    [
      'COMMAND',
      { tag: Tag.COMMAND, command: COMMAND_ID, name: 'move', args: { x: 1, y: 2 }, timeoutMs: 9_987 },
      `00 00 00 39 95 0a d9 24 61 31 63 35 65 39 64 33 2d 36 62 32 66 2d 34 61 38 65 2d 38 64 37 63 2d
       33 66 39 62 31 65 35 61 32 63 36 34 a4 6d 6f 76 65 de 00 02 a1 78 01 a1 79 02 cd 27 03`,
    ],
    [
      'ESTOP',
      { tag: Tag.ESTOP, command: COMMAND_ID },
      `00 00 00 28 92 0b d9 24 61 31 63 35 65 39 64 33 2d 36 62 32 66 2d 34 61 38 65 2d 38 64 37 63 2d
       33 66 39 62 31 65 35 61 32 63 36 34`,
    ],
  ];
  for (const [what, f, bytes] of hub) {
    t.same(encodeHubFrame(f).toString('hex'), hex(bytes).toString('hex'), `${what}: ${hex(bytes).length} bytes`);
    t.same(parseHubFrame(hex(bytes).subarray(4)), f, `${what}: parses back`);
  }
});

t.test('telemetry overhead: 4 + 1 + 1 + channel + ts + payload', async (t) => {
  const size = (channel: number, ts: number, payload: unknown) => encodeRobotFrame({ tag: Tag.TELEMETRY, channel, ts, payload }).length;
  const epoch = 1_795_317_766_218;
  t.equal(size(1, epoch, null), 17, 'a nil payload: 17 bytes');
  t.equal(size(127, epoch, null), 17, 'channel 127: 1 byte');
  t.equal(size(128, epoch, null), 18, 'channel 128: 2 bytes (cc xx)');
  t.equal(size(255, epoch, null), 18, 'channel 255: 2 bytes');
  t.equal(size(256, epoch, null), 19, 'channel 256: 3 bytes (cd xx xx)');
  t.equal(size(65_535, epoch, null), 19, 'channel 65535: 3 bytes');
  t.equal(size(1, 127, null), 9, 'ts 127: 1 byte');
  t.equal(size(1, 255, null), 10, 'ts 255: 2 bytes');
  t.equal(size(1, 65_535, null), 11, 'ts 65535: 3 bytes');
  t.equal(size(1, 2 ** 32 - 1, null), 13, 'ts 2^32-1: 5 bytes');
  t.equal(size(1, 2 ** 32, null), 17, 'ts 2^32: 9 bytes');
});
