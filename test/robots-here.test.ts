// RobotsHere: the robots a node holds, and the drain's wait for their leases to move, which ends on
// the event (the last lease handed over), not on a poll; or at its deadline, saying how many stayed.

import t from 'tap';
import { RobotsHere } from '../src/actors/robots-here.js';

t.test('tracks the robots connected here', async (t) => {
  const here = new RobotsHere();
  here.presence.online('a');
  here.presence.online('b');
  here.presence.offline('a');
  t.same(here.connected(), ['b']);
  t.ok(here.isOnline('b'));
  t.notOk(here.isOnline('a'));
});

t.test('the drain wait ends when the last of the robots it waits for hands its lease over', async (t) => {
  const here = new RobotsHere();
  for (const r of ['a', 'b', 'other']) here.leaseHeld(r, true);
  t.equal(await here.leasesMoved([], 60_000), 0, 'nothing to wait for: at once');
  const waiting = here.leasesMoved(['a', 'b'], 60_000);
  let settled = false;
  void waiting.then(() => {
    settled = true;
  });
  here.leaseHeld('a', false);
  await new Promise<void>((r) => setImmediate(r));
  t.notOk(settled, 'still waiting for b');
  here.leaseHeld('other', false);
  await new Promise<void>((r) => setImmediate(r));
  t.notOk(settled, 'a lease it does not wait for changes nothing');
  here.leaseHeld('b', false);
  t.equal(await waiting, 0, 'every lease moved, long before the deadline');
});

t.test('at the deadline it says how many leases stayed', async (t) => {
  const here = new RobotsHere();
  here.leaseHeld('a', true);
  here.leaseHeld('b', true);
  const waiting = here.leasesMoved(['a', 'b'], 30);
  here.leaseHeld('a', false);
  t.equal(await waiting, 1, 'b did not move');
});
