// Unit tests: argon2id password hashing. (The login limits are tested end to end in
// http-auth.test.ts and attack-http.test.ts: they count in the database.)

import t from 'tap';
import { Passwords } from '../src/auth/passwords.js';

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
