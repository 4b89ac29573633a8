// Debian's Chromium driven by playwright-core, for the console's tests. `npm test` installs the
// `chromium` package when it is missing (scripts/run-tests.mjs); SB_TEST_CHROMIUM names another
// binary. One browser per test file; each person gets their own context (cookies, storage).

import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import type { Test } from 'tap';

export const CHROMIUM = process.env.SB_TEST_CHROMIUM ?? '/usr/bin/chromium';
/** Where the tests write the screenshots the README shows. */
export const SCREENSHOTS = path.resolve('docs/screenshots');

/** The flags of a headless Chromium on a machine with no network and no GPU, as root. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export async function launch(t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: npm test installs Debian's chromium package (or set SB_TEST_CHROMIUM)`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  t.teardown(() => browser.close());
  return browser;
}

export interface Person {
  context: BrowserContext;
  page: Page;
  /** Messages the page wrote to its console as errors, and uncaught exceptions: a test checks there are none. */
  errors: string[];
}

export async function person(browser: Browser, base: string, viewport = { width: 1100, height: 720 }): Promise<Person> {
  const context = await browser.newContext({ baseURL: base, viewport, colorScheme: 'light' });
  // Each wait ends well before the file's timeout, so a failure names the step that failed.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return { context, page, errors };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/** The password the console tests give everyone. */
export const PASSWORD = 'correct horse battery';

/** Signs in through the console's form, and waits for the WebSocket. */
export async function signIn(p: Page, username: string): Promise<void> {
  await p.goto('/');
  await p.getByLabel('Username').fill(username);
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('status').getByText('Connected').waitFor();
}

/** Writes a message in the open room and sends it with Enter. */
export async function say(p: Page, text: string): Promise<void> {
  await p.getByRole('textbox', { name: 'Message' }).fill(text);
  await p.getByRole('textbox', { name: 'Message' }).press('Enter');
}
