// ADVERTISE and WITHDRAW are rate-limited per link (each costs a store read and a `channels` frame to
// every watcher): a robot that floods them gets its burst's worth through, then ERROR RATE_LIMITED,
// and the excess changes nothing, at the link (its telemetry is judged by the channels it really
// has) and at the watchers.

import t from 'tap';
import type { Channel } from '../src/protocol/robot.js';
import { CHANNEL_CHANGES_BURST } from '../src/transport/robot-tls.js';
import { startRobotHub } from './helpers/robots.js';
import type { Frame } from './helpers/ws.js';

const h = await startRobotHub(t);

const BATTERY: Channel = { id: 4, name: 'battery', encoding: 'msgpack', schema: null, delivery: 'latest' };

t.test('a flood of ADVERTISE / WITHDRAW: a burst goes through, the rest is refused and changes nothing', async (t) => {
  const owner = await h.signUp('advrate');
  const r = await h.enroll(owner);
  const robot = await h.connectRobot(r, [BATTERY]);
  const every = await h.user(owner);
  await every.request({ t: 'watch', robot: r.id });
  const errors: { code: string; message: string }[] = [];
  robot.on('hubError', (e) => errors.push(e));

  const FLOOD = 200;
  for (let i = 0; i < FLOOD; i++) {
    if (i % 2) robot.withdraw([5]);
    else robot.advertise([{ id: 5, name: `c${i}`, encoding: 'json', schema: null, delivery: 'latest' }]);
  }
  robot.telemetry(4, { i: 'marker' });
  await every.next((f) => f.t === 'tm' && f.ch === 4 && f.data.i === 'marker', 'the link is still up');
  await every.barrier();
  const changes = every.all('channels');
  // The burst, and what the bucket refilled (10 a second) while the flood was read: far from 200.
  t.ok(changes.length >= CHANNEL_CHANGES_BURST && changes.length <= CHANNEL_CHANGES_BURST + 5, `${changes.length} changes went through`);
  t.ok(
    errors.some((e) => e.code === 'RATE_LIMITED' && /ADVERTISE and WITHDRAW/.test(e.message)),
    'the robot is told',
  );
  t.ok(errors.filter((e) => e.code === 'RATE_LIMITED').length <= 2, 'told at most once a second');

  // What the link holds is what the watchers heard last: a refused ADVERTISE added nothing.
  const last = changes.at(-1) as Frame;
  const has5 = last.channels.some((c: Frame) => c.id === 5);
  robot.telemetry(5, { i: 'probe' });
  robot.telemetry(4, { i: 'after probe' });
  await every.next((f) => f.t === 'tm' && f.ch === 4 && f.data.i === 'after probe', 'the probe was judged');
  await every.barrier();
  t.equal(
    every.all('tm').some((f) => f.ch === 5 && f.data.i === 'probe'),
    has5,
    'channel 5 takes samples exactly if the last change the watchers heard advertised it',
  );
});
