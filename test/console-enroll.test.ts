// The console's enrollment without a shared key, in real Chromium: on a robot's page the owner
// pastes the robot's certificate signing request and downloads the certificate (no key is offered),
// and the robot connects with it and its own key; on the robots list the owner makes a fleet
// bootstrap token (its secret shown once), a robot enrolls itself with it, and the owner revokes it.

import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import t from 'tap';
import { launch, PASSWORD, person, signIn } from './helpers/browser.js';
import { deviceCsr } from './helpers/csr.js';
import { startRobotHub } from './helpers/robots.js';

async function downloaded(p: Page, button: string): Promise<string> {
  const [file] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: button }).click()]);
  return readFile(await file.path(), 'utf8');
}

t.test('an owner signs a robot’s request and runs a bootstrap token from the console', async (t) => {
  const rh = await startRobotHub(t);
  const owner = await rh.api.signUp('nadia', PASSWORD);
  const robot = await rh.enroll(owner, 'arm-7');
  const browser = await launch(t);
  const { page: p, errors } = await person(browser, rh.hub.url, { width: 1280, height: 900 });
  await signIn(p, 'nadia');

  await t.test('sign a certificate request on the robot page', async (t) => {
    await p.getByRole('link', { name: 'Robots' }).click();
    await p.getByRole('link', { name: 'arm-7' }).click();
    await p.getByRole('button', { name: 'Sign a certificate request' }).click();
    const device = await deviceCsr('P-256');
    const dialog = p.getByRole('dialog', { name: 'Sign a certificate request for arm-7' });
    await dialog.getByLabel('Certificate request (PEM)').fill(device.csrPem);
    await dialog.getByRole('button', { name: 'Sign' }).click();
    const creds = p.getByRole('dialog', { name: 'Credentials for arm-7' });
    await creds.waitFor();
    t.equal(await creds.getByRole('button', { name: 'Download private key' }).count(), 0, 'no key is offered: there is none');
    const cert = await downloaded(p, 'Download certificate');
    const ca = await downloaded(p, 'Download CA certificate');
    t.equal(ca, rh.caPem, 'the CA certificate');
    await creds.getByRole('button', { name: 'Close' }).click();
    const link = await rh.connectRobot({ cert, key: device.keyPem });
    t.equal(link.robotId, robot.id, 'the robot connects with its own key and the downloaded certificate');
    await link.close();

    await p.getByRole('button', { name: 'Sign a certificate request' }).click();
    const again = p.getByRole('dialog', { name: 'Sign a certificate request for arm-7' });
    await again.getByLabel('Certificate request (PEM)').fill('not a request');
    await again.getByRole('button', { name: 'Sign' }).click();
    await again
      .getByRole('alert')
      .getByText(/PEM certificate signing request/)
      .waitFor();
    t.pass('a bad request is explained in the dialog');
    await again.getByRole('button', { name: 'Close' }).click();
  });

  await t.test('a fleet bootstrap token: created, used by a robot, revoked', async (t) => {
    await p.getByRole('link', { name: 'Robots' }).click();
    const section = p.getByRole('region', { name: 'Fleet bootstrap tokens' });
    await section.getByLabel('Token name').fill('line 3');
    await section.getByLabel('Robots').fill('2');
    await section.getByRole('button', { name: 'Create token' }).click();
    const shown = section.getByText('shown this once').locator('code');
    await shown.waitFor();
    const secret = (await shown.textContent()) ?? '';
    t.match(secret, /^sbb_/, 'the secret is shown');
    await section
      .getByRole('row', { name: /line 3/ })
      .getByText('2 of 2 left')
      .waitFor();

    const device = await deviceCsr('Ed25519');
    const r = await rh.api.post('/api/v1/robots/enroll', { name: 'fleet-1', csr: device.csrPem }, { headers: { authorization: `Bearer ${secret}` } });
    t.equal(r.status, 201, r.text.slice(0, 200));
    t.equal(r.body.robot.ownerId, owner.id, 'the robot is the owner’s');

    // Away and back: the list loads afresh.
    await p.getByRole('link', { name: 'arm-7' }).click();
    await p.getByRole('button', { name: 'Sign a certificate request' }).waitFor();
    await p.getByRole('link', { name: 'Robots' }).click();
    await p.getByRole('link', { name: 'fleet-1' }).waitFor();
    const row = p.getByRole('region', { name: 'Fleet bootstrap tokens' }).getByRole('row', { name: /line 3/ });
    await row.getByText('1 of 2 left').waitFor();
    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.getByText('revoked').waitFor();
    const late = await rh.api.post('/api/v1/robots/enroll', { name: 'fleet-2', csr: device.csrPem }, { headers: { authorization: `Bearer ${secret}` } });
    t.equal(late.body?.error?.code, 'BOOTSTRAP_TOKEN_REVOKED', 'a revoked token enrolls no more');
  });

  // The refused request above is the one failed load the browser reports.
  t.same(errors, ['Failed to load resource: the server responded with a status of 400 (Bad Request)'], 'no other errors in the page');
});
