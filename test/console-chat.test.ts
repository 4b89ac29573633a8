// The web console in real Chromium, as two people use it: signing up and in, a group room and a
// direct room, typing, presence, unread counts and read receipts, an attachment, and a drop of the
// network while the other person writes. Writes the README's screenshots.

import type { Page } from 'playwright-core';
import t from 'tap';
import { launch, PASSWORD, type Person, person, say, screenshot } from './helpers/browser.js';
import { png } from './helpers/files.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { link } from './helpers/link.js';

async function signUp(p: Page, username: string): Promise<void> {
  await p.goto('/');
  await p.getByRole('tab', { name: 'Create account' }).click();
  await p.getByLabel('Username').fill(username);
  await p.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await p.getByLabel('Password again').fill(PASSWORD);
  await p.getByRole('button', { name: 'Create account' }).click();
  await p.getByRole('status').getByText('Connected').waitFor();
}

/** The bodies of the messages on screen, in order. */
const bodies = (p: Page) => p.locator('.msg .body').allTextContents();
const roomLink = (p: Page, name: string) => p.getByRole('navigation', { name: 'Rooms' }).getByRole('link', { name: new RegExp(`^${name}\\b`) });

t.test('two people chat in the console', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const browser = await launch(t);
  const ada: Person = await person(browser, hub.url);
  // Bob's page reaches the hub through a link the test can cut.
  const net = await link(t, hub.url);
  const bob: Person = await person(browser, net.url);
  const a = ada.page;
  const b = bob.page;

  await a.goto('/');
  await a.getByRole('heading', { name: 'Switchboard' }).waitFor();
  // A fresh load's first render, as the browser timed it: a measurement for the notes, not a bound.
  const paint = await a.evaluate(() => {
    const perf = (globalThis as any).performance;
    return {
      fcp: perf.getEntriesByName('first-contentful-paint')[0]?.startTime as number,
      load: perf.getEntriesByType('navigation')[0]?.loadEventEnd as number,
    };
  });
  t.comment(`fresh load: first contentful paint ${paint.fcp?.toFixed(0)} ms, load event ${paint.load?.toFixed(0)} ms`);
  await screenshot(a, 'login');
  await signUp(a, 'ada');
  await signUp(b, 'bob');

  // Ada creates a room; Bob finds it and joins.
  await a.getByRole('button', { name: 'New' }).click();
  await a.getByLabel('New group room').fill('lab');
  await a.getByRole('button', { name: 'Create' }).click();
  await a.getByRole('heading', { name: '# lab' }).waitFor();
  await b.getByRole('button', { name: 'New' }).click();
  await b.getByLabel('Find a group room').fill('la');
  await b.getByRole('button', { name: 'Search' }).first().click();
  await b.getByRole('list', { name: 'Rooms found' }).getByRole('button', { name: 'Join' }).click();
  await b.getByRole('heading', { name: '# lab' }).waitFor();

  await t.test('presence, messages both ways and typing', async (t) => {
    await a.getByText('2 here').waitFor();
    await say(a, 'hello bob');
    await b.locator('.msg .body', { hasText: 'hello bob' }).waitFor();
    await b.getByRole('textbox', { name: 'Message' }).pressSequentially('hi', { delay: 20 });
    await a.getByText('bob is typing…').waitFor();
    await b.getByRole('textbox', { name: 'Message' }).press('Enter');
    await a.locator('.msg .body', { hasText: /^hi$/ }).waitFor();
    // Bob's message ends his typing notice at once.
    await a.getByText('bob is typing…').waitFor({ state: 'detached' });
    t.same(await bodies(a), ['hello bob', 'hi']);
    t.same(await bodies(b), ['hello bob', 'hi']);
    await screenshot(a, 'room');
  });

  await t.test('no layout shift as messages stream in', async (t) => {
    await b.evaluate(() => {
      const g = globalThis as any;
      g.__shift = 0;
      new g.PerformanceObserver((list: any) => {
        for (const e of list.getEntries()) if (!e.hadRecentInput) g.__shift += e.value;
      }).observe({ type: 'layout-shift' });
    });
    for (let i = 0; i < 15; i++) await say(a, `stream ${i}`);
    await b.locator('.msg .body', { hasText: 'stream 14' }).waitFor();
    await a.locator('.msg.pending').waitFor({ state: 'detached' });
    const shift = (await b.evaluate(() => (globalThis as any).__shift)) as number;
    t.comment(`layout shift while 15 messages arrived: ${shift.toFixed(4)}`);
    t.ok(shift < 0.01, `the reader's view did not jump (cumulative layout shift ${shift.toFixed(4)})`);
  });

  await t.test('unread counts while away, cleared by reading', async (t) => {
    await b.goto('/#/');
    await say(a, 'one');
    await say(a, 'two @bob');
    const link = roomLink(b, 'lab');
    await link.getByText('2 unread').waitFor();
    await link.getByText('1 mentions').waitFor();
    await link.click();
    await b.locator('.msg .body', { hasText: 'two @bob' }).waitFor();
    await link.getByText('unread').waitFor({ state: 'detached' });
    t.equal(await b.locator('.msg.mention').count(), 1, 'the mention is marked');
    // The marker moved on the hub: a fresh load of Bob's rooms has nothing unread either.
    await b.reload();
    await roomLink(b, 'lab').waitFor();
    t.equal(await roomLink(b, 'lab').getByText('unread').count(), 0);
  });

  await t.test('a direct room: the name, presence and a read receipt', async (t) => {
    await a.getByRole('button', { name: 'New' }).click();
    await a.getByLabel('Message someone').fill('bob');
    await a.getByRole('button', { name: 'Search' }).nth(1).click();
    await a.getByRole('list', { name: 'People found' }).getByRole('button', { name: 'Message' }).click();
    await a.getByRole('heading', { name: '@ bob' }).waitFor();
    await say(a, 'psst');
    const dm = roomLink(b, 'ada');
    await dm.getByText('1 unread').waitFor();
    await dm.click();
    await b.locator('.msg .body', { hasText: 'psst' }).waitFor();
    await a.getByText('Seen').waitFor();
    await a.locator('.presence', { hasText: 'online' }).waitFor();
    await b.locator('.presence', { hasText: 'online' }).waitFor();
    t.equal(await b.locator('.presence .dot.on').count(), 1, 'ada shows as here in bob’s view');
    await screenshot(b, 'direct');
  });

  await t.test('a lost network while the other writes: everything once, in order, after the drop', async (t) => {
    await roomLink(a, 'lab').click();
    await roomLink(b, 'lab').click();
    await b.locator('.msg .body', { hasText: 'two @bob' }).waitFor();
    t.same(bob.errors, [], 'no errors before the drop');
    net.down();
    await b.getByRole('status').getByText('Reconnecting…').waitFor();
    for (const text of ['while', 'you', 'were', 'away']) await say(a, text);
    await a.locator('.msg .body', { hasText: 'away' }).waitFor();
    net.up();
    await b.getByRole('status').getByText('Connected').waitFor();
    await b.locator('.msg .body', { hasText: 'away' }).waitFor();
    t.same((await bodies(b)).slice(-6), ['one', 'two @bob', 'while', 'you', 'were', 'away']);
    t.equal(new Set(await bodies(b)).size, (await bodies(b)).length, 'nothing twice');
    // And Bob's message written offline is sent once the connection is back.
    net.down();
    await b.getByRole('status').getByText('Reconnecting…').waitFor();
    await say(b, 'back soon');
    await b.locator('.msg.pending', { hasText: 'back soon' }).waitFor();
    net.up();
    await a.locator('.msg .body', { hasText: 'back soon' }).waitFor();
    await b.locator('.msg.pending').waitFor({ state: 'detached' });
    t.equal((await bodies(a)).filter((x) => x === 'back soon').length, 1);
    // While the network was down, the browser reports the reconnects that failed; nothing else.
    const during = bob.errors.splice(0);
    t.same(
      during.filter((e) => !/net::ERR_|WebSocket connection to .* failed/.test(e)),
      [],
      'only failed connections were reported while the network was down',
    );
  });

  await t.test('a picture, uploaded and shown to the other', async (t) => {
    await a.locator('input[type=file]').setInputFiles({ name: 'plot.png', mimeType: 'image/png', buffer: png(64, 48) });
    await a.getByRole('list', { name: 'Files to send' }).getByText('plot.png').waitFor();
    await say(a, 'the plot');
    const img = b.getByRole('img', { name: 'plot.png' });
    await img.waitFor();
    await t.resolveMatch(
      img.evaluate((node) => {
        const el = node as unknown as { decode(): Promise<void>; naturalWidth: number; naturalHeight: number };
        return el.decode().then(() => [el.naturalWidth, el.naturalHeight]);
      }),
      [64, 48],
    );
  });

  await t.test('phone width', async (t) => {
    await a.setViewportSize({ width: 390, height: 760 });
    await a.getByRole('heading', { name: '# lab' }).waitFor();
    t.equal(await a.getByRole('navigation', { name: 'Rooms' }).isVisible(), false, 'the open room takes the screen');
    await screenshot(a, 'phone');
    await a.getByRole('link', { name: 'Back to rooms' }).click();
    await roomLink(a, 'lab').waitFor();
  });

  await t.test('signing out', async (t) => {
    await b.getByRole('button', { name: 'Sign out' }).click();
    await b.getByRole('tab', { name: 'Sign in' }).waitFor();
    await b.reload();
    await b.getByRole('tab', { name: 'Sign in' }).waitFor();
    // And in again with the password.
    await b.getByLabel('Username').fill('bob');
    await b.getByLabel('Password').fill(PASSWORD);
    await b.getByRole('button', { name: 'Sign in' }).click();
    await roomLink(b, 'lab').waitFor();
    t.pass('signed in again');
  });

  t.same(ada.errors, [], 'no errors in ada’s page');
  t.same(bob.errors, [], 'no errors in bob’s page');
});
