// The console's operators view in real Chromium, on a two-node cluster (real NATS and
// PostgreSQL): an admin signed in on one node sees both nodes with their figures, finds an account
// and disables it, and creates an API key whose secret is shown once. The admin endpoints behind it
// are checked over HTTP too: admins only, every node answering for itself.

import t from 'tap';
import { WebSocket } from 'ws';
import { launch, PASSWORD, person, screenshot, signIn } from './helpers/browser.js';
import { startCluster } from './helpers/cluster.js';
import { FAST } from './helpers/hub.js';
import { waitUntil } from './helpers/robots.js';

t.test('an admin sees both nodes of a cluster, and manages accounts and keys', async (t) => {
  const cluster = await startCluster(t, 2, FAST);
  const [api1, api2] = cluster.apis as [(typeof cluster.apis)[0], (typeof cluster.apis)[0]];
  await api1.signUp('root', PASSWORD);
  await cluster.nodes[0]?.store.users.makeAdmin('root');
  // Signed in again: the admin's tokens say so from the next login on.
  const root = { token: (await api1.post('/api/v1/auth/login', { username: 'root', password: PASSWORD })).body.accessToken as string };
  const eve = await api2.signUp('eve', PASSWORD);
  await waitUntil(
    async () => (await api1.get('/readyz')).body.cluster?.nodes,
    (n) => n?.length === 2,
    'node 1 knows both nodes',
    15_000,
  );

  await t.test('GET /api/v1/admin/nodes: every node answers for itself; admins only', async (t) => {
    // Eve holds a socket on node 2: node 1's answer must say so through node 2's own figures.
    const ws = new WebSocket(`${cluster.nodes[1]?.url.replace('http', 'ws')}/ws?token=${eve.token}`, ['sb.v1.json']);
    t.teardown(() => ws.close());
    await new Promise((resolve, reject) => {
      ws.once('message', resolve);
      ws.once('error', reject);
    });
    const r = await api1.get('/api/v1/admin/nodes', { token: root.token });
    t.equal(r.status, 200);
    t.equal(r.body.partial, false);
    t.same(
      r.body.nodes.map((n: { node: string }) => n.node),
      ['node1', 'node2'],
      'this node first, then the other',
    );
    const [n1, n2] = r.body.nodes;
    t.equal(n1.ready, true);
    t.equal(n2.ready, true);
    t.equal(n2.connections, 1, "node 2 counts eve's socket");
    t.equal(n1.connections, 0);
    t.ok(n1.rssBytes > 0 && n1.cpuSeconds > 0 && n1.startedAt <= n1.at);
    const refused = await api1.get('/api/v1/admin/nodes', { token: eve.token });
    t.equal(refused.status, 403);
    t.equal(refused.body.error.code, 'FORBIDDEN');
    t.equal((await api1.get('/api/v1/admin/users?q=eve', { token: eve.token })).status, 403);
    const users = await api1.get('/api/v1/admin/users?q=', { token: root.token });
    t.same(
      users.body.users.map((u: { username: string; disabledAt: null }) => [u.username, u.disabledAt]),
      [
        ['eve', null],
        ['root', null],
      ],
      'everyone, the admin too, with their state',
    );
  });

  const browser = await launch(t);
  const { page: p, errors } = await person(browser, cluster.nodes[0]?.url as string, { width: 1280, height: 900 });
  await signIn(p, 'root');
  await p.getByRole('link', { name: 'Operators' }).click();

  await t.test('the nodes, with charts of their figures', async (t) => {
    const nodes = p.getByRole('region', { name: 'Nodes' });
    for (const id of ['node1', 'node2'])
      await nodes
        .getByRole('row', { name: new RegExp(`^${id}\\b`) })
        .getByRole('cell', { name: 'ready', exact: true })
        .waitFor();
    await nodes.getByRole('img', { name: 'Chart of Messages stored / s' }).waitFor();
    t.equal(await nodes.getByRole('img').count(), 6, 'six charts');
    t.equal(await nodes.getByRole('cell', { name: 'not ready' }).count(), 0, 'no node is out of rotation');
    await screenshot(p, 'operators');
  });

  await t.test('an account disabled from the console cannot sign in', async (t) => {
    await p.getByRole('tab', { name: 'Accounts' }).click();
    await p.getByLabel('Find accounts').fill('eve');
    await p.getByRole('button', { name: 'Search' }).click();
    await p.getByRole('button', { name: 'Disable eve' }).click();
    await p.getByRole('button', { name: 'Enable eve' }).waitFor();
    const login = await api2.post('/api/v1/auth/login', { username: 'eve', password: PASSWORD });
    t.equal(login.status, 403);
    t.equal(login.body.error.code, 'ACCOUNT_DISABLED');
  });

  await t.test('an API key: its secret once, then only its prefix', async (t) => {
    await p.getByRole('tab', { name: 'Keys and webhooks' }).click();
    await p.getByLabel("New key's name").fill('deploys');
    await p.getByLabel('publish').check();
    await p.getByRole('button', { name: 'Create key' }).click();
    const secret = await p.getByRole('textbox', { name: 'Secret' }).inputValue();
    t.match(secret, /^sbk_[A-Za-z0-9_-]{43}$/);
    await p.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
    await p.getByRole('cell', { name: 'deploys' }).waitFor();
    t.notMatch(await p.locator('table').first().textContent(), secret, 'the list shows no secret');
    const posted = await api2.post('/api/v1/server/rooms', { name: 'ops' }, { token: secret });
    t.equal(posted.status, 403, 'the key works, within its scopes (publish, not rooms)');
    t.equal(posted.body.error.scope, 'rooms');
  });

  t.same(errors, [], 'no errors in the page');
});
