// The sb.v1 examples of docs/protocol.md: every JSON frame printed with its MessagePack bytes is
// encoded by the hub's own codec and must give exactly those bytes, of the stated length, so the
// specification cannot drift from the implementation. (A frame whose MessagePack form differs from
// its JSON one, binary `tm` data, is printed with prose between the two and is not matched here.)

import { readFileSync } from 'node:fs';
import t from 'tap';
import { encode } from '../src/protocol/codec.js';

const doc = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
const EXAMPLE = /```json\n(.*?)\n```\n\n(?:[^\n`]*\n\n)?MessagePack \((\d+) bytes\):\n\n```text\n([\s\S]*?)```/g;

t.test('every sb.v1 JSON example with a MessagePack dump encodes to exactly those bytes', async (t) => {
  const examples = [...doc.matchAll(EXAMPLE)];
  t.ok(examples.length >= 50, `${examples.length} examples found`);
  for (const [, json, length, dump] of examples) {
    const frame = JSON.parse(json as string);
    const bytes = Buffer.from(encode(frame, 'msgpack') as Uint8Array);
    t.equal(bytes.toString('hex'), (dump as string).replace(/\s+/g, ''), `${frame.t}: ${(json as string).slice(0, 60)}`);
    t.equal(bytes.length, Number(length), `${frame.t}: ${length} bytes, as stated`);
  }
});
