// The per-room listener registry behind the Bus and Presence: a room's feed opens with its first
// listener and closes with its last, exactly once each.

import t from 'tap';
import { RoomListeners } from '../src/cluster/room-listeners.js';

function registry() {
  const log: string[] = [];
  const feeds = new Map<string, ReadonlySet<string>>();
  const r = new RoomListeners<string>((room, listeners) => {
    log.push(`open ${room}`);
    feeds.set(room, listeners);
    return () => log.push(`close ${room}`);
  });
  return { r, log, feeds };
}

t.test('the first listener opens the room, the last one leaving closes it', async (t) => {
  const { r, log, feeds } = registry();
  const offA = r.add('room', 'a');
  const offB = r.add('room', 'b');
  t.same(log, ['open room'], 'opened once');
  t.same([...(feeds.get('room') ?? [])], ['a', 'b'], 'the feed sees every listener as it comes');
  t.same([...r.of('room')], ['a', 'b']);
  offA();
  offA();
  t.same(log, ['open room'], 'still open while b listens; removing twice is harmless');
  offB();
  t.same(log, ['open room', 'close room']);
  t.same([...r.of('room')], []);
  r.add('room', 'c');
  t.same(log, ['open room', 'close room', 'open room'], 'a new listener opens it again');
  offB();
  t.same([...r.of('room')], ['c'], 'a stale remover does not touch the new opening');
});

t.test('all() walks every room; clear() closes each open room once', async (t) => {
  const { r, log } = registry();
  r.add('x', 'a');
  r.add('y', 'b');
  r.add('y', 'c');
  t.same([...r.all()].sort(), ['a', 'b', 'c']);
  r.clear();
  t.same(log, ['open x', 'open y', 'close x', 'close y']);
  t.same([...r.all()], []);
});

t.test('without a feed, it is a plain registry', async (t) => {
  const r = new RoomListeners<number>();
  const off = r.add('room', 1);
  t.same([...r.of('room')], [1]);
  off();
  t.same([...r.of('room')], []);
});
