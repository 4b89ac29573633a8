// The console's accessibility in real Chromium: axe-core (WCAG 2.1 A and AA rules: names and
// labels, roles, contrast, ...) on every main screen, in the light and the dark theme; and the
// chat used with the keyboard alone: sign in, open a room, write, send.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';
import t from 'tap';
import { launch, PASSWORD, person, signIn } from './helpers/browser.js';
import { startRobotHub } from './helpers/robots.js';

const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface Violation {
  id: string;
  impact: string;
  help: string;
  nodes: { target: string[] }[];
}

/** axe's violations on the page as it is (injected through the debugger: the page's CSP allows no injected script). */
async function violations(p: Page): Promise<string[]> {
  await p.evaluate(axeSource);
  const found = (await p.evaluate(() =>
    (globalThis as any).axe
      .run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
      .then((r: { violations: unknown }) => r.violations),
  )) as Violation[];
  return found.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

t.test('accessibility of the main screens, light and dark', async (t) => {
  const rh = await startRobotHub(t);
  const ada = await rh.api.signUp('ada', PASSWORD);
  await rh.hub.store.users.makeAdmin('ada');
  const bob = await rh.api.signUp('bob', PASSWORD);
  const room = (await rh.api.post('/api/v1/rooms', { kind: 'group', name: 'lab' }, { token: ada.token })).body.room.id as string;
  await rh.api.post(`/api/v1/rooms/${room}/join`, {}, { token: bob.token });
  for (const [i, who] of [ada, bob, ada].entries())
    await rh.api.post(`/api/v1/rooms/${room}/messages`, { cid: `m${i}`, body: `hello @ada number ${i}` }, { token: who.token });
  const robot = await rh.enroll(ada, 'rover-1');
  const browser = await launch(t);

  for (const scheme of ['light', 'dark'] as const) {
    await t.test(scheme, async (t) => {
      const { page: p, errors } = await person(browser, rh.hub.url, { width: 1200, height: 800 });
      await p.emulateMedia({ colorScheme: scheme });
      await p.goto('/');
      await p.getByRole('button', { name: 'Sign in' }).waitFor();
      // The check can fail: a picture without a text alternative is found.
      await p.evaluate(() => {
        const img = (globalThis as any).document.createElement('img');
        img.id = 'unlabelled';
        (globalThis as any).document.body.append(img);
      });
      t.match(await violations(p), [/^image-alt .* at #unlabelled$/], 'axe finds a planted fault');
      await p.evaluate(() => (globalThis as any).document.getElementById('unlabelled').remove());
      t.same(await violations(p), [], 'the sign-in page');
      await signIn(p, 'ada');
      const screens: [string, string, (p: Page) => Promise<unknown>][] = [
        ['a room', `#/room/${room}`, (p) => p.locator('.msg').nth(2).waitFor()],
        [
          "a room's people",
          `#/room/${room}`,
          (p) =>
            p
              .getByRole('button', { name: 'People' })
              .click()
              .then(() => p.getByRole('complementary').getByText('bob').waitFor()),
        ],
        ['people', '#/people', (p) => p.getByRole('heading', { name: 'Contacts' }).waitFor()],
        ['your account', '#/me', (p) => p.getByRole('cell', { name: 'this one' }).waitFor()],
        ['robots', '#/robots', (p) => p.getByRole('link', { name: 'rover-1' }).waitFor()],
        ['a robot', `#/robot/${robot.id}`, (p) => p.getByRole('heading', { name: 'rover-1' }).waitFor()],
        ['operators', '#/ops', (p) => p.getByRole('region', { name: 'Nodes' }).getByRole('row').nth(1).waitFor()],
      ];
      for (const [name, hash, ready] of screens) {
        await p.evaluate((h) => {
          (globalThis as any).location.hash = h;
        }, hash);
        await ready(p);
        t.same(await violations(p), [], name);
      }
      t.same(errors, [], 'no errors in the page');
    });
  }
});

t.test('the chat with the keyboard alone', async (t) => {
  const rh = await startRobotHub(t);
  const ada = await rh.api.signUp('kay', PASSWORD);
  await rh.api.post('/api/v1/rooms', { kind: 'group', name: 'lab' }, { token: ada.token });
  const browser = await launch(t);
  const { page: p, errors } = await person(browser, rh.hub.url);
  await p.goto('/');
  await p.getByRole('button', { name: 'Sign in' }).waitFor();
  const k = p.keyboard;
  /** Presses Tab until the focused element has this accessible name (at most 30 times). */
  const tabTo = async (name: string) => {
    for (let i = 0; i < 30; i++) {
      await k.press('Tab');
      const focused = await p.evaluate(() => {
        const el = (globalThis as any).document.activeElement;
        return el?.getAttribute('aria-label') ?? el?.labels?.[0]?.textContent ?? el?.textContent ?? '';
      });
      if ((focused as string).trim().endsWith(name)) return;
    }
    throw new Error(`Tab never reached ${name}`);
  };
  await tabTo('Username');
  await k.type('kay');
  await k.press('Tab');
  await k.type(PASSWORD);
  await k.press('Enter');
  await p.getByRole('status').getByText('Connected').waitFor();
  await tabTo('lab');
  await k.press('Enter');
  await p.getByRole('heading', { name: '# lab' }).waitFor();
  await tabTo('Message');
  await k.type('typed, not clicked');
  await k.press('Enter');
  await p.locator('.msg .body', { hasText: 'typed, not clicked' }).waitFor();
  await p.locator('.msg.pending').waitFor({ state: 'detached' });
  t.equal(await p.locator('.msg .body', { hasText: 'typed, not clicked' }).count(), 1, 'sent and stored, once');
  t.same(errors, []);
});
