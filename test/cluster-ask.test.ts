// Questions every node answers for itself (cluster/ask.ts), over a real NATS: answers come from
// every live node with this node's first; a silent node, a node that sends something that is no
// answer, this node's own answer hanging, or NATS gone each leave an answer out and say `partial`,
// and none of them keeps the others' answers from coming.

import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { ClusterQuestion, isIdList, onlineOf } from '../src/cluster/ask.js';
import { natsUrl } from './helpers/cluster.js';
import { capturedLog } from './helpers/log.js';

const { log } = capturedLog('silent');

async function nats(t: Test): Promise<NatsConnection> {
  const nc = await connect({ servers: natsUrl(), noEcho: true });
  t.teardown(() => nc.close());
  return nc;
}

t.test('every node answers; the missing, the malformed and the slow make it partial', async (t) => {
  const subject = `sb.test.${randomBytes(4).toString('hex')}.ask`;
  let nodes = 2;
  const node = async (holds: string[], answer?: (ids: string[]) => Promise<string[]>) => {
    const nc = await nats(t);
    const q = new ClusterQuestion(answer ?? ((ids: string[]) => ids.filter((id) => holds.includes(id))), isIdList, isIdList, log, {
      nc,
      subject,
      nodes: () => nodes,
    });
    t.teardown(() => q.close());
    // The subscription has reached the server once a round trip has.
    await nc.flush();
    return q;
  };
  const a = await node(['ada']);
  await node(['bob']);
  t.same(await onlineOf(a, ['ada', 'bob', 'eve']), { online: ['ada', 'bob'], partial: false }, 'both nodes answer, in the order asked');
  t.same(await a.ask(['bob']), { answers: [[], ['bob']], partial: false }, "this node's answer first");

  nodes = 3;
  t.same(await onlineOf(a, ['ada', 'bob']), { online: ['ada', 'bob'], partial: true }, 'a third node that is silent: partial, the others still count');

  // A "node" that answers with bytes that are no MessagePack, and one with the wrong shape.
  const rogue = await nats(t);
  rogue.subscribe(subject, {
    callback: (_e, m) => {
      m.respond(new Uint8Array([0xc1]));
    },
  });
  const odd = await nats(t);
  odd.subscribe(subject, {
    callback: (_e, m) => {
      m.respond(new Uint8Array([0x2a]));
    },
  });
  await Promise.all([rogue.flush(), odd.flush()]);
  nodes = 4;
  t.same(await onlineOf(a, ['ada', 'bob']), { online: ['ada', 'bob'], partial: true }, 'no answer from the rogues, and the others are kept');

  const hanging = await node([], () => new Promise<string[]>(() => {}));
  nodes = 5;
  const h = await hanging.ask(['bob']);
  t.equal(h.answers.length, 2, "a node whose own answer hangs still gets the others' (a's and b's; the rogues' are dropped)");
  t.same(h.answers.flat(), ['bob']);
  t.equal(h.partial, true);
});

t.test('without NATS, only this node answers', async (t) => {
  const nc = await connect({ servers: natsUrl(), noEcho: true });
  const q = new ClusterQuestion((ids: string[]) => ids, isIdList, isIdList, log, { nc, subject: 'sb.test.closed', nodes: () => 2 });
  await nc.close();
  t.same(await q.ask(['ada']), { answers: [['ada']], partial: true });
  const single = new ClusterQuestion((ids: string[]) => ids, isIdList, isIdList, log);
  t.same(await single.ask(['ada']), { answers: [['ada']], partial: false }, 'a single node is never partial');
});
