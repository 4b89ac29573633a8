// Presence's conformance suite, run against every implementation: the single node (a cluster of
// one) and NATS (two nodes on the test NATS server, a cluster name of their own). A share or a
// typing notice reaches every other node's listeners of the room, never the sender's; a node
// leaving is heard by every listener as an empty set; unlisten stops delivery.

import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { Presence, PresenceNews } from '../src/cluster/presence.js';
import { MemoryPresence } from '../src/cluster/presence-memory.js';
import { NatsPresence } from '../src/cluster/presence-nats.js';
import { clusterOf, Heard, log } from './helpers/conformance.js';

const implementations = clusterOf<Presence>(
  () => new MemoryPresence(),
  (l, names, node) => new NatsPresence(l.nc, names, log, node),
);

const ann = { id: randomUUID(), username: 'ann' };
const bob = { id: randomUUID(), username: 'bob' };

for (const [name, make] of Object.entries(implementations)) {
  t.test(`${name}: shares and typing reach every other node's listeners of the room, never the sender's`, async (t) => {
    const { nodes, settle } = await make(t);
    const [room, elsewhere] = [randomUUID(), randomUUID()];
    const heard = nodes.map(({ port: presence }) => {
      const h = new Heard<[string, PresenceNews]>();
      presence.listen(room, (node, news) => h.push([node, news]));
      return h;
    });
    const other = nodes.map(({ port: presence }) => {
      const h = new Heard<[string, PresenceNews]>();
      presence.listen(elsewhere, (node, news) => h.push([node, news]));
      return h;
    });
    await settle(); // every subscription is in place at the server
    const origin = nodes[0]!;
    origin.port.share(room, [ann, bob], true);
    origin.port.typing(room, ann);
    origin.port.share(room, [], false);
    await settle();
    t.same(heard[0]!.items, [], 'the sender hears nothing of its own');
    for (const h of heard.slice(1)) {
      t.same(await h.until(3), [
        [origin.node, { kind: 'present', users: [ann, bob], ask: true }],
        [origin.node, { kind: 'typing', user: ann }],
        [origin.node, { kind: 'present', users: [], ask: false }],
      ]);
    }
    for (const h of other) t.same(h.items, [], 'another room hears nothing');
  });

  t.test(`${name}: a node that left is heard by every listener as nobody present`, async (t) => {
    const { nodes } = await make(t);
    const rooms = [randomUUID(), randomUUID()];
    const heard = rooms.map((room) => {
      const h = new Heard<[string, PresenceNews]>();
      nodes[0]!.port.listen(room, (node, news) => h.push([node, news]));
      return h;
    });
    nodes[0]!.port.nodeLeft('node9');
    for (const h of heard) t.same(h.items, [['node9', { kind: 'present', users: [], ask: false }]]);
  });

  t.test(`${name}: unlisten stops delivery`, async (t) => {
    const { nodes, settle } = await make(t);
    const room = randomUUID();
    const gone = nodes.map(({ port: presence }) => {
      const h = new Heard<[string, PresenceNews]>();
      presence.listen(room, (node, news) => h.push([node, news]))();
      return h;
    });
    await settle(); // every subscription is in place at the server
    nodes[0]!.port.share(room, [ann], true);
    nodes[0]!.port.nodeLeft('node9');
    await settle();
    for (const h of gone) t.same(h.items, []);
  });
}
