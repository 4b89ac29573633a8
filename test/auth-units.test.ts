// Unit tests: the rate limiter under a fake clock, and argon2id password hashing.

import t from 'tap';
import { Passwords } from '../src/auth/passwords.js';
import { RateLimiter } from '../src/auth/rate-limit.js';

t.test('fixed window: blocks past the limit until the window ends', async (t) => {
  let now = 1_000_000;
  const rl = new RateLimiter(3, 60_000, () => now);
  t.equal(rl.take('ip'), 0);
  t.equal(rl.take('ip'), 0);
  t.equal(rl.take('ip'), 0);
  t.equal(rl.take('ip'), 60, 'the 4th waits the whole window');
  t.equal(rl.take('other'), 0, 'keys are independent');
  now += 45_500;
  t.equal(rl.blockedFor('ip'), 15, 'rounded up to whole seconds');
  now += 14_500;
  t.equal(rl.take('ip'), 0, 'a new window');
  rl.hit('u');
  rl.hit('u');
  rl.hit('u');
  t.ok(rl.blockedFor('u') > 0);
  rl.reset('u');
  t.equal(rl.blockedFor('u'), 0, 'reset clears a key');
});

t.test('the number of tracked keys is bounded', async (t) => {
  let now = 0;
  const rl = new RateLimiter(1, 1000, () => now, 100);
  for (let i = 0; i < 1000; i++) rl.hit(`k${i}`);
  t.ok((rl as unknown as { windows: Map<string, unknown> }).windows.size <= 100);
  t.ok(rl.blockedFor('k999') > 0, 'the newest keys are kept');
  now += 2000;
  rl.hit('fresh');
  t.equal(rl.blockedFor('k999'), 0, 'expired windows do not block');
});

t.test('argon2id: hashes verify, wrong passwords and unknown users do not', async (t) => {
  const pw = new Passwords({ memoryKiB: 19_456, timeCost: 2 });
  const hash = await pw.hash('correct horse battery');
  t.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  t.equal(await pw.verify(hash, 'correct horse battery'), true);
  t.equal(await pw.verify(hash, 'wrong horse battery'), false);
  t.equal(await pw.verify(undefined, 'correct horse battery'), false, 'unknown user');
  t.equal(pw.needsRehash(hash), false);
  t.equal(new Passwords({ memoryKiB: 32_768, timeCost: 2 }).needsRehash(hash), true, 'changed parameters ask for a rehash');
});
