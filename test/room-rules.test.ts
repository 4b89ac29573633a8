// The room rules on their own: the answers RoomsService (REST) and the room actor (WebSocket) both
// give, decided in one place.

import t from 'tap';
import { assertDeletable, assertJoinable, assertLeavable, assertMember, assertVisible } from '../src/chat/room-rules.js';

const group = { kind: 'group' as const, ownerId: 'owner' };
const direct = { kind: 'direct' as const, ownerId: null };

t.test('seeing a room', async (t) => {
  t.throws(() => assertVisible(undefined), { code: 'NOT_FOUND' }, 'a missing room');
  t.doesNotThrow(() => assertVisible({ room: group, role: null }), 'a group room, to anyone');
  t.throws(() => assertVisible({ room: direct, role: null }), { code: 'NOT_FOUND' }, "someone else's direct room does not exist for them");
  t.doesNotThrow(() => assertVisible({ room: direct, role: 'member' }));
});

t.test('member-only operations', async (t) => {
  t.throws(() => assertMember(undefined), { code: 'NOT_FOUND' });
  t.throws(() => assertMember({ room: group, role: null }), { code: 'NOT_MEMBER' }, 'a visible room: 403');
  t.throws(() => assertMember({ room: direct, role: null }), { code: 'NOT_FOUND' }, 'a hidden room: 404, not 403');
  t.doesNotThrow(() => assertMember({ room: group, role: 'member' }));
  t.doesNotThrow(() => assertMember({ room: group, role: 'owner' }));
});

t.test('joining, leaving, deleting', async (t) => {
  t.doesNotThrow(() => assertJoinable(group));
  t.throws(() => assertJoinable(direct), { code: 'FORBIDDEN' });
  t.doesNotThrow(() => assertLeavable(group, 'member'));
  t.throws(() => assertLeavable(group, 'owner'), { code: 'CONFLICT' }, 'the owner deletes instead');
  t.throws(() => assertLeavable(direct, 'member'), { code: 'FORBIDDEN' });
  t.doesNotThrow(() => assertDeletable('owner', false));
  t.doesNotThrow(() => assertDeletable(null, true), 'an admin acts as owner');
  t.throws(() => assertDeletable('moderator', false), { code: 'NOT_OWNER' });
  t.throws(() => assertDeletable(null, false), { code: 'NOT_OWNER' });
});
