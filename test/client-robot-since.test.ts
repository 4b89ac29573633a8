// The SDK's robot entry alone, with a scripted connection: a numbered sample at or below the last
// seen of its channel (the hub sent it again: the robot replayed it after its link was closed
// before the ACK) is dropped, not reported twice; the replay points (`since`) follow the robot's
// channels, so cycling channel names never makes the `watch` carry more than the hub's 64.

import t from 'tap';
import { SwitchboardError } from '../src/client/errors.js';
import type { RobotsHost, TelemetrySample } from '../src/client/robot-types.js';
import { RobotEntry } from '../src/client/robots.js';
import type { ChannelInfo, ServerFrame } from '../src/protocol/frames.js';

const stops: (() => void)[] = [];
t.afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

function rig() {
  const sent: { frame: Record<string, unknown>; reply: (f: ServerFrame) => void }[] = [];
  let nextId = 1;
  const host = {
    isOpen: () => true,
    timeoutMs: 5_000,
    retryDelay: () => 10,
    userId: () => 'u1',
    ended: () => undefined,
    report: () => {},
    requests: {
      send(frame: Record<string, unknown>, h: { reply: (f: ServerFrame) => void }) {
        sent.push({ frame, reply: h.reply });
        return nextId++;
      },
      forget() {},
    },
  } as unknown as RobotsHost;
  const entry = new RobotEntry('r1', host, new Map());
  // Stops its retries: a watch left unanswered is asked again.
  stops.push(() => entry.fail(new SwitchboardError('CLOSED', 'the test ended')));
  const samples: TelemetrySample[] = [];
  entry.handle.on('telemetry', (s) => samples.push(s));
  const answer = (channels: ChannelInfo[], online = true) => {
    const req = sent.at(-1);
    if (!req) throw new Error('no watch sent');
    req.reply({ t: 'watching', id: 1, robot: 'r1', name: 'r', role: 'owner', online, lastSeen: null, channels, latest: [], lease: null } as ServerFrame);
  };
  return { entry, sent, samples, answer };
}

const reliable = (id: number, name: string) => ({ id, name, encoding: 'json', schema: null, delivery: 'reliable' }) as ChannelInfo;
const tm = (ch: number, seq: number) => ({ t: 'tm' as const, robot: 'r1', ch, ts: seq, data: seq, seq });

t.test('a sample at or below the last seen seq of its channel is dropped', async (t) => {
  const { entry, samples, answer } = rig();
  const watched = entry.watch();
  answer([reliable(2, 'log'), reliable(3, 'audit')]);
  await watched;
  for (const seq of [1, 2, 3, 2, 3, 4, 1]) entry.onTelemetry(tm(2, seq));
  entry.onTelemetry(tm(3, 1));
  t.same(
    samples.map((s) => [s.ch, s.seq]),
    [
      [2, 1],
      [2, 2],
      [2, 3],
      [2, 4],
      [3, 1],
    ],
    'each seq once per channel, in order',
  );
});

t.test('the replay points follow the robot channels and stay within 64', async (t) => {
  const { entry, sent, answer } = rig();
  const watched = entry.watch();
  answer([reliable(1, 'log-0')]);
  await watched;
  for (let i = 0; i < 200; i++) {
    entry.onChannels({ t: 'channels', robot: 'r1', channels: [reliable(1, `log-${i}`)] });
    entry.onTelemetry(tm(1, i + 1));
  }
  entry.lost();
  entry.resume(); // the re-watch after a reconnect carries the replay points
  t.same(sent.at(-1)?.frame.since, { 'log-199': 200 }, 'only the current channel');

  // An offline robot's channels may not be known: its replay points are kept, at most 64.
  const other = rig();
  const w = other.entry.watch({ since: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`c${i}`, i])) });
  other.answer([], false);
  await w;
  other.entry.lost();
  other.entry.resume();
  t.equal(Object.keys(other.sent.at(-1)?.frame.since as object).length, 64, 'capped');
  t.ok(Object.keys(other.sent[0]?.frame.since as object).length <= 64, 'the first watch too');
});
