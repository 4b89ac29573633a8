// The Python library against a real node, after a restart: a reliable channel with stored history
// brought up with ADVERTISE (not HELLO). The hub answers ACK [channelId, lastStored]; the library
// numbers above it, and a sample numbered before that ACK arrived (taken for a duplicate) is
// numbered again and sent again: the watcher gets every new sample once, above the old numbers.

import t from 'tap';
import type { Channel } from '../src/protocol/robot.js';
import { robotFiles, startPyRobot } from './helpers/python-robot.js';
import { startRobotHub } from './helpers/robots.js';

const h = await startRobotHub(t);
const robotPort = h.hub.robots?.port ?? 0;
const JOURNAL: Channel = { id: 9, name: 'journal', encoding: 'json', schema: null, delivery: 'reliable' };

t.test('a restarted Python robot advertising a channel with history continues above it', async (t) => {
  const owner = await h.signUp('pyadv');
  const r = await h.enroll(owner);
  // Its life before the restart: seqs 1-5 of `journal` stored.
  const before = await h.connectRobot(r, [JOURNAL]);
  const stored = new Promise<void>((resolve) => before.on('ack', (_ch, s) => s >= 5 && resolve()));
  for (let seq = 1; seq <= 5; seq++) before.reliable(JOURNAL.id, seq, { n: seq });
  await stored;
  await before.close();

  const u = await h.user(owner);
  await u.request({ t: 'watch', robot: r.id });
  const py = startPyRobot(t, robotPort, await robotFiles(t, { cert: r.cert, key: r.key, ca: h.caPem }), ['--reliable']);
  await py.next((f) => f.event === 'welcome', 'WELCOME');
  py.send({ op: 'advertise', channel: JOURNAL });
  await py.next((f) => f.event === 'advertised', 'advertised');
  // At once, before the ACK can have arrived: numbered 1 by a library that knows nothing yet.
  py.send({ op: 'publish', channel: 'journal', payload: { n: 'a' } });
  const a = await u.next((f) => f.t === 'tm' && f.ch === JOURNAL.id, 'the first new sample');
  t.match(a, { seq: 6, data: { n: 'a' } }, 'numbered above what the hub stored');
  py.send({ op: 'publish', channel: 'journal', payload: { n: 'b' } });
  const b = await u.next((f) => f.t === 'tm' && f.ch === JOURNAL.id && f.data.n === 'b', 'the next one');
  t.equal(b.seq, 7);
  await u.barrier();
  t.equal(u.frames.filter((f) => f.t === 'tm' && f.ch === JOURNAL.id).length, 2, 'each once');
  t.equal((await py.stop()).code, 0);
});
