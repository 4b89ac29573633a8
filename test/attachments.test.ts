// Attachments through the real server, on PostgreSQL and the embedded store: upload → message →
// download as a member (whole, and by ranges across chunk boundaries), refusals for non-members,
// types, sizes and quotas, an upload cut short leaving nothing, the concurrency bounds, a file going
// with the last message carrying it, and avatars stored the same way.

import { randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import WebSocket from 'ws';
import { SwitchboardClient } from '../src/client/index.js';
import type { MessageFrame } from '../src/protocol/frames.js';
import { Api, roomWith, uniqueName } from './helpers/api.js';
import { jpegHead, partialUpload, png, stalledDownload } from './helpers/files.js';
import { FAST, startTestHub } from './helpers/hub.js';
import { openFor, subscribe } from './helpers/ws.js';

const MAX = 2 * 1024 * 1024;
const QUOTA = 3 * 1024 * 1024;
const CHUNK = 256 * 1024;

for (const embedded of [false, true]) {
  t.test(embedded ? 'embedded' : 'postgres', async (t) => {
    const hub = await startTestHub(t, {
      embedded,
      env: { ...FAST, SB_ATTACHMENT_MAX_BYTES: String(MAX), SB_ATTACHMENT_QUOTA_BYTES: String(QUOTA), SB_UPLOADS_MAX: '6' },
    });
    const api = new Api(hub.url);
    type User = Awaited<ReturnType<Api['signUp']>>;
    const upload = (u: User, name: string, type: string, data: Uint8Array, path = '/api/v1/attachments') =>
      api.request('POST', `${path}?name=${encodeURIComponent(name)}`, undefined, { token: u.token, raw: data, headers: { 'content-type': type } });
    const fetchFile = (u: User, id: string, headers: Record<string, string> = {}) =>
      fetch(`${hub.url}/api/v1/attachments/${id}`, { headers: { authorization: `Bearer ${u.token}`, ...headers } });
    const storage = async (u: User) => (await api.get('/api/v1/auth/me/storage', { token: u.token })).body as { usedBytes: number; files: number };
    /** Waits (polling the hub, at most 10 s) until the person's storage is as expected. */
    const storageBecomes = async (u: User, files: number) => {
      for (let i = 0; i < 200; i++) {
        if ((await storage(u)).files === files) return true;
        await new Promise((r) => setImmediate(r));
        await api.get('/api/v1/auth/me/storage', { token: u.token });
      }
      return false;
    };

    t.test('upload, post, download as a member: whole, by ranges, cached', async (t) => {
      const [a, b, c] = (await Promise.all([1, 2, 3].map(() => api.signUp(uniqueName('at'))))) as [User, User, User];
      const room = await roomWith(api, a, b);
      const picture = png(300, 200);
      const up = await upload(a, 'sunset.png', 'image/png', picture);
      t.equal(up.status, 201);
      t.same(up.body, { id: up.body.id, name: 'sunset.png', type: 'image/png', size: picture.length, width: 300, height: 200 }, 'dimensions read');
      // Bytes across several chunks, with a name that needs RFC 6266 encoding.
      const doc = randomBytes(CHUNK * 3 + 1234);
      const up2 = await upload(a, 'Rapport été "final".pdf', 'application/pdf', doc);
      t.equal(up2.status, 201);
      t.notOk('width' in up2.body, 'no dimensions for a document');

      const sockB = await openFor(t, hub.url, b.token, { encoding: 'json' });
      await subscribe(sockB, room);
      const posted = await api.post(`/api/v1/rooms/${room}/messages`, { cid: 'm1', body: '', attachments: [up.body.id, up2.body.id] }, { token: a.token });
      t.equal(posted.status, 201, 'a message of files only');
      t.same(posted.body.message.attachments, [up.body, up2.body], 'REST answer lists them in order');
      const again = await api.post(`/api/v1/rooms/${room}/messages`, { cid: 'm1', body: '', attachments: [up.body.id, up2.body.id] }, { token: a.token });
      t.match([again.status, again.body], [200, { duplicate: true }], 'a retry');
      const swapped = await api.post(`/api/v1/rooms/${room}/messages`, { cid: 'm1', body: '', attachments: [up2.body.id] }, { token: a.token });
      t.match([swapped.status, swapped.body], [409, { error: { code: 'CONFLICT' } }], 'the same cid with other files');
      const live = await sockB.next((f) => f.t === 'msg' && f.cid === 'm1', 'the message');
      t.same(live.att, [up.body, up2.body], 'a subscriber gets them as att');
      const hist = await api.get(`/api/v1/rooms/${room}/messages`, { token: b.token });
      t.same(hist.body.messages.at(-1).attachments, [up.body, up2.body], 'history shows them');

      const got = await fetchFile(b, up.body.id);
      t.equal(got.status, 200);
      t.same(Buffer.from(await got.arrayBuffer()), picture, 'the same bytes');
      t.equal(got.headers.get('content-type'), 'image/png');
      t.equal(got.headers.get('content-disposition'), `inline; filename="sunset.png"; filename*=UTF-8''sunset.png`);
      t.equal(got.headers.get('x-content-type-options'), 'nosniff');
      t.match(got.headers.get('content-security-policy'), /sandbox/);
      t.equal(got.headers.get('content-length'), String(picture.length));
      const etag = got.headers.get('etag') as string;
      const cached = await fetchFile(b, up.body.id, { 'if-none-match': etag });
      t.equal(cached.status, 304, 'If-None-Match: 304');
      t.equal(cached.headers.get('content-length'), null, 'a 304 claims no length');
      for (const tag of [`W/${etag}`, '*', `"other", ${etag}`])
        t.equal((await fetchFile(b, up.body.id, { 'if-none-match': tag })).status, 304, `If-None-Match: ${tag}`);
      t.equal((await fetchFile(b, up.body.id, { 'if-none-match': '"other"' })).status, 200, 'another tag: the file');

      const whole = await fetchFile(b, up2.body.id);
      t.same(Buffer.from(await whole.arrayBuffer()), doc, 'a file of several chunks, whole');
      t.equal(
        whole.headers.get('content-disposition'),
        `attachment; filename="Rapport _t_ _final_.pdf"; filename*=UTF-8''Rapport%20%C3%A9t%C3%A9%20%22final%22.pdf`,
      );
      for (const [range, start, end] of [
        ['bytes=0-9', 0, 9],
        [`bytes=${CHUNK - 5}-${CHUNK + 5}`, CHUNK - 5, CHUNK + 5],
        [`bytes=${CHUNK}-`, CHUNK, doc.length - 1],
        ['bytes=-100', doc.length - 100, doc.length - 1],
        [`bytes=5-${doc.length * 2}`, 5, doc.length - 1],
      ] as const) {
        const r = await fetchFile(b, up2.body.id, { range });
        t.equal(r.status, 206, range);
        t.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${doc.length}`, `${range}: Content-Range`);
        t.same(Buffer.from(await r.arrayBuffer()), doc.subarray(start, end + 1), `${range}: those bytes`);
      }
      const past = await fetchFile(b, up2.body.id, { range: `bytes=${doc.length}-` });
      t.equal(past.status, 416, 'a range past the end');
      t.equal(past.headers.get('content-range'), `bytes */${doc.length}`);
      t.match(await past.json(), { error: { code: 'RANGE_NOT_SATISFIABLE' } });
      t.equal((await fetchFile(b, up2.body.id, { range: 'bytes=0-1,5-9' })).status, 200, 'several ranges: the whole file');

      t.equal((await fetchFile(c, up.body.id)).status, 403, 'not a member');
      t.match(await (await fetchFile(c, up.body.id)).json(), { error: { code: 'FORBIDDEN' } });
      t.equal((await fetchFile(c, randomUUID())).status, 404, 'no such file');
      t.equal((await fetch(`${hub.url}/api/v1/attachments/${up.body.id}`)).status, 401, 'no token');
      t.equal((await api.post(`/api/v1/rooms/${room}/join`, undefined, { token: c.token })).status, 200);
      t.equal((await fetchFile(c, up.body.id)).status, 200, 'a member once joined (history is open to members)');
    });

    t.test('over WebSocket: att on pub, and what may be attached', async (t) => {
      const [a, b] = (await Promise.all([1, 2].map(() => api.signUp(uniqueName('aw'))))) as [User, User];
      const room = await roomWith(api, a, b);
      const sock = await openFor(t, hub.url, a.token, { encoding: 'json' });
      const mine = (await upload(a, 'photo.jpg', 'image/jpeg', jpegHead(640, 480))).body;
      t.match(mine, { type: 'image/jpeg', width: 640, height: 480 });
      const turned = (await upload(a, 'portrait.jpg', 'image/jpeg', jpegHead(640, 480, 6))).body;
      t.match(turned, { width: 480, height: 640 }, 'EXIF orientation 6: shown turned a quarter');
      const theirs = (await upload(b, 'x.txt', 'text/plain', Buffer.from('hello'))).body;
      const ack = await sock.request({ t: 'pub', room, cid: 'w1', body: 'look', att: [mine.id] });
      t.equal(ack.t, 'ack');
      const hist = await sock.request({ t: 'hist', room });
      t.same(hist.messages.at(-1).att, [mine], 'history frames carry att');
      t.match(await sock.request({ t: 'pub', room, cid: 'w2', body: 'x', att: [theirs.id] }), { t: 'nack', code: 'NOT_FOUND' }, "someone else's file");
      t.match(await sock.request({ t: 'pub', room, cid: 'w3', body: 'x', att: [randomUUID()] }), { t: 'nack', code: 'NOT_FOUND' }, 'no such file');
      t.match(await sock.request({ t: 'pub', room, cid: 'w4', body: 'x', att: [mine.id, mine.id] }), { t: 'nack', code: 'VALIDATION' }, 'twice');
      t.match(
        await sock.request({ t: 'pub', room, cid: 'w5', body: 'x', att: Array(11).fill(mine.id) }),
        { t: 'error', code: 'VALIDATION', id: Number },
        'more than 10',
      );
      t.match(await sock.request({ t: 'pub', room, cid: 'w6', body: 'x', att: ['nope'] }), { t: 'error', code: 'VALIDATION', id: Number }, 'not an id');
      t.match(
        await sock.request({ t: 'pub', room, cid: 'w7', body: '' }),
        { t: 'nack', code: 'VALIDATION', message: /^body: must not be empty/ },
        'empty without files',
      );
    });

    t.test('through the SDK: publish with attachments; the message event carries them', async (t) => {
      const [a, b] = (await Promise.all([1, 2].map(() => api.signUp(uniqueName('as'))))) as [User, User];
      const room = await roomWith(api, a, b);
      const f = (await upload(a, 'notes.txt', 'text/plain', Buffer.from('notes'))).body;
      const [ca, cb] = [a, b].map((u) => new SwitchboardClient({ url: `${hub.url.replace(/^http/, 'ws')}/ws`, token: u.token, WebSocket })) as [
        SwitchboardClient,
        SwitchboardClient,
      ];
      t.teardown(() => Promise.all([ca.close(), cb.close()]));
      await Promise.all([ca.connect(), cb.connect()]);
      await cb.subscribe(room);
      const delivered = new Promise<MessageFrame>((resolve) => cb.on('message', resolve));
      const ack = await ca.publish(room, '', { attachments: [f.id] });
      t.match(await delivered, { seq: ack.seq, body: '', att: [f] });
    });

    t.test('refusals: type, a picture that is not one, size, quota, no length, no name', async (t) => {
      const a = await api.signUp(uniqueName('ar'));
      const html = await upload(a, 'x.html', 'text/html', Buffer.from('<script>alert(1)</script>'));
      t.match([html.status, html.body], [415, { error: { code: 'UNSUPPORTED_MEDIA_TYPE' } }], 'a type not allowed');
      const fake = await upload(a, 'x.png', 'image/png', Buffer.from('<svg onload=alert(1)>'));
      t.match([fake.status, fake.body], [415, { error: { code: 'UNSUPPORTED_MEDIA_TYPE' } }], 'not a PNG');
      const gif = await upload(a, 'x.png', 'image/png', Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'));
      t.match([gif.status, gif.body.error.message], [415, /gif picture, not image\/png/], 'a GIF called a PNG');
      const big = await upload(a, 'big.pdf', 'application/pdf', Buffer.alloc(MAX + 1));
      t.match([big.status, big.body], [413, { error: { code: 'PAYLOAD_TOO_LARGE', limit: MAX } }], 'over SB_ATTACHMENT_MAX_BYTES');
      t.equal((await upload(a, 'max.pdf', 'application/pdf', Buffer.alloc(MAX))).status, 201, 'exactly the limit');
      const over = await upload(a, 'more.pdf', 'application/pdf', Buffer.alloc(QUOTA - MAX + 1));
      t.match([over.status, over.body], [413, { error: { code: 'QUOTA_EXCEEDED', quota: QUOTA, used: MAX } }], 'over the quota');
      t.equal((await upload(a, 'fits.pdf', 'application/pdf', Buffer.alloc(QUOTA - MAX))).status, 201, 'exactly what is left');
      t.same(await storage(a), { usedBytes: QUOTA, files: 2, quotaBytes: QUOTA, maxFileBytes: MAX });
      const b = await api.signUp(uniqueName('ar'));
      const chunked = await fetch(`${hub.url}/api/v1/attachments?name=x.txt`, {
        method: 'POST',
        headers: { authorization: `Bearer ${b.token}`, 'content-type': 'text/plain' },
        body: new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode('hi'));
            c.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      t.match([chunked.status, await chunked.json()], [411, { error: { code: 'LENGTH_REQUIRED' } }], 'no Content-Length');
      const noName = await api.request('POST', '/api/v1/attachments', undefined, {
        token: b.token,
        raw: Buffer.from('x'),
        headers: { 'content-type': 'text/plain' },
      });
      t.match([noName.status, noName.body], [400, { error: { code: 'VALIDATION', field: 'name' } }]);
      const slash = await upload(b, '../../etc/passwd', 'text/plain', Buffer.from('x'));
      t.equal(slash.body.name, 'passwd', 'a path is cut to its last part');
      t.equal(
        (await api.request('POST', '/api/v1/attachments?name=x', undefined, { raw: Buffer.from('x'), headers: { 'content-type': 'text/plain' } })).status,
        401,
      );
      t.same(await storage(b), { usedBytes: 1, files: 1, quotaBytes: QUOTA, maxFileBytes: MAX }, 'only the accepted upload counts');
    });

    t.test('an upload cut short leaves nothing; at most 4 at once per person and SB_UPLOADS_MAX per node', async (t) => {
      const [a, b] = (await Promise.all([1, 2].map(() => api.signUp(uniqueName('ai'))))) as [User, User];
      const cut = await partialUpload(hub.url, '/api/v1/attachments?name=cut.pdf', a.token, 'application/pdf', MAX, randomBytes(CHUNK + 1000));
      t.ok(await storageBecomes(a, 1), 'the upload in progress is reserved against the quota');
      cut.stop();
      t.ok(await storageBecomes(a, 0), 'once cut, nothing of it is left');

      const open = [];
      for (let i = 0; i < 4; i++)
        open.push(await partialUpload(hub.url, `/api/v1/attachments?name=p${i}.pdf`, a.token, 'application/pdf', 1000, Buffer.alloc(10)));
      t.ok(await storageBecomes(a, 4));
      const fifth = await upload(a, 'p5.pdf', 'application/pdf', Buffer.alloc(10));
      t.match(
        [fifth.status, fifth.body, fifth.headers.get('retry-after')],
        [429, { error: { code: 'RATE_LIMITED', limit: 4 } }, '1'],
        'a fifth of the same person',
      );
      open.push(await partialUpload(hub.url, '/api/v1/attachments?name=q0.pdf', b.token, 'application/pdf', 1000, Buffer.alloc(10)));
      open.push(await partialUpload(hub.url, '/api/v1/attachments?name=q1.pdf', b.token, 'application/pdf', 1000, Buffer.alloc(10)));
      t.ok(await storageBecomes(b, 2));
      const c = await api.signUp(uniqueName('ai'));
      const seventh = await upload(c, 'c.pdf', 'application/pdf', Buffer.alloc(10));
      t.match([seventh.status, seventh.body, seventh.headers.get('retry-after')], [503, { error: { code: 'OVERLOADED' } }, '1'], 'a seventh on the node');
      for (const o of open) o.stop();
      t.ok(await storageBecomes(a, 0));
      t.ok(await storageBecomes(b, 0));
      t.equal((await upload(c, 'c.pdf', 'application/pdf', Buffer.alloc(10))).status, 201, 'room again once they are gone');
    });

    t.test('a file goes with the last message carrying it', async (t) => {
      const a = await api.signUp(uniqueName('ad'));
      const room = await roomWith(api, a);
      const f = (await upload(a, 'f.txt', 'text/plain', Buffer.from('shared'))).body;
      const post = async (cid: string) =>
        (await api.post(`/api/v1/rooms/${room}/messages`, { cid, body: cid, attachments: [f.id] }, { token: a.token })).body.message.seq;
      const [s1, s2] = [await post('d1'), await post('d2')];
      t.equal((await api.delete(`/api/v1/rooms/${room}/messages/${s1}`, { token: a.token })).status, 204);
      t.equal((await fetchFile(a, f.id)).status, 200, 'still carried by the second');
      const hist = await api.get(`/api/v1/rooms/${room}/messages`, { token: a.token });
      t.notOk(hist.body.messages.find((m: { seq: number }) => m.seq === s1).attachments, 'the tombstone shows none');
      t.equal((await api.delete(`/api/v1/rooms/${room}/messages/${s2}`, { token: a.token })).status, 204);
      t.equal((await fetchFile(a, f.id)).status, 404, 'gone with the last');
      t.same((await storage(a)).usedBytes, 0, 'and off the quota');
      const g = (await upload(a, 'g.txt', 'text/plain', Buffer.from('room'))).body;
      await post('d3').catch(() => {});
      await api.post(`/api/v1/rooms/${room}/messages`, { cid: 'd4', body: 'x', attachments: [g.id] }, { token: a.token });
      t.equal((await api.delete(`/api/v1/rooms/${room}`, { token: a.token })).status, 204);
      t.equal((await fetchFile(a, g.id)).status, 404, "gone with the room's messages");
    });

    t.test('avatars: uploaded, visible to anyone signed in, replaced, dropped for a link', async (t) => {
      const [a, b] = (await Promise.all([1, 2].map(() => api.signUp(uniqueName('av'))))) as [User, User];
      const put = (data: Buffer, type = 'image/png') =>
        api.request('PUT', '/api/v1/auth/me/avatar', undefined, { token: a.token, raw: data, headers: { 'content-type': type } });
      const first = await put(png(64, 64));
      t.equal(first.status, 200);
      const url1 = first.body.user.avatarUrl as string;
      t.match(url1, /^\/api\/v1\/attachments\/[0-9a-f-]{36}$/);
      const seen = await fetch(hub.url + url1, { headers: { authorization: `Bearer ${b.token}` } });
      t.equal(seen.status, 200, 'anyone signed in sees it');
      t.equal(seen.headers.get('content-type'), 'image/png');
      t.match((await api.get(`/api/v1/users/${a.id}`, { token: b.token })).body, { user: { avatarUrl: url1 } }, 'the profile shows it');
      t.equal((await put(Buffer.from('%PDF-1.4'), 'application/pdf')).status, 415, 'a picture only');
      const url2 = (await put(png(32, 32))).body.user.avatarUrl as string;
      t.not(url2, url1);
      t.equal((await fetch(hub.url + url1, { headers: { authorization: `Bearer ${b.token}` } })).status, 404, 'the old one is deleted');
      const link = await api.request('PATCH', '/api/v1/auth/me', { avatarUrl: 'https://example.com/me.png' }, { token: a.token });
      t.equal(link.body.user.avatarUrl, 'https://example.com/me.png');
      t.equal((await fetch(hub.url + url2, { headers: { authorization: `Bearer ${b.token}` } })).status, 404, 'a link replaces the upload');
      t.same((await storage(a)).files, 0);
    });
  });
}

t.test('downloads in progress are bounded per node; a slot comes back when its client goes', async (t) => {
  // Files larger than what the sockets' buffers take, so a client that stops reading holds its download.
  const hub = await startTestHub(t, { env: { ...FAST, SB_ATTACHMENT_MAX_BYTES: String(16 * 1024 * 1024), SB_DOWNLOADS_MAX: '3' } });
  const api = new Api(hub.url);
  const [a, b] = await Promise.all([api.signUp(uniqueName('dl')), api.signUp(uniqueName('dl'))]);
  const up = (u: typeof a, name: string, type: string, data: Buffer) =>
    api.request('POST', `/api/v1/attachments?name=${name}`, undefined, { token: u.token, raw: data, headers: { 'content-type': type } });
  const fetchFile = (u: typeof a, id: string) => fetch(`${hub.url}/api/v1/attachments/${id}`, { headers: { authorization: `Bearer ${u.token}` } });
  const big = (await up(a, 'big.pdf', 'application/pdf', randomBytes(16 * 1024 * 1024))).body;
  const small = (await up(b, 'small.txt', 'text/plain', Buffer.from('hi'))).body;
  // Three downloads whose clients read their first bytes and then nothing: each waits on its socket.
  const held = await Promise.all([1, 2, 3].map(() => stalledDownload(hub.url, `/api/v1/attachments/${big.id}`, a.token)));
  const refused = await fetchFile(b, small.id);
  t.match([refused.status, await refused.json(), refused.headers.get('retry-after')], [503, { error: { code: 'OVERLOADED' } }, '1'], 'a fourth on the node');
  for (const h of held) h.stop();
  let status = 0;
  for (let i = 0; i < 200 && status !== 200; i++) status = (await fetchFile(b, small.id)).status;
  t.equal(status, 200, 'served again once the stalled clients are gone');
});
