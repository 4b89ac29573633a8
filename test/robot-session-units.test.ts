// RobotSession alone, with an actor whose mailbox is full: a numbered sample or a channel list it
// refuses closes the link with UNAVAILABLE (the next seq's cumulative ACK would otherwise cover the
// lost sample); an unnumbered sample is only dropped.

import { pino } from 'pino';
import t from 'tap';
import type { RobotConnection } from '../src/actors/ports.js';
import type { RobotMsg, RobotReplies, RobotReply } from '../src/actors/robot.js';
import { RobotSession } from '../src/actors/robot-session.js';
import type { ActorRef } from '../src/actors/runtime.js';
import { Tag } from '../src/protocol/robot.js';

async function rig() {
  const told: RobotMsg[] = [];
  let full = false;
  const robot = {
    tell: (m: RobotMsg) => {
      if (full) return false;
      told.push(m);
      return true;
    },
    ask: async () => [],
  } as unknown as ActorRef<RobotMsg, RobotReply, RobotReplies>;
  const link = { closedWith: '' };
  const conn = {
    robotId: 'r1',
    closed: false,
    close(code: string) {
      link.closedWith = code;
    },
  } as unknown as RobotConnection;
  const session = await RobotSession.open(conn, [], robot, pino({ level: 'silent' }));
  return { session, told, link, fill: () => (full = true) };
}

t.test('a full mailbox: an unnumbered sample is dropped, the link stays', async (t) => {
  const { session, link, fill } = await rig();
  fill();
  session.onFrame({ tag: Tag.TELEMETRY, channel: 1, ts: 0, payload: null });
  t.equal(link.closedWith, '');
});

t.test('a full mailbox: a numbered sample closes the link with UNAVAILABLE', async (t) => {
  const { session, link, told, fill } = await rig();
  session.onFrame({ tag: Tag.TELEMETRY, channel: 1, ts: 0, payload: null, seq: 1 });
  t.equal(told.length, 1, 'taken while there is room');
  fill();
  session.onFrame({ tag: Tag.TELEMETRY, channel: 1, ts: 0, payload: null, seq: 2 });
  t.equal(link.closedWith, 'UNAVAILABLE');
});

t.test('a full mailbox: a channel list closes the link with UNAVAILABLE', async (t) => {
  const { session, link, fill } = await rig();
  fill();
  session.onChannels([]);
  t.equal(link.closedWith, 'UNAVAILABLE');
});
