// Signing in by email in real Chromium, with a real SMTP server: a person adds an address from
// their account page (a code is mailed; they type it), signs out, and signs in with a one-time
// code mailed to that address.

import t from 'tap';
import { Api } from './helpers/api.js';
import { launch, PASSWORD, person } from './helpers/browser.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { codeIn, startSmtpSink } from './helpers/smtp.js';

const EMAIL = 'ada@example.test';

t.test('an address verified from the account page, then a sign-in by code', async (t) => {
  const smtp = await startSmtpSink(t);
  const hub = await startTestHub(t, { env: { ...FAST, SB_SMTP_URL: smtp.url } });
  await new Api(hub.url).signUp('ada', PASSWORD);
  const browser = await launch(t);
  const { page: p, errors } = await person(browser, hub.url);
  await p.goto('/');
  await p.getByLabel('Username').fill('ada');
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('link', { name: 'ada', exact: true }).click();

  await p.getByLabel('Address').fill(EMAIL);
  await p.getByLabel('Your password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Send a code' }).click();
  const first = codeIn(await smtp.next(EMAIL));
  await p.getByLabel(`Code sent to ${EMAIL}`).fill(first);
  await p.getByRole('button', { name: 'Verify' }).click();
  await p.getByText(`Verified: ${EMAIL}`).waitFor();

  await p.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
  await p.getByRole('tab', { name: 'Email code' }).click();
  await p.getByLabel('Email').fill(EMAIL);
  await p.getByRole('button', { name: 'Send code' }).click();
  const second = codeIn(await smtp.next(EMAIL));
  t.not(second, first, 'a new code');
  await p.getByLabel('Code').fill(second);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('status').getByText('Connected').waitFor();
  t.equal(await p.getByRole('link', { name: 'ada', exact: true }).count(), 1, 'signed in as ada');
  t.same(errors, [], 'no errors in the page');
});
