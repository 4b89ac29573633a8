// RobotView alone, with a fanout that records: an ADVERTISE that gives an existing id a new
// descriptor drops the id's latest sample (a same descriptor keeps it); what is remembered of
// numbered samples is pruned when their channel's name is gone (names can be cycled without the
// memory growing) and bounded in bytes per channel.

import t from 'tap';
import { RECENT, RECENT_BYTES, RobotView } from '../src/actors/robot-view.js';
import type { Channel } from '../src/protocol/robot.js';

const fanout = { publish() {}, conflate() {} } as unknown as ConstructorParameters<typeof RobotView>[1];
const tm = (ch: number, seq?: number) => ({ t: 'tm' as const, robot: 'r1', ch, ts: 0, data: null, ...(seq === undefined ? {} : { seq }) });

const POSE: Channel = { id: 1, name: 'pose', encoding: 'json', schema: null, delivery: 'latest' };

t.test('a new descriptor at an id drops its latest sample; the same one keeps it', async (t) => {
  const v = new RobotView('r1', fanout);
  v.setChannels([POSE]);
  v.sample(1, 1, { x: 1 }, tm(1));
  v.setChannels([{ ...POSE }]);
  t.ok(v.latest.has(1), 'the same descriptor again: kept');
  v.setChannels([{ ...POSE, encoding: 'msgpack' }]);
  t.notOk(v.latest.has(1), 'another encoding: dropped');
  v.sample(1, 2, { x: 2 }, tm(1));
  v.setChannels([{ ...POSE, name: 'pose2', encoding: 'msgpack' }]);
  t.notOk(v.latest.has(1), 'another name: dropped');
  v.sample(1, 3, { x: 3 }, tm(1));
  v.setChannels([{ ...POSE, name: 'pose2', encoding: 'msgpack', schemaEncoding: 'jsonschema', schemaData: '{}' }]);
  t.notOk(v.latest.has(1), 'another schema: dropped');
  v.sample(1, 4, { x: 4 }, tm(1));
  v.setChannels([{ ...POSE, name: 'pose2', encoding: 'msgpack', schemaEncoding: 'jsonschema', schemaData: '{}' }]);
  t.ok(v.latest.has(1), 'unchanged: kept');
});

t.test('cycling channel names does not grow what is remembered', async (t) => {
  const v = new RobotView('r1', fanout);
  for (let i = 0; i < 1_000; i++) {
    const ch: Channel = { id: 1, name: `log-${i}`, encoding: 'json', schema: null, delivery: 'reliable' };
    v.setChannels([ch]);
    v.sample(1, i, 'x', tm(1, i));
    v.setChannels([]); // WITHDRAW
  }
  t.same(v.remembered(), [], 'nothing of withdrawn names');
  t.equal(v.numbered.size, 0);
  const ch: Channel = { id: 1, name: 'log', encoding: 'json', schema: null, delivery: 'reliable' };
  v.setChannels([ch]);
  v.sample(1, 0, 'x', tm(1, 5));
  v.setChannels([ch, { ...POSE, id: 2 }]);
  t.same(v.remembered(), ['log'], 'a channel that stays is kept');
  t.equal(v.numbered.get('log'), 5);
});

t.test('the memory of a channel is bounded in count and bytes', async (t) => {
  const v = new RobotView('r1', fanout);
  v.setChannels([{ id: 1, name: 'log', encoding: 'raw', schema: null, delivery: 'reliable' }]);
  for (let seq = 1; seq <= RECENT * 2; seq++) v.sample(1, 0, 'x', tm(1, seq));
  t.equal(v.recent('log').length, RECENT, 'by count');
  t.equal(v.recent('log')[0]?.seq, RECENT + 1, 'the newest kept');
  const big = Buffer.alloc(RECENT_BYTES / 4);
  for (let seq = 1_000; seq < 1_100; seq++) v.sample(1, 0, big, tm(1, seq));
  const bytes = v.recent('log').reduce((n, s) => n + ((s.data as Buffer).length ?? 1), 0);
  t.ok(bytes <= RECENT_BYTES, `by bytes: ${bytes}`);
  t.equal(v.recent('log').at(-1)?.seq, 1_099);
  v.sample(1, 0, Buffer.alloc(RECENT_BYTES * 2), tm(1, 2_000));
  t.same(
    v.recent('log').map((s) => s.seq),
    [2_000],
    'a sample over the bound alone is still kept, alone',
  );
});
