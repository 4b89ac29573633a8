// The wire encoding: plain MessagePack that any library reads, with millisecond timestamps as
// 64-bit integers (not floats), and JSON with the same structures.

import { Unpackr } from 'msgpackr';
import t from 'tap';
import { decode, encode } from '../src/protocol/codec.js';

const msg = { t: 'msg', room: '3f2b8c1e-6a4d-4f7b-9e12-5c8d0a7b6e91', seq: 7, mid: 'm', from: null, cid: 'c', ts: 1_795_317_588_559, body: 'hé 😀' };

t.test('msgpack: timestamps are int64, everything round-trips', async (t) => {
  const bytes = encode(msg, 'msgpack') as Uint8Array;
  const strict = new Unpackr({ useRecords: false, int64AsType: 'bigint' }).unpack(bytes);
  t.equal(typeof strict.ts, 'bigint', 'a decoder sees an integer type for ts');
  t.equal(strict.ts, 1_795_317_588_559n);
  t.notOk(Buffer.from(bytes).includes(0xcb), 'no float64 anywhere');
  t.same(decode(bytes, 'msgpack'), msg);
  const history = { t: 'history', id: 1, room: msg.room, lastSeq: 7, messages: [{ seq: 7, mid: 'm', from: null, cid: 'c', ts: msg.ts, body: 'x' }] };
  t.equal(
    typeof new Unpackr({ useRecords: false, int64AsType: 'bigint' }).unpack(encode(history, 'msgpack') as Uint8Array).messages[0].ts,
    'bigint',
    'history timestamps too',
  );
  t.same(decode(encode(history, 'msgpack') as Uint8Array, 'msgpack'), history);
  t.same(msg, { ...msg }, 'the frame passed in is not modified');
});

t.test('json: the same structures as text', async (t) => {
  t.same(decode(encode(msg, 'json') as string, 'json'), msg);
  t.throws(() => decode(new Uint8Array([0xff, 0xfe]), 'json'), 'invalid UTF-8 is refused');
  t.throws(() => decode('{}', 'msgpack'), { message: /binary/ });
});
