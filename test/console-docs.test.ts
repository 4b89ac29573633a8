// The API reference at /docs in real Chromium: Swagger UI, bundled and served under the same strict
// CSP as the console (a violation would be an error in the page), renders the node's OpenAPI
// document, and "Try it out" sends a request to the node and shows its answer.

import t from 'tap';
import { launch, person, screenshot } from './helpers/browser.js';
import { FAST, startTestHub } from './helpers/hub.js';

t.test('/docs renders the OpenAPI document and tries a request', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const browser = await launch(t);
  const { page: p, errors } = await person(browser, hub.url, { width: 1280, height: 900 });
  const requests: string[] = [];
  p.on('request', (r) => requests.push(r.url()));
  await p.goto('/docs');
  await p
    .getByRole('heading', { name: /Switchboard/ })
    .first()
    .waitFor();
  await p.locator('.opblock').first().waitFor();
  await screenshot(p, 'docs');
  const health = p.locator('.opblock').filter({ hasText: '/healthz' });
  await health.locator('.opblock-summary').click();
  await health.getByRole('button', { name: 'Try it out' }).click();
  await health.getByRole('button', { name: 'Execute' }).click();
  await health.locator('.live-responses-table .response-col_status', { hasText: '200' }).waitFor();
  t.match(await health.locator('.live-responses-table').textContent(), /"status": "ok"/, 'the answer of the node itself');
  // The response schemas are there too: the rooms listing documents its reply's fields.
  const rooms = p.locator('.opblock').filter({ hasText: 'GET/api/v1/rooms' }).first();
  await rooms.locator('.opblock-summary').click();
  await rooms.getByText('nextCursor').first().waitFor();
  t.same(
    requests.filter((u) => !u.startsWith(hub.url)),
    [],
    'nothing from another host',
  );
  t.same(errors, [], 'no errors in the page (no CSP violation)');
});
