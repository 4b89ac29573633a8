// The console's robot pages in real Chromium: an owner registers a robot and downloads its
// certificate and key, the robot connects with them and streams telemetry at 50 Hz, the page plots
// it live, lets the user choose the channels to watch (and follows a channel advertised later),
// takes the control lease, runs a command through its stages into the audit log, and its
// emergency stop reaches the robot. Measures the page's frame rate while the plots run.

import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import t from 'tap';
import type { RobotClient } from '../src/robot-kit/robot-client.js';
import { simulateRobot } from '../src/robot-kit/sim.js';
import { launch, PASSWORD, person, screenshot, signIn } from './helpers/browser.js';
import { openFoxgloveUrl } from './helpers/foxglove.js';
import { startRobotHub } from './helpers/robots.js';

const RATE_HZ = 50;

async function downloaded(p: Page, button: string): Promise<string> {
  const [file] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: button }).click()]);
  return readFile(await file.path(), 'utf8');
}

t.test('an owner enrolls, watches and drives a robot in the console', async (t) => {
  const rh = await startRobotHub(t);
  const owner = await rh.api.signUp('olga', PASSWORD);
  t.ok(owner.id);
  const browser = await launch(t);
  const { page: p, errors } = await person(browser, rh.hub.url, { width: 1280, height: 900 });
  await signIn(p, 'olga');

  await p.getByRole('link', { name: 'Robots' }).click();
  await p.getByLabel('Register a robot').fill('rover-1');
  await p.getByRole('button', { name: 'Register' }).click();
  const dialog = p.getByRole('dialog', { name: 'Credentials for rover-1' });
  await dialog.waitFor();
  const cert = await downloaded(p, 'Download certificate');
  const key = await downloaded(p, 'Download private key');
  t.match(cert, /^-----BEGIN CERTIFICATE-----/);
  t.match(key, /^-----BEGIN PRIVATE KEY-----/);
  await dialog.getByRole('button', { name: 'Close' }).click();

  // The robot connects with what the page downloaded, and streams.
  const robot: RobotClient = await rh.connectRobot({ cert, key });
  const sim = simulateRobot(robot, { rate: RATE_HZ, commandDelayMs: 50 });
  t.teardown(() => sim.stop());
  const estopped = new Promise<void>((resolve) => robot.on('estop', () => resolve()));

  await p.getByRole('link', { name: 'rover-1' }).click();
  await p.locator('.robot-head').getByText('online').waitFor();
  await p.getByRole('img', { name: 'Live plot of pose.x' }).waitFor();

  await t.test('the plots move and the latest values follow', async (t) => {
    const canvas = p.getByRole('img', { name: 'Live plot of pose.x' }).locator('canvas');
    const pixels = () => canvas.evaluate((c) => (c as unknown as { toDataURL(): string }).toDataURL());
    const before = await pixels();
    const latest = p.getByRole('row', { name: /^pose/ }).locator('code');
    const first = await latest.textContent();
    // Page-side code sees the page's globals (the tests compile without the DOM's types).
    await p.waitForFunction((was) => (globalThis as any).document.querySelector('tbody tr:first-child code')?.textContent !== was, first);
    await p.waitForFunction((was) => (globalThis as any).document.querySelector('canvas').toDataURL() !== was, before);
    t.not(await pixels(), before, 'the plot was redrawn with new samples');

    // The page's frame rate with the plots live: a measurement, not a bound (printed for the notes).
    const fps = (await p.evaluate(`new Promise((resolve) => {
      let frames = 0;
      const t0 = performance.now();
      const tick = () => {
        frames++;
        if (performance.now() - t0 < 3000) requestAnimationFrame(tick);
        else resolve((frames * 1000) / (performance.now() - t0));
      };
      requestAnimationFrame(tick);
    })`)) as number;
    t.comment(`frame rate with ${RATE_HZ} Hz telemetry on 4 live plots: ${fps.toFixed(1)} fps (headless Chromium)`);
  });

  await t.test('the user chooses the channels to watch; the page follows channels the robot advertises', async (t) => {
    const cell = (name: string) => p.getByRole('row', { name: new RegExp(`^${name}`) }).locator('code');
    await p.getByRole('checkbox', { name: 'Watch pose' }).uncheck();
    // The hub's answer to the new watch carries no pose sample, and none follows it.
    await p.waitForFunction(() => (globalThis as any).document.querySelector('tbody tr:first-child code')?.textContent === '—');
    t.equal(await p.getByRole('img', { name: 'Live plot of pose.x' }).count(), 0, 'the plots of a channel not watched go');
    const log = await cell('log').textContent();
    await p.waitForFunction((was) => (globalThis as any).document.querySelector('tbody tr:nth-child(2) code')?.textContent !== was, log);
    t.equal(await cell('pose').textContent(), '—', 'a log line arrived after the choice, and no pose sample since');

    robot.advertise([{ id: 3, name: 'battery', encoding: 'msgpack', schema: null, delivery: 'latest' }]);
    const battery = p.getByRole('checkbox', { name: 'Watch battery' });
    await battery.waitFor();
    t.notOk(await battery.isChecked(), 'a channel advertised after a choice is not watched until chosen');
    await battery.check();
    await p.getByRole('checkbox', { name: 'Watch pose' }).check();
    await p.waitForFunction(() => (globalThis as any).document.querySelector('tbody tr:first-child code')?.textContent !== '—');
    robot.telemetry(3, 42);
    await p.getByRole('img', { name: 'Live plot of battery' }).waitFor();
    await p.getByRole('img', { name: 'Live plot of pose.x' }).waitFor();
    await p
      .getByRole('row', { name: /^battery/ })
      .getByText('42', { exact: true })
      .waitFor();
    t.pass('the newly chosen channel shows its samples');
  });

  await t.test('Open in Foxglove opens Foxglove connected to this robot, with a token that works', async (t) => {
    // No Foxglove here: its web app's address answers with an empty page.
    await p.context().route('https://app.foxglove.dev/**', (r) => r.fulfill({ contentType: 'text/html', body: '<title>Foxglove</title>' }));
    const [popup] = await Promise.all([p.waitForEvent('popup'), p.getByRole('button', { name: 'Open in Foxglove' }).click()]);
    await popup.waitForURL(/^https:\/\/app\.foxglove\.dev\//);
    const link = new URL(popup.url());
    t.equal(link.searchParams.get('ds'), 'foxglove-websocket', "Foxglove's WebSocket data source");
    const ds = link.searchParams.get('ds.url') ?? '';
    t.match(ds, new RegExp(`^ws://127\\.0\\.0\\.1:\\d+/foxglove\\?robot=${robot.robotId}&token=`), 'this node, this robot');
    const fox = await openFoxgloveUrl(t, ds);
    await fox.next((e) => e.kind === 'advertise' && e.channels.some((c) => c.topic === '/pose'), "the robot's channels, with the page's token");
    await popup.close();
  });

  await t.test('the lease, a command through its stages, the audit log', async (t) => {
    await p.getByRole('button', { name: 'Take control' }).click();
    await p.getByText('Held by you').waitFor();
    await p.getByRole('textbox', { name: 'Command', exact: true }).fill('move');
    await p.getByLabel('Arguments (JSON)').fill('{"x": 1}');
    await p.getByRole('button', { name: 'Send', exact: true }).click();
    const row = p.getByRole('list', { name: 'Commands sent' }).getByRole('listitem').first();
    await row.locator('.stage.completed').waitFor();
    t.same(await row.locator('.stage').allTextContents(), ['queued', 'delivered', 'accepted', 'completed'], 'every stage, in order');
    const audit = p.getByRole('region', { name: 'Audit log' });
    await audit.getByRole('cell', { name: 'completed' }).waitFor();
    t.equal(await audit.getByRole('cell', { name: 'move' }).count(), 1);
    await screenshot(p, 'robot');
  });

  await t.test('the emergency stop reaches the robot and ends the lease', async (t) => {
    await p.getByRole('button', { name: 'EMERGENCY STOP' }).click();
    await estopped;
    await p.getByText('Nobody holds it.').waitFor();
    t.equal(sim.stats.estops, 1);
    await p.getByRole('region', { name: 'Audit log' }).getByRole('cell', { name: 'estop' }).waitFor();
  });

  await t.test('the owner grants a role, rotates the certificate, then revokes it', async (t) => {
    const vic = await rh.api.signUp('vic', PASSWORD);
    const owned = p.getByRole('region', { name: 'Owner' });
    await owned.getByLabel('Username').fill('vic');
    await owned.getByLabel('Role').selectOption('operator');
    await owned.getByRole('button', { name: 'Grant' }).click();
    await owned.getByRole('listitem').filter({ hasText: 'vic' }).getByText('operator').waitFor();
    const grants = await rh.api.get(`/api/v1/robots/${robot.robotId}/grants`, {
      token: (await rh.api.post('/api/v1/auth/login', { username: 'olga', password: PASSWORD })).body.accessToken,
    });
    t.same(
      grants.body.grants.map((g: { userId: string; role: string }) => [g.userId, g.role]),
      [[vic.id, 'operator']],
      'the hub holds the grant',
    );

    // Rotating (after a confirmation) gives new files once, and cuts the robot's old link.
    p.on('dialog', (d) => void d.accept());
    const oldLinkClosed = new Promise<void>((resolve) => robot.once('close', () => resolve()));
    await owned.getByRole('button', { name: /^Rotate/ }).click();
    await p.getByRole('dialog', { name: 'Credentials for rover-1' }).waitFor();
    const cert2 = await downloaded(p, 'Download certificate');
    const key2 = await downloaded(p, 'Download private key');
    await p.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
    await oldLinkClosed;
    t.not(cert2, cert, 'a new certificate');
    const again = await rh.connectRobot({ cert: cert2, key: key2 });
    await p.locator('.robot-head').getByText('online').waitFor();

    // Revoking cuts the new link too.
    const newLinkClosed = new Promise<void>((resolve) => again.once('close', () => resolve()));
    await owned.getByRole('button', { name: 'Revoke' }).click();
    await owned.getByText('1 certificate(s) revoked.').waitFor();
    await newLinkClosed;
    await p.locator('.robot-head').getByText('offline').waitFor();
    t.pass('revoked: the robot is offline');
  });

  t.same(errors, [], 'no errors in the page');
});
