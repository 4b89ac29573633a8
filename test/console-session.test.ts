// One person, two tabs of one browser (they share the session's cookies), with access tokens that
// expire every 5 s: both tabs' sockets are asked to re-authenticate at about the same moment, and
// both must renew without spending the refresh token twice (which the hub takes for theft, ending
// the session). Signing out in one tab signs the other out too.

import t from 'tap';
import { Api } from './helpers/api.js';
import { launch, PASSWORD, say } from './helpers/browser.js';
import { FAST, startTestHub } from './helpers/hub.js';

const TTL_S = 5;

t.test('two tabs outlive their access tokens together, and sign out together', async (t) => {
  const hub = await startTestHub(t, { env: { ...FAST, SB_ACCESS_TOKEN_TTL_S: String(TTL_S) } });
  const api = new Api(hub.url);
  const ada = await api.signUp('ada', PASSWORD);
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'lab' }, { token: ada.token })).body.room.id as string;
  const browser = await launch(t);
  const context = await browser.newContext({ baseURL: hub.url });
  context.setDefaultTimeout(TTL_S * 1000 * 4);
  const errors: string[] = [];
  const refreshes: number[] = [];
  context.on('response', (r) => {
    if (r.url().endsWith('/api/v1/auth/refresh')) refreshes.push(r.status());
  });
  const [one, two] = [await context.newPage(), await context.newPage()];
  for (const p of [one, two]) p.on('pageerror', (e) => errors.push(String(e)));

  await one.goto('/');
  await one.getByLabel('Username').fill('ada');
  await one.getByLabel('Password').fill(PASSWORD);
  await one.getByRole('button', { name: 'Sign in' }).click();
  await one.getByRole('status').getByText('Connected').waitFor();
  // The second tab finds the session in the cookies.
  await two.goto(`/#/room/${room}`);
  await two.getByRole('status').getByText('Connected').waitFor();
  await one.goto(`/#/room/${room}`);
  await one.getByRole('heading', { name: '# lab' }).waitFor();

  // Past two lifetimes of the access token: each tab's socket was asked to re-authenticate, and a
  // refresh happened (the wait ends on the responses, not on a clock).
  await one.waitForResponse((r) => r.url().endsWith('/api/v1/auth/socket-token') && r.status() === 200 && refreshes.length >= 2);
  t.ok(refreshes.length >= 2, `${refreshes.length} refreshes`);
  t.same(
    refreshes.filter((s) => s !== 200),
    [],
    'every refresh succeeded: none spent a token another tab had spent',
  );
  for (const [i, p] of [one, two].entries()) {
    await say(p, `still here ${i}`);
    await p.locator('.msg .body', { hasText: `still here ${i}` }).waitFor();
    await p.locator('.msg.pending').waitFor({ state: 'detached' });
  }
  t.equal(
    (
      await api.get(`/api/v1/rooms/${room}/messages`, {
        token: (await api.post('/api/v1/auth/login', { username: 'ada', password: PASSWORD })).body.accessToken,
      })
    ).body.messages.length,
    2,
  );
  t.equal(await one.locator('.conn').textContent(), 'Connected');

  // Signing out in one tab signs the other out as well.
  await two.getByRole('button', { name: 'Sign out' }).click();
  await one.getByRole('tab', { name: 'Sign in' }).waitFor();
  t.same(errors, [], 'no errors in the pages');
});
