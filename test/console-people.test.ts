// The console's social side in real Chromium: edits, reactions and deletions seen by the other
// person; a room's people and roles; a notice of a message in another room; contacts (a request,
// its acceptance) and blocking; the profile and the signed-in devices.

import type { Page } from 'playwright-core';
import t from 'tap';
import { Api } from './helpers/api.js';
import { launch, PASSWORD, type Person, person, say, signIn } from './helpers/browser.js';
import { FAST, startTestHub } from './helpers/hub.js';

const message = (p: Page, text: string) => p.locator('.msg').filter({ has: p.locator('.body', { hasText: text }) });
const roomLink = (p: Page, name: string) => p.getByRole('navigation', { name: 'Rooms' }).getByRole('link', { name: new RegExp(`^${name}\\b`) });

t.test('people in the console: edits, reactions, roles, notices, contacts, profile', async (t) => {
  const hub = await startTestHub(t, { env: FAST });
  const api = new Api(hub.url);
  const ada = await api.signUp('ada', PASSWORD);
  const bob = await api.signUp('bob', PASSWORD);
  await api.signUp('carl', PASSWORD);
  const lab = (await api.post('/api/v1/rooms', { kind: 'group', name: 'lab' }, { token: ada.token })).body.room.id as string;
  const misc = (await api.post('/api/v1/rooms', { kind: 'group', name: 'misc' }, { token: ada.token })).body.room.id as string;
  for (const r of [lab, misc]) t.equal((await api.post(`/api/v1/rooms/${r}/join`, {}, { token: bob.token })).status, 200);

  const browser = await launch(t);
  const A: Person = await person(browser, hub.url);
  const B: Person = await person(browser, hub.url);
  const [a, b] = [A.page, B.page];
  await signIn(a, 'ada');
  await signIn(b, 'bob');
  await roomLink(a, 'lab').click();
  await roomLink(b, 'lab').click();

  await t.test('an edit, a reaction and a deletion reach the other person', async (t) => {
    await say(a, 'teh plan');
    const theirs = message(b, 'teh plan');
    await theirs.waitFor();
    const mine = message(a, 'teh plan');
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit' }).click();
    await a.getByRole('textbox', { name: 'Edit message' }).fill('the plan');
    await a.getByRole('button', { name: 'Save' }).click();
    await message(b, 'the plan').getByText('(edited)').waitFor();
    const edited = message(b, 'the plan');
    await edited.hover();
    await edited.getByRole('button', { name: 'React 👍' }).click();
    await message(a, 'the plan').getByRole('button', { name: '👍 1' }).waitFor();
    t.equal(await edited.getByRole('button', { name: '👍 1' }).getAttribute('aria-pressed'), 'true', 'bob sees his own reaction pressed');
    await message(a, 'the plan').hover();
    await message(a, 'the plan').getByRole('button', { name: 'Delete' }).click();
    await b.getByText('message deleted').waitFor();
    t.equal(await message(b, 'the plan').count(), 0);
  });

  await t.test("a room's people: presence, a moderator made by the owner", async (t) => {
    await a.getByRole('button', { name: 'People' }).click();
    const panel = a.getByRole('complementary', { name: 'Members' });
    await panel.getByText('bob').waitFor();
    t.match(await panel.getByRole('listitem').filter({ hasText: 'bob' }).textContent(), /here now/);
    await panel.getByRole('button', { name: 'Make moderator' }).click();
    await b.getByText('bob is now moderator').waitFor();
    await panel.getByRole('listitem').filter({ hasText: 'bob' }).getByText('moderator').waitFor();
    t.equal(await panel.getByRole('button', { name: 'Make member' }).count(), 1);
    await panel.getByRole('button', { name: 'Close the member list' }).click();
  });

  await t.test('a message in another room shows as a notice that opens it', async (t) => {
    await api.post(`/api/v1/rooms/${misc}/messages`, { cid: 'n1', body: 'lunch @bob?' }, { token: ada.token });
    const toast = b.getByRole('link', { name: /ada in #misc: lunch @bob\?/ });
    await toast.waitFor();
    await roomLink(b, 'misc').getByText('1 mentions').waitFor();
    await toast.click();
    await b.getByRole('heading', { name: '# misc' }).waitFor();
    await toast.waitFor({ state: 'detached' });
    await b.locator('.msg.mention', { hasText: 'lunch @bob?' }).waitFor();
    t.pass('opened');
  });

  await t.test('contacts: a request, its acceptance, a block', async (t) => {
    await a.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'People' }).click();
    await a.getByLabel('Find someone').fill('bob');
    await a.getByRole('button', { name: 'Search' }).click();
    await a.getByRole('button', { name: 'Add bob as a contact' }).click();
    await a.getByRole('list', { name: 'Your requests' }).getByText('bob').waitFor();
    await b.getByRole('link', { name: 'ada asks to be your contact' }).click();
    await b.getByRole('button', { name: 'Accept ada' }).click();
    await b.getByRole('list', { name: 'Contacts' }).getByText('ada').waitFor();
    await a.getByRole('list', { name: 'Contacts' }).getByText('bob').waitFor();
    // Blocking carl: he is listed as blocked, and no longer found.
    await a.getByLabel('Find someone').fill('carl');
    await a.getByRole('button', { name: 'Search' }).click();
    await a.getByRole('button', { name: 'Block carl' }).click();
    await a.getByRole('list', { name: 'Blocked' }).getByText('carl').waitFor();
    const found = await api.get('/api/v1/users?q=ada', {
      token: (await api.post('/api/v1/auth/login', { username: 'carl', password: PASSWORD })).body.accessToken,
    });
    t.same(found.body.users, [], 'carl no longer finds ada');
  });

  await t.test('the profile and the signed-in devices', async (t) => {
    await b.getByRole('link', { name: 'bob', exact: true }).click();
    await b.getByLabel('Display name').fill('Bob Builder');
    await b.getByRole('button', { name: 'Save profile' }).click();
    await b.getByText('Profile saved.').waitFor();
    await b.locator('.top').getByText('Bob Builder').waitFor();
    t.equal((await api.get(`/api/v1/users/${bob.id}`, { token: ada.token })).body.user.displayName, 'Bob Builder');
    // Two sessions: the API's login above and this browser's; the other one can be signed out.
    const devices = b.getByRole('region', { name: 'Your account' }).locator('tbody tr');
    await devices.nth(1).waitFor();
    t.equal(await devices.count(), 2);
    await devices.filter({ hasNotText: 'this one' }).getByRole('button', { name: 'Sign out' }).click();
    await devices.nth(1).waitFor({ state: 'detached' });
    t.equal((await api.get('/api/v1/auth/me', { token: bob.token })).status, 401, "the other device's token is refused");
  });

  t.same(A.errors, [], 'no errors in ada’s page');
  t.same(B.errors, [], 'no errors in bob’s page');
});
