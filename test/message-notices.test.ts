// The live message notices' index on one node, against a store whose answers the test sets: a
// digest missed (it held a removal) is noticed by the gap in seqs, and the room's local members are
// read again before anything more of the room is sent; levels and mentions pick who is told; the
// sender is never told of their own message; repeats are ignored. And the @name rule.

import t from 'tap';
import { MessageNotices, mentionedNames } from '../src/cluster/message-notices.js';
import type { MessageNoticeFrame, NotifyLevel } from '../src/protocol/frames.js';
import type { Store } from '../src/store/store.js';
import { capturedLog } from './helpers/log.js';

const ROOM = '00000000-0000-4000-8000-000000000001';
const A = { id: 'a', username: 'Ada' };
const B = { id: 'b', username: 'bob' };
const C = { id: 'c', username: 'cy' };

function setUp(members: Map<string, NotifyLevel>, lastSeq = 10) {
  const sent: [string, MessageNoticeFrame][] = [];
  let rereads = 0;
  const store = {
    notices: {
      memberships: async (userId: string) => (members.has(userId) ? [{ roomId: ROOM, level: members.get(userId), lastSeq }] : []),
      members: async (_room: string, ids: string[]) => {
        rereads++;
        return new Map([...members].filter(([id]) => ids.includes(id)));
      },
    },
  } as unknown as Store;
  const notices = new MessageNotices(store, (userId, frame) => sent.push([userId, frame]), capturedLog().log);
  return { notices, sent, rereads: () => rereads };
}

const msg = (seq: number, from: string, body: string) => ({ id: `m${seq}`, roomId: ROOM, seq, senderId: from, cid: `c${seq}`, body, createdAt: new Date() });
const event = (seq: number, kind: 'member_removed' | 'member_joined', user: { id: string; username: string }) => ({
  ...msg(seq, 'a', ''),
  event: { kind, user },
});
const settle = () => new Promise((r) => setImmediate(r));

t.test('levels, mentions, the sender, repeats', async (t) => {
  const { notices, sent } = setUp(
    new Map<string, NotifyLevel>([
      ['a', 'all'],
      ['b', 'mentions'],
      ['c', 'muted'],
    ]),
  );
  for (const u of [A, B, C]) notices.attach(u);
  await settle();
  t.same(notices.size, { people: 3, rooms: 1 });
  notices.announce(ROOM, [msg(11, 'a', 'one'), msg(12, 'c', 'two')]);
  notices.announce(ROOM, [msg(13, 'c', 'hey @BOB.')]);
  notices.announce(ROOM, [msg(13, 'c', 'hey @BOB.')]);
  await settle();
  t.same(
    sent.map(([u, f]) => [u, f.seq, f.count, f.from, f.preview, f.mention ?? false]),
    [
      ['a', 12, 1, 'c', 'two', false],
      ['a', 13, 1, 'c', 'hey @BOB.', false],
      ['b', 13, 1, 'c', 'hey @BOB.', true],
    ],
    'a: all but their own; b: only the mention (case and a full stop aside); c: muted; a repeat: nothing',
  );
});

t.test('a missed digest that held a removal: the gap makes the node read the members again first', async (t) => {
  const members = new Map<string, NotifyLevel>([
    ['a', 'all'],
    ['b', 'all'],
  ]);
  const { notices, sent, rereads } = setUp(members);
  notices.attach(B);
  await settle();
  notices.announce(ROOM, [msg(11, 'a', 'before')]);
  await settle();
  t.equal(sent.length, 1, 'b is told');
  members.delete('b'); // seq 12 removed b: its digest never arrived
  notices.announce(ROOM, [msg(13, 'a', 'secret')]);
  await settle();
  await settle();
  t.equal(rereads(), 1, 'the gap 11 → 13 made the node read the members');
  t.equal(sent.length, 1, 'and b, no longer a member, was told nothing');
  t.same(notices.size, { people: 1, rooms: 0 }, 'the room left the index with its last local member');
});

t.test('membership events in the digests keep the index current', async (t) => {
  const { notices, sent } = setUp(new Map<string, NotifyLevel>([['a', 'all']]));
  notices.attach(B);
  await settle();
  t.same(notices.size, { people: 1, rooms: 0 }, 'b is in no room');
  notices.announce(ROOM, [event(20, 'member_joined', B), msg(21, 'a', 'welcome')]);
  await settle();
  t.same(
    sent.map(([u, f]) => [u, f.seq]),
    [['b', 21]],
    'joined: told of the next message at once',
  );
  notices.announce(ROOM, [event(22, 'member_removed', B), msg(23, 'a', 'after')]);
  await settle();
  t.equal(sent.length, 1, 'removed: told nothing more');
  notices.detach('b');
  t.same(notices.size, { people: 0, rooms: 0 });
});

t.test('@names, as the store finds them', async (t) => {
  t.same(mentionedNames('hi @ada and @Bob_1, thanks @cy.'), ['ada', 'bob_1', 'cy.']);
  t.same(mentionedNames('mail me at x@example.com or @ab'), [], 'an address, and a name too short');
  t.same(mentionedNames(Array.from({ length: 30 }, (_, i) => `@user${i}`).join(' ')).length, 20, 'at most 20');
  t.same(mentionedNames('no at sign'), []);
});

t.test('a load that raced a removal, and a room_added that arrived after the removal, add nobody back', async (t) => {
  const members = new Map<string, NotifyLevel>([
    ['b', 'all'],
    ['c', 'all'],
  ]);
  let gate: Promise<void> = Promise.resolve();
  let release!: () => void;
  const sent: [string, MessageNoticeFrame][] = [];
  const store = {
    notices: {
      // The snapshot is taken when asked, and answered when the gate opens.
      memberships: async (userId: string) => {
        const snapshot = members.has(userId) ? [{ roomId: ROOM, level: 'all' as NotifyLevel, lastSeq: 10 }] : [];
        await gate;
        return snapshot;
      },
      members: async (_room: string, ids: string[]) => new Map([...members].filter(([id]) => ids.includes(id))),
    },
  } as unknown as Store;
  const notices = new MessageNotices(store, (userId, frame) => sent.push([userId, frame]), capturedLog().log);
  notices.attach(C);
  await settle();
  gate = new Promise<void>((r) => {
    release = r;
  });
  notices.attach(B);
  // While b's rooms are being read, b is removed at seq 11, and this node hears of it (c is in the room).
  members.delete('b');
  notices.announce(ROOM, [event(11, 'member_removed', B)]);
  await settle();
  release();
  for (let i = 0; i < 5; i++) await settle();
  notices.announce(ROOM, [msg(12, 'a', 'after the removal')]);
  // A late room_added (numbered before the removal, delivered after it) is checked against the store.
  notices.personal('b', { t: 'notice', n: 1, kind: 'room_added', room: { id: ROOM, kind: 'group', name: 'x' }, by: 'b' });
  notices.announce(ROOM, [msg(13, 'a', 'still after')]);
  for (let i = 0; i < 5; i++) await settle();
  t.same(
    sent.map(([u, f]) => [u, f.seq]),
    [
      ['c', 12],
      ['c', 13],
    ],
    'c is told; b, removed, is told nothing of the room',
  );
});
