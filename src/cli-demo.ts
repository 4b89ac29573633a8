// `switchboard demo`: fills an empty store with a small living hub for a first look — four people
// with profiles, contacts and a pending request, two group rooms and a direct room with history, a
// robot with its certificate (and the robot CA, if the data dir has none) — and prints how to log
// in and what to run next. It refuses a store that has users: it is never a default, and never
// touches a hub in use. With --serve the hub then starts on that store (`npm run demo`), and with
// --robot-sim the robot's simulator runs beside it, in the same process (cli.ts).

import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { createAccount } from './auth/auth-service.js';
import { Passwords } from './auth/passwords.js';
import { CaExistsError, issueRobotCert, loadCa, robotCaFiles } from './auth/pki.js';
import { makePki, withStore, writeRobotFiles } from './cli-robot.js';
import { type Config, ConfigError } from './config.js';
import type { Store } from './store/store.js';
import type { User } from './store/users.js';

const PEOPLE = [
  { username: 'ada', displayName: 'Ada Lovelace', bio: 'Poet of science.', timeZone: 'Europe/London' },
  { username: 'grace', displayName: 'Grace Hopper', bio: 'It is easier to ask forgiveness than permission.', timeZone: 'America/New_York' },
  { username: 'alan', displayName: 'Alan Turing', bio: 'Can machines think?', timeZone: 'Europe/London' },
  { username: 'linus', displayName: 'Linus Torvalds', bio: 'Talk is cheap.', timeZone: 'America/Los_Angeles' },
] as const;

type Name = (typeof PEOPLE)[number]['username'];

/** Each room's history: who said what, oldest first. */
const HISTORY: { room: string; lines: [Name, string][] }[] = [
  {
    room: 'general',
    lines: [
      ['ada', 'Welcome to Switchboard! This room is for everyone.'],
      ['grace', 'Hello all. The robotics room has the rover in it.'],
      ['alan', 'Is the rover sending telemetry yet?'],
      ['ada', 'Start the simulator (see the demo output) and watch it in the robotics room.'],
      ['linus', 'Nice and fast.'],
    ],
  },
  {
    room: 'robotics',
    lines: [
      ['grace', 'rover-1 is ours: ada owns it, I can drive it.'],
      ['ada', 'Take the control lease before sending commands; e-stop always works.'],
    ],
  },
  {
    room: 'direct',
    lines: [
      ['ada', 'Grace, can you look at the rover logs later?'],
      ['grace', 'Sure, after lunch.'],
    ],
  },
];

/** Where the demo writes its robot's certificate and key. */
export const demoRobotsDir = (cfg: Config): string => path.join(cfg.dataDir, 'demo-robots');

/** `then`: what the command does once the store is filled (serve it; and simulate the robot). */
export async function demo(cfg: Config, then?: { serve: boolean; sim: boolean }): Promise<number> {
  const password = `demo-${randomBytes(9).toString('base64url')}`;
  return withStore(cfg, async (store) => {
    const [{ any }] = (await store.db.sql`SELECT EXISTS (SELECT 1 FROM users) AS any`) as unknown as [{ any: boolean }];
    if (any) throw new ConfigError('demo: this store already has users; the demo fills only an empty one (a fresh SB_DATA_DIR, or an empty database)');
    const passwords = new Passwords({ memoryKiB: cfg.argon2MemoryKiB, timeCost: cfg.argon2TimeCost });
    const people = {} as Record<Name, User>;
    for (const p of PEOPLE) {
      const u = await createAccount(store, passwords, { username: p.username, password, displayName: p.displayName }, false);
      people[p.username] = (await store.users.updateProfile(u.id, { bio: p.bio, timeZone: p.timeZone })) ?? u;
    }
    const { ada, grace, alan, linus } = people;
    await store.contacts.request(ada.id, grace.id);
    await store.contacts.request(grace.id, ada.id); // asked both ways: contacts
    await store.contacts.request(alan.id, ada.id); // waiting for ada

    const general = await store.rooms.createGroup(randomUUID(), 'general', ada.id);
    for (const u of [grace, alan, linus]) await store.rooms.join(general.id, u);
    const robotics = await store.rooms.createGroup(randomUUID(), 'robotics', grace.id);
    await store.rooms.join(robotics.id, ada);
    const { room: direct } = await store.rooms.openDirect(randomUUID(), ada.id, grace.id);
    const rooms: Record<string, string> = { general: general.id, robotics: robotics.id, direct: direct.id };
    const start = Date.now() - 60 * 60_000;
    let minute = 0;
    for (const h of HISTORY) await post(store, rooms[h.room] as string, h.lines, people, () => new Date(start + 60_000 * minute++));

    const robot = await demoRobot(cfg, store, ada, grace);
    const url = `http://${cfg.host === '0.0.0.0' ? 'localhost' : cfg.host}:${cfg.port}`;
    const simulate = `node dist/cli.js robot-sim --certs ${robot.dir}`;
    process.stdout.write(
      [
        'The demo is in the store:',
        `  people: ${PEOPLE.map((p) => p.username).join(', ')} — each with the password ${password}`,
        '  rooms: general (everyone), robotics (ada, grace), a direct room of ada and grace; ada and grace are contacts, alan asked ada',
        `  robot: rover-1 (${robot.id}), owned by ada, grace may drive it; its certificate and key: ${robot.dir}`,
        '',
        'Next:',
        then?.serve
          ? '  the hub starts on this store now (Ctrl-C stops it; `npm start` starts it again)'
          : '  the hub on this store: npm start (or node dist/cli.js serve)',
        `  the console: ${url}/ — sign in as ada (or grace, alan, linus) with the password above`,
        `  the API: ${url}/docs; log in with POST /api/v1/auth/login {"username":"ada","password":"${password}"}`,
        then?.sim
          ? '  rover-1 comes online in this process, streaming telemetry'
          : `  rover-1 online, streaming telemetry: \`npm run demo -- --robot-sim\` next time, or with the hub running, in another terminal: ${simulate}`,
        '',
      ].join('\n'),
    );
    return 0;
  });
}

/** A new room's history, committed in one batch from seq 1. */
async function post(store: Store, roomId: string, lines: [Name, string][], people: Record<Name, User>, at: () => Date): Promise<void> {
  await store.messages.insertSequenced(
    roomId,
    lines.map(([who, body], i) => ({ id: randomUUID(), roomId, seq: i + 1, senderId: people[who].id, cid: randomUUID(), body, createdAt: at() })),
  );
}

/** rover-1: owned by ada, grace an operator; the robot CA made first when the data dir has none. */
async function demoRobot(cfg: Config, store: Store, owner: User, operator: User): Promise<{ id: string; dir: string }> {
  const ca = await makePki(cfg, false).then(
    (made) => made.ca,
    (e: unknown) => {
      if (e instanceof CaExistsError) return loadCa(robotCaFiles(cfg));
      throw e;
    },
  );
  const id = randomUUID();
  const issued = await issueRobotCert(ca, id);
  await store.robots.create({ id, name: 'rover-1', ownerId: owner.id }, issued);
  await store.robots.grant(id, operator.id, 'operator');
  const dir = demoRobotsDir(cfg);
  await writeRobotFiles(dir, id, issued);
  return { id, dir };
}
