// Foxglove on another node than the robot's: two nodes over real NATS and PostgreSQL, the robot
// on the first, Foxglove's client on the second. Its channels, its samples and a channel it
// advertises later all cross the cluster.

import t from 'tap';
import type { Hub } from '../src/hub.js';
import type { Api } from './helpers/api.js';
import { listed, robotCluster } from './helpers/cluster-robots.js';
import { json, openFoxglove } from './helpers/foxglove.js';

t.test('a robot on node 1 opened in Foxglove on node 2', async (t) => {
  const { nodes, apis, withViewer, attach } = await robotCluster(t, 2);
  const [a, b] = nodes as [Hub, Hub];
  const { owner, viewer, r } = await withViewer();
  const robot = await attach(a, r);
  await listed(apis[1] as Api, r, owner);

  const fox = await openFoxglove(t, b.url, viewer.token, r.id);
  await fox.next((e) => e.kind === 'advertise' && e.channels.length === 2, "the robot's channels, on node 2");
  const sub = fox.client.subscribe(fox.channel('/pose'));
  const got = fox.next((e) => e.kind === 'message' && e.sub === sub, 'a pose sample through NATS');
  const pump = setInterval(() => robot.telemetry(1, { x: 4, y: 2, theta: 0 }), 20);
  t.match(json(await got.finally(() => clearInterval(pump))), { x: 4, y: 2 }, 'the sample crossed the cluster');

  robot.advertise([{ id: 9, name: 'temp', encoding: 'json', schema: null, delivery: 'reliable' }]);
  await fox.next((e) => e.kind === 'advertise' && e.channels.some((c) => c.topic === '/temp'), 'a channel advertised later, on node 2');
  const tempSub = fox.client.subscribe(fox.channel('/temp'));
  const temp = fox.next((e) => e.kind === 'message' && e.sub === tempSub, 'a reliable sample through NATS');
  const pumpTemp = setInterval(() => robot.telemetry(9, { c: 21 }), 20);
  t.match(json(await temp.finally(() => clearInterval(pumpTemp))), { c: 21 });
});
