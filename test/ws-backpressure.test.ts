// A subscriber that stops reading while its room is busy is cut off once the hub has buffered
// SB_WS_MAX_BACKPRESSURE_BYTES for it; the hub lives on, and the subscriber, reconnecting with the
// last seq it saw, receives every message exactly once and in order.

import { Packr } from 'msgpackr';
import t from 'tap';
import WebSocket from 'ws';
import { Api, uniqueName } from './helpers/api.js';
import { startTestHub } from './helpers/hub.js';

// Timestamps arrive as 64-bit integers; read them as JS numbers (they are below 2^53).
const packr = new Packr({ useRecords: false, int64AsType: 'number' });

function open(url: string, token: string, onFrame: (f: any) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, 'sb.v1.msgpack', { headers: { authorization: `Bearer ${token}` } });
    ws.on('message', (d: Buffer) => onFrame(packr.unpack(d)));
    ws.once('message', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Resolves when `cond` holds, checking after each turn of the event loop; rejects at the deadline. */
function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const check = () => (cond() ? resolve() : Date.now() > deadline ? reject(new Error(`timed out waiting for ${what}`)) : setImmediate(check));
    check();
  });
}

t.test('slow consumer: closed with a reconnect code, then resumes without gap or duplicate', async (t) => {
  const hub = await startTestHub(t, {
    env: {
      SB_WS_MAX_BACKPRESSURE_BYTES: '65536',
      SB_WS_PUBLISH_PER_SECOND: '100000',
      SB_WS_PUBLISH_BURST: '100000',
      SB_MAX_MESSAGE_BYTES: '16384',
      SB_MAX_BODY_BYTES: '65536',
    },
  });
  const api = new Api(hub.url);
  const owner = await api.signUp(uniqueName());
  const reader = await api.signUp(uniqueName());
  const room = (await api.post('/api/v1/rooms', { kind: 'group', name: 'firehose' }, { token: owner.token })).body.room.id as string;
  await api.post(`/api/v1/rooms/${room}/join`, undefined, { token: reader.token });

  const seen: number[] = [];
  let subscribed = false;
  const slow = await open(hub.url, reader.token, (f) => {
    if (f.t === 'subscribed') subscribed = true;
    if (f.t === 'msg') seen.push(f.seq);
  });
  const closed = new Promise<number>((resolve) => slow.once('close', (code) => resolve(code)));
  slow.send(packr.pack({ t: 'sub', id: 1, room }));
  await until(() => subscribed, 'subscribed');
  // Stop reading: the hub's buffer for this socket grows once the kernel buffers are full.
  (slow as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();

  const TOTAL = 1200;
  let acked = 0;
  const publisher = await open(hub.url, owner.token, (f) => {
    if (f.t === 'ack') acked++;
  });
  const body = 'x'.repeat(12_000);
  for (let i = 1; i <= TOTAL; i++) publisher.send(packr.pack({ t: 'pub', id: i, room, cid: `bp-${i}`, body }));
  await until(() => acked === TOTAL, 'every publish acked');
  await until(() => hub.ws.connections === 1, 'the hub to drop the slow consumer');
  (slow as unknown as { _socket: { resume(): void } })._socket.resume();
  const code = await closed;
  t.equal(code, 4001, 'closed with 4001 SLOW_CONSUMER, after everything it was sent');
  t.ok(seen.length < TOTAL, `cut off after ${seen.length} of ${TOTAL} messages`);
  // Seq 1 is the reader's join.
  t.same(
    seen,
    Array.from({ length: seen.length }, (_, i) => i + 2),
    'what it got before the cut was in order',
  );

  const last = seen[seen.length - 1] ?? 1;
  const resumed: number[] = [];
  let done = false;
  const again = await open(hub.url, reader.token, (f) => {
    if (f.t === 'msg') resumed.push(f.seq);
    if (f.t === 'subscribed') done = true;
  });
  again.send(packr.pack({ t: 'sub', id: 1, room, since: last }));
  await until(() => done && resumed.length === TOTAL + 1 - last, 'the resumed stream');
  t.same(
    [...seen, ...resumed],
    Array.from({ length: TOTAL }, (_, i) => i + 2),
    'every seq exactly once, in order',
  );
  t.equal((await api.get('/readyz')).status, 200, 'the hub is fine');
  for (const ws of [again, publisher]) ws.close();
});
