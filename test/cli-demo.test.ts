// `switchboard demo` as a newcomer runs it, on the embedded store: it fills an empty store and
// prints a password that logs in; the hub started on that store then shows the people, contacts,
// rooms with history and the robot the output promised; a second run refuses the filled store.

import { X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { Api } from './helpers/api.js';
import { FAST, tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';

t.test('demo fills an empty store once; its people log in and find a living hub', async (t) => {
  const dataDir = await tempDir(t);
  const env = { ...FAST, SB_DATA_DIR: dataDir, DATABASE_URL: '', PORT: '0', HOST: '127.0.0.1', SB_ROBOT_PORT: '0' };
  const run = spawnCli(t, ['demo'], env);
  const { code } = await run.exited;
  t.equal(code, 0, run.stderr());
  const out = run.lines.map((l) => l.text ?? '').join('\n');
  const password = /the password (\S+)/.exec(out)?.[1] as string;
  t.ok(password && password.length >= 10, 'prints a password');
  const robotDir = path.join(dataDir, 'demo-robots');
  t.match(out, robotDir, 'and where the robot’s certificate is');

  const files = await readdir(robotDir);
  const id = (files.find((f) => f.endsWith('.crt')) as string).slice(0, -4);
  const cert = new X509Certificate(await readFile(path.join(robotDir, `${id}.crt`)));
  const ca = new X509Certificate(await readFile(path.join(dataDir, 'pki', 'robot-ca.crt')));
  t.ok(cert.checkIssued(ca), 'the robot certificate chains to the robot CA the demo made');

  const hub = spawnCli(t, ['serve'], env);
  const up = await hub.waitFor((l) => l.msg === 'listening', 'listening', 30_000);
  const api = new Api(up.url as string);
  const login = await api.post('/api/v1/auth/login', { username: 'ada', password });
  t.equal(login.status, 200, 'ada logs in with the printed password');
  const as = { token: login.body.accessToken as string };
  t.equal(login.body.user.displayName, 'Ada Lovelace');
  const rooms = (await api.get('/api/v1/rooms?scope=mine', as)).body.rooms as { id: string; name: string | null; kind: string; lastSeq: number }[];
  t.same(rooms.map((r) => r.name ?? r.kind).sort(), ['direct', 'general', 'robotics'], 'her rooms');
  const general = rooms.find((r) => r.name === 'general') as { id: string };
  const history = (await api.get(`/api/v1/rooms/${general.id}/messages`, as)).body.messages as { seq: number; body: string; event?: { kind: string } }[];
  t.same(
    history.map((m) => m.seq),
    [1, 2, 3, 4, 5, 6, 7, 8],
    'general has its history, in order',
  );
  t.same(
    history.map((m) => m.event?.kind ?? 'message'),
    ['member_joined', 'member_joined', 'member_joined', 'message', 'message', 'message', 'message', 'message'],
    'three people joined, then talked',
  );
  t.same(
    (await api.get('/api/v1/contacts', as)).body.contacts.map((c: { user: { username: string } }) => c.user.username),
    ['grace'],
    'a contact',
  );
  t.same(
    (await api.get('/api/v1/contacts/requests', as)).body.requests.map((c: { user: { username: string } }) => c.user.username),
    ['alan'],
    'a request waiting',
  );
  const robots = (await api.get('/api/v1/robots', as)).body.robots as { id: string; name: string; role: string }[];
  t.same(
    robots.map((r) => [r.id, r.name, r.role]),
    [[id, 'rover-1', 'owner']],
    'her robot',
  );
  hub.child.kill('SIGTERM');
  await hub.exited;

  const again = spawnCli(t, ['demo'], env);
  t.equal((await again.exited).code, 2, 'a second run refuses');
  t.match(again.stderr(), /already has users/);
});

t.test('demo --robot-sim fills the store, serves it and brings the robot online in the same process', async (t) => {
  const dataDir = await tempDir(t);
  const env = { ...FAST, SB_DATA_DIR: dataDir, DATABASE_URL: '', PORT: '0', HOST: '127.0.0.1', SB_ROBOT_PORT: '0' };
  const run = spawnCli(t, ['demo', '--robot-sim'], env);
  const up = await run.waitFor((l) => l.msg === 'listening', 'listening', 30_000);
  const connected = await run.waitFor((l) => /^robot \S+ connected/.test(l.text ?? ''), 'the robot connected', 30_000);
  const password = /the password (\S+)/.exec(run.lines.map((l) => l.text ?? '').join('\n'))?.[1] as string;
  const api = new Api(up.url as string);
  const login = await api.post('/api/v1/auth/login', { username: 'grace', password });
  const robots = (await api.get('/api/v1/robots', { token: login.body.accessToken })).body.robots as { id: string; online: boolean; role: string }[];
  t.match(robots, [{ id: /^robot (\S+) connected/.exec(connected.text as string)?.[1], online: true, role: 'operator' }], 'grace sees rover-1 online');
  run.child.kill('SIGTERM');
  t.equal((await run.exited).code, 0, 'Ctrl-C (SIGTERM) stops the hub and the robot');
});
