// The Bus's conformance suite, run against every implementation: the in-process one (a cluster of
// one node) and NATS (two nodes on the test NATS server, a cluster name of their own). What one
// node announces reaches every listener of the room on every node, in order; a signal reaches
// every other node and never its sender; unlisten stops both.

import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import t from 'tap';
import type { Bus, RoomListener } from '../src/cluster/bus.js';
import { MemoryBus } from '../src/cluster/bus-memory.js';
import { NatsBus } from '../src/cluster/bus-nats.js';
import type { Message } from '../src/store/messages.js';
import { clusterOf, Heard, log, natsNodes } from './helpers/conformance.js';

const implementations = clusterOf<Bus>(
  () => new MemoryBus(),
  (l, names, node) => new NatsBus(l.nc, names, log, node),
);

const message = (roomId: string, seq: number, body = `m${seq}`): Message => ({
  id: randomUUID(),
  roomId,
  seq,
  senderId: randomUUID(),
  cid: `c${seq}`,
  body,
  createdAt: new Date(1_700_000_000_000 + seq),
});

/** A listener that records what it hears. */
function listener() {
  const batches = new Heard<Message[]>();
  const signals = new Heard<string>();
  let missed = 0;
  const l: RoomListener = {
    messages: batches.push,
    missed: () => void missed++,
    deleted: (node) => signals.push(node),
  };
  return { l, batches, signals, missed: () => missed };
}

for (const [name, nodes] of Object.entries(implementations)) {
  t.test(`${name}: an announced batch reaches every listener of the room on every node, in order`, async (t) => {
    const { nodes: buses, settle } = await nodes(t);
    const room = randomUUID();
    const heard = buses.map(({ port: bus }) => {
      const a = listener();
      const b = listener();
      bus.listen(room, a.l);
      bus.listen(room, b.l);
      return [a, b];
    });
    await settle(); // every subscription is in place at the server
    const [origin] = buses;
    const first = [message(room, 1), message(room, 2)];
    const second = [message(room, 3)];
    origin!.port.announce(room, first);
    origin!.port.announce(room, second);
    for (const [i, pair] of heard.entries()) {
      for (const h of pair) {
        const got = await h.batches.until(2);
        t.same(
          got.map((b) => b.map((m) => m.seq)),
          [[1, 2], [3]],
          `node${i + 1}: both batches, in order`,
        );
        t.same(got[0], first, 'every field of every message');
      }
    }
  });

  t.test(`${name}: a room's listeners hear only that room`, async (t) => {
    const { nodes: buses, settle } = await nodes(t);
    const [r1, r2] = [randomUUID(), randomUUID()];
    const heard = buses.map(({ port: bus }) => {
      const h = listener();
      bus.listen(r2, h.l);
      return h;
    });
    await settle(); // every subscription is in place at the server
    buses[0]!.port.announce(r1, [message(r1, 1)]);
    buses[0]!.port.announce(r2, [message(r2, 7)]);
    await settle();
    for (const h of heard)
      t.same(
        (await h.batches.until(1)).map((b) => b.map((m) => m.seq)),
        [[7]],
        'only the batch of its room',
      );
  });

  t.test(`${name}: unlisten stops delivery to that listener, not to the others`, async (t) => {
    const { nodes: buses, settle } = await nodes(t);
    const room = randomUUID();
    const kept = buses.map(({ port: bus }) => {
      const h = listener();
      bus.listen(room, h.l);
      return h;
    });
    const gone = buses.map(({ port: bus }) => {
      const h = listener();
      bus.listen(room, h.l)();
      return h;
    });
    // A node with no listener left for the room hears nothing of it either.
    const last = buses.at(-1)!;
    const other = randomUUID();
    const dropped = listener();
    last.port.listen(other, dropped.l)();
    await settle(); // every subscription is in place at the server
    buses[0]!.port.announce(room, [message(room, 1)]);
    buses[0]!.port.announce(other, [message(other, 1)]);
    await settle();
    for (const h of kept) await h.batches.until(1);
    for (const h of [...gone, dropped]) t.same(h.batches.items, [], 'an unlistened listener hears nothing');
  });

  t.test(`${name}: a deletion signal reaches every other node, never its sender`, async (t) => {
    const { nodes: buses, settle } = await nodes(t);
    const room = randomUUID();
    const heard = buses.map(({ port: bus }) => {
      const h = listener();
      bus.listen(room, h.l);
      return h;
    });
    await settle(); // every subscription is in place at the server
    const [origin] = buses;
    origin!.port.deleted(room);
    await settle();
    t.same(heard[0]!.signals.items, [], 'the sender does not hear itself');
    for (const h of heard.slice(1)) t.same(await h.signals.until(1), [origin!.node]);
    for (const h of heard) t.same(h.batches.items, [], 'signals are not messages');
  });
}

t.test('nats: missed() tells every listener after a reconnect, and a batch over max_payload arrives as its last message', async (t) => {
  const { names, links, settle } = await natsNodes(t, 2);
  const [a, b] = links.map((l, i) => new NatsBus(l.nc, names, log, `node${i + 1}`, 3_600_000));
  t.teardown(() => Promise.all([a!.close(), b!.close()]));
  const room = randomUUID();
  const here = listener();
  const there = listener();
  a!.listen(room, here.l);
  b!.listen(room, there.l);
  b!.reconnected();
  t.equal(there.missed(), 1, 'told to compare with the store');
  t.equal(here.missed(), 0, 'only the reconnected node');

  await settle(); // every subscription is in place at the server
  const big = 'x'.repeat(Math.ceil((links[0]!.nc.info?.max_payload ?? 1_048_576) * 0.6));
  const batch = [message(room, 1, big), message(room, 2, big)];
  a!.announce(room, batch);
  await settle();
  t.same((await here.batches.until(1))[0], batch, 'the announcing node hears the whole batch');
  t.same(
    (await there.batches.until(1))[0]!.map((m) => m.seq),
    [2],
    'the other node hears its last message, and its room actor reads the rest as a gap',
  );
});

t.test('nats: an undecodable batch and a listener that throws are logged; the room keeps flowing', async (t) => {
  const { names, links, settle } = await natsNodes(t, 2);
  const lines: { level: number; msg: string; room?: string }[] = [];
  const captured = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const a = new NatsBus(links[0]!.nc, names, log, 'node1', 3_600_000);
  const b = new NatsBus(links[1]!.nc, names, captured, 'node2', 3_600_000);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const room = randomUUID();
  const heard = listener();
  let throws = 1;
  b.listen(room, {
    ...heard.l,
    messages: (batch) => {
      if (throws-- > 0) throw new Error('listener bug');
      heard.l.messages(batch);
    },
  });
  await settle();
  links[0]!.nc.publish(names.room(room), new Uint8Array([0xc1])); // 0xc1 is never used in MessagePack
  a.announce(room, [message(room, 1)]);
  a.announce(room, [message(room, 2)]);
  await settle();
  t.same(
    (await heard.batches.until(1)).map((batch) => batch.map((m) => m.seq)),
    [[2]],
    'the batch after the failures arrives: the subscription survived both',
  );
  t.same(
    lines.map((l) => [l.msg, l.room]),
    [
      ['undecodable batch from the cluster', room],
      ['batch from the cluster could not be handled', room],
    ],
  );
});
