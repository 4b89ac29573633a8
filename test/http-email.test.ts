// Email through a real SMTP server process (smtp-server, with AUTH), on PostgreSQL and the embedded
// store: verifying an address by the mailed code, logging in by code (expiry, reuse, the attempt
// limit, unknown addresses answered alike), the per-address and per-IP limits, addresses that
// could smuggle recipients, and no code in any log line. Without SB_SMTP_URL all of it is off
// and says so.

import t, { type Test } from 'tap';
import { startHub } from '../src/hub.js';
import { Api, type ApiResponse, uniqueName } from './helpers/api.js';
import { FAST, startTestHub, testConfig } from './helpers/hub.js';
import { capturedLog } from './helpers/log.js';
import { codeIn, startSmtpSink } from './helpers/smtp.js';

function isError(t: Test, r: ApiResponse, status: number, code: string, field?: string, what = code): void {
  t.equal(r.status, status, `${what}: status ${status} (${r.text})`);
  t.equal(r.body?.error?.code, code, `${what}: code ${code}`);
  if (field !== undefined) t.equal(r.body?.error?.field, field, `${what}: names the field ${field}`);
}

const PW = 'correct horse battery';
const address = (name: string) => `${name}@example.test`;

t.test('without an SMTP server, email is off and says so; nothing is half made', async (t) => {
  const api = new Api((await startTestHub(t, { env: FAST })).url);
  const name = uniqueName('nomail');
  isError(
    t,
    await api.post('/api/v1/auth/register', { username: name, password: PW, email: address(name) }),
    501,
    'NOT_ENABLED',
    undefined,
    'register with an email',
  );
  t.equal((await api.post('/api/v1/auth/register', { username: name, password: PW })).status, 201, 'the username was not taken by the refusal');
  const u = await api.post('/api/v1/auth/login', { username: name, password: PW });
  isError(t, await api.post('/api/v1/auth/email', { email: address(name), password: PW }, { token: u.body.accessToken }), 501, 'NOT_ENABLED');
  const off = await api.post('/api/v1/auth/code', { email: address(name) });
  isError(t, off, 501, 'NOT_ENABLED', undefined, 'asking for a login code');
  t.match(off.body.error.message, /SB_SMTP_URL/, 'the message names the setting');
  isError(t, await api.post('/api/v1/auth/code/login', { email: address(name), code: '123456' }), 501, 'NOT_ENABLED', undefined, 'logging in by code');
});

for (const embedded of [false, true]) {
  t.test(embedded ? 'embedded store' : 'PostgreSQL', async (t) => {
    const smtp = await startSmtpSink(t, { user: 'hub', password: 'p@ss:word/1' });
    const cap = capturedLog('debug');
    const hub = await startHub(await testConfig(t, { embedded, env: { ...FAST, SB_SMTP_URL: smtp.url, SB_LOGIN_FAILS_PER_USER_IP: '20' } }), cap.log);
    t.teardown(() => hub.close());
    const api = new Api(hub.url);
    const codes: string[] = [];
    const mailedCode = async (to: string) => {
      const code = codeIn(await smtp.next(to));
      codes.push(code);
      return code;
    };

    t.test('an address given at registration is verified by its code, then logs in by code', async (t) => {
      const name = uniqueName('mail');
      const email = address(name);
      const reg = await api.post('/api/v1/auth/register', { username: name, password: PW, email: `  ${email.toUpperCase()}  ` });
      t.equal(reg.status, 201, reg.text);
      t.equal(reg.body.user.email, undefined, 'the public user carries no address');
      const mail = await smtp.next(email);
      t.same(mail.to, [`${name.toUpperCase()}@example.test`], 'one recipient: the address as given, trimmed (the domain in lower case)');
      t.equal(mail.from, 'switchboard@localhost', 'from SB_MAIL_FROM’s default');
      const code = codeIn(mail);
      codes.push(code);
      const login = await api.post('/api/v1/auth/login', { username: name, password: PW });
      const as = { token: login.body.accessToken as string };
      t.match(login.body.user, { email: null, pendingEmail: email.toUpperCase() }, 'pending until the code comes back');

      const wrong = code === '000000' ? '000001' : '000000';
      isError(t, await api.post('/api/v1/auth/email/verify', { code: wrong }, as), 400, 'VALIDATION', 'code', 'a wrong code');
      const verified = await api.post('/api/v1/auth/email/verify', { code }, as);
      t.equal(verified.status, 200, verified.text);
      t.match(verified.body.user, { email: email.toUpperCase(), pendingEmail: null }, 'verified');
      isError(t, await api.post('/api/v1/auth/email/verify', { code }, as), 400, 'VALIDATION', 'code', 'the code again: used');

      const asked = await api.post('/api/v1/auth/code', { email });
      t.equal(asked.status, 202, 'a login code, asked for in another case');
      const loginCode = await mailedCode(email);
      isError(
        t,
        await api.post('/api/v1/auth/code/login', { email, code: wrong === loginCode ? '999999' : wrong }),
        401,
        'UNAUTHENTICATED',
        undefined,
        'a wrong code',
      );
      const byCode = await api.post('/api/v1/auth/code/login', { email, code: loginCode }, { headers: { 'user-agent': 'code-client' } });
      t.equal(byCode.status, 200, byCode.text);
      t.match(byCode.body, { tokenType: 'Bearer', user: { id: reg.body.user.id, email: email.toUpperCase() } }, 'the same session a password login gives');
      t.equal((await api.get('/api/v1/auth/me', { token: byCode.body.accessToken })).status, 200, 'and it works');
      const sessions = (await api.get('/api/v1/auth/sessions', { token: byCode.body.accessToken })).body.sessions;
      t.ok(
        sessions.some((s: { current: boolean; userAgent: string }) => s.current && s.userAgent === 'code-client'),
        'listed as a device',
      );
      isError(t, await api.post('/api/v1/auth/code/login', { email, code: loginCode }), 401, 'UNAUTHENTICATED', undefined, 'the code again: used');
    });

    t.test('a code expires, takes five guesses, and a new one replaces the old', async (t) => {
      const name = uniqueName('guess');
      const email = address(name);
      await api.post('/api/v1/auth/register', { username: name, password: PW, email });
      const login = await api.post('/api/v1/auth/login', { username: name, password: PW });
      await api.post('/api/v1/auth/email/verify', { code: await mailedCode(email) }, { token: login.body.accessToken });

      await api.post('/api/v1/auth/code', { email });
      const first = await mailedCode(email);
      await api.post('/api/v1/auth/code', { email });
      const second = await mailedCode(email);
      if (first !== second)
        isError(t, await api.post('/api/v1/auth/code/login', { email, code: first }), 401, 'UNAUTHENTICATED', undefined, 'the replaced code');
      const wrong = second === '123456' ? '654321' : '123456';
      // Five guesses in all (counting the one above, when the codes differed): then the right one is refused too.
      for (let i = first !== second ? 1 : 0; i < 5; i++) await api.post('/api/v1/auth/code/login', { email, code: wrong });
      isError(t, await api.post('/api/v1/auth/code/login', { email, code: second }), 401, 'UNAUTHENTICATED', undefined, 'the right code after five guesses');

      await api.post('/api/v1/auth/code', { email });
      const late = await mailedCode(email);
      // Ten minutes pass (the code's expiry moved into the past, as the clock would).
      await hub.store.db.sql`UPDATE email_codes SET expires_at = now() - interval '1 second' WHERE purpose = 'login'`;
      isError(t, await api.post('/api/v1/auth/code/login', { email, code: late }), 401, 'UNAUTHENTICATED', undefined, 'an expired code');
    });

    t.test('an unknown address gets the same reply and no mail', async (t) => {
      const known = uniqueName('known');
      await api.post('/api/v1/auth/register', { username: known, password: PW, email: address(known) });
      const l = await api.post('/api/v1/auth/login', { username: known, password: PW });
      await api.post('/api/v1/auth/email/verify', { code: await mailedCode(address(known)) }, { token: l.body.accessToken });
      const unknown = address(uniqueName('nobody'));
      const forUnknown = await api.post('/api/v1/auth/code', { email: unknown });
      const forKnown = await api.post('/api/v1/auth/code', { email: address(known) });
      t.same([forUnknown.status, forUnknown.text], [forKnown.status, forKnown.text], 'identical replies');
      await mailedCode(address(known));
      t.notOk(
        smtp.mails.some((m) => m.to.includes(unknown)),
        'nothing was mailed to the unknown address',
      );
      isError(t, await api.post('/api/v1/auth/code/login', { email: unknown, code: '123456' }), 401, 'UNAUTHENTICATED', undefined, 'a code for it');
    });

    t.test('addresses: another account’s is refused at verification, a change needs the password, removal ends code login', async (t) => {
      const [a, b] = [uniqueName('own'), uniqueName('thief')];
      await api.post('/api/v1/auth/register', { username: a, password: PW, email: address(a) });
      const la = await api.post('/api/v1/auth/login', { username: a, password: PW });
      await api.post('/api/v1/auth/email/verify', { code: await mailedCode(address(a)) }, { token: la.body.accessToken });
      await api.post('/api/v1/auth/register', { username: b, password: PW });
      const lb = { token: (await api.post('/api/v1/auth/login', { username: b, password: PW })).body.accessToken as string };
      // Whether an address has an account is told only to whoever shows the mailbox is theirs.
      const takenSet = await api.post('/api/v1/auth/email', { email: address(a).toUpperCase(), password: PW }, lb);
      t.equal(takenSet.status, 202, 'asking for a verified address of another account looks like any other');
      isError(
        t,
        await api.post('/api/v1/auth/email/verify', { code: await mailedCode(address(a)) }, lb),
        409,
        'EMAIL_TAKEN',
        'email',
        'its code, back from that mailbox, says it is taken',
      );
      const dup = await api.post('/api/v1/auth/register', { username: uniqueName('dup'), password: PW, email: address(a) });
      t.equal(dup.status, 201, 'registering with it does not tell either');
      await mailedCode(address(a));
      isError(
        t,
        await api.post('/api/v1/auth/email', { email: address(b), password: 'wrong password!' }, lb),
        400,
        'VALIDATION',
        'password',
        'a wrong password',
      );
      for (const bad of [
        `${address(b)},victim@example.test`,
        `${address(b)}\r\nBcc: victim@example.test`,
        'Bob <b@example.test>',
        'no-at-sign',
        `${'x'.repeat(250)}@example.test`,
      ]) {
        isError(t, await api.post('/api/v1/auth/email', { email: bad, password: PW }, lb), 400, 'VALIDATION', 'email', JSON.stringify(bad.slice(0, 40)));
      }
      const set = await api.post('/api/v1/auth/email', { email: address(b), password: PW }, lb);
      t.equal(set.status, 202, set.text);
      t.match(set.body.user, { email: null, pendingEmail: address(b) });
      await api.post('/api/v1/auth/email/verify', { code: await mailedCode(address(b)) }, lb);

      const removed = await api.request('DELETE', '/api/v1/auth/email', { password: PW }, lb);
      t.match(removed.body.user, { email: null, pendingEmail: null }, 'removed');
      const before = smtp.mails.length;
      t.equal((await api.post('/api/v1/auth/code', { email: address(b) })).status, 202);
      await api.post('/api/v1/auth/code', { email: address(a) });
      await mailedCode(address(a));
      t.equal(smtp.mails.slice(before).filter((m) => m.to.includes(address(b))).length, 0, 'no login code for a removed address');
    });

    t.test('no code ever reaches the log', async (t) => {
      t.ok(codes.length >= 8, `${codes.length} codes mailed`);
      const text = cap.text();
      t.same(
        codes.filter((c) => text.includes(c)),
        [],
        'none of them in any log line',
      );
      t.ok(
        cap.lines.some((l) => l.msg === 'one-time code mailed'),
        'while the mailing itself is logged',
      );
    });
  });
}

t.test('codes are limited per address and per client IP', async (t) => {
  const smtp = await startSmtpSink(t);
  const env = { ...FAST, SB_SMTP_URL: smtp.url, SB_CODES_PER_ADDRESS_PER_HOUR: '3', SB_CODES_PER_IP_PER_HOUR: '6' };
  const api = new Api((await startTestHub(t, { env })).url);
  const [a, b, c] = [address(uniqueName('la')), address(uniqueName('lb')), address(uniqueName('lc'))];
  for (let i = 0; i < 3; i++) t.equal((await api.post('/api/v1/auth/code', { email: a })).status, 202, `code ${i + 1} for one address`);
  const fourth = await api.post('/api/v1/auth/code', { email: a.toUpperCase() });
  isError(t, fourth, 429, 'RATE_LIMITED', undefined, 'a fourth for the same address, in any case');
  t.ok(Number(fourth.headers.get('retry-after')) > 0, 'with Retry-After');
  // The IP has asked 4 times; two more addresses fit under 6, a third does not.
  t.equal((await api.post('/api/v1/auth/code', { email: b })).status, 202);
  t.equal((await api.post('/api/v1/auth/code', { email: c })).status, 202);
  isError(t, await api.post('/api/v1/auth/code', { email: address(uniqueName('ld')) }), 429, 'RATE_LIMITED', undefined, 'the seventh from one IP');
});
