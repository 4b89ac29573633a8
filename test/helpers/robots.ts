// A hub with its robot endpoint on: the robot CA and the development server certificate are made in
// the data dir before it starts (what `switchboard pki init` does), so the endpoint listens on an
// ephemeral port. Robots are registered over REST and connected with RobotClient over real TLS.

import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Test } from 'tap';
import { defaultCaFiles, defaultPkiDir, initCa, issueServerCert, writePemPair } from '../../src/auth/pki.js';
import type { Hub } from '../../src/hub.js';
import type { Channel } from '../../src/protocol/robot.js';
import { RobotClient } from '../../src/robot-kit/robot-client.js';
import { Api, uniqueName } from './api.js';
import { FAST, startTestHub, type TestHubOptions, tempDir } from './hub.js';
import { connect } from './ws.js';

export type User = Awaited<ReturnType<Api['signUp']>>;

export interface Enrolled {
  id: string;
  name: string;
  cert: string;
  key: string;
  fingerprint: string;
}

export const CHANNELS: Channel[] = [
  { id: 1, name: 'pose', encoding: 'msgpack', schema: 'geometry_msgs/Pose2D', delivery: 'latest' },
  { id: 2, name: 'log', encoding: 'json', schema: null, delivery: 'reliable' },
];

/** Makes the robot CA and the server certificate where the hub looks for them by default. */
export async function initPki(dataDir: string): Promise<{ caPem: string }> {
  const ca = await initCa(defaultCaFiles(dataDir));
  const server = await issueServerCert(ca);
  const dir = defaultPkiDir(dataDir);
  await writePemPair({ certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key') }, server.certPem, server.keyPem);
  return { caPem: ca.certPem };
}

export interface RobotHub {
  hub: Hub;
  api: Api;
  dataDir: string;
  caPem: string;
  signUp(prefix?: string): Promise<User>;
  /** Registers a robot owned by `owner` over REST and returns its certificate and key. */
  enroll(owner: User, name?: string): Promise<Enrolled>;
  /** Connects a robot (HELLO with `channels`) and resolves after WELCOME. */
  connectRobot(r: Pick<Enrolled, 'cert' | 'key'>, channels?: Channel[]): Promise<RobotClient>;
  /** A raw sb.v1 WebSocket for a user. */
  user(u: User, encoding?: 'msgpack' | 'json'): ReturnType<typeof connect>;
  /** Gives `user` a role on the robot (as its owner). */
  grant(owner: User, robotId: string, user: User, role: 'viewer' | 'operator'): Promise<void>;
}

export async function startRobotHub(t: Test, opts: TestHubOptions = {}): Promise<RobotHub> {
  const dataDir = opts.dataDir ?? (await tempDir(t));
  const { caPem } = await initPki(dataDir);
  const hub = await startTestHub(t, { ...opts, dataDir, env: { ...FAST, ...opts.env } });
  if (!hub.robots) throw new Error('the robot endpoint did not start');
  const port = hub.robots.port;
  const api = new Api(hub.url);
  const clients: RobotClient[] = [];
  t.teardown(() => {
    for (const c of clients) c.destroy();
  });
  return {
    hub,
    api,
    dataDir,
    caPem,
    signUp: (prefix = 'u') => api.signUp(uniqueName(prefix)),
    async enroll(owner, name = `robot-${randomUUID().slice(0, 8)}`) {
      const r = await api.post('/api/v1/robots', { name }, { token: owner.token });
      if (r.status !== 201) throw new Error(`enroll: ${r.status} ${r.text}`);
      return { id: r.body.robot.id, name, cert: r.body.certificatePem, key: r.body.privateKeyPem, fingerprint: r.body.fingerprint };
    },
    async connectRobot(r, channels = CHANNELS) {
      const c = await RobotClient.connect({ host: '127.0.0.1', port, cert: r.cert, key: r.key, ca: caPem, channels });
      clients.push(c);
      return c;
    },
    async user(u, encoding = 'msgpack') {
      const c = await connect(hub.url, { token: u.token, encoding });
      t.teardown(() => c.close().catch(() => {}));
      return c;
    },
    async grant(owner, robotId, user, role) {
      const r = await api.request('PUT', `/api/v1/robots/${robotId}/grants/${user.id}`, { role }, { token: owner.token });
      if (r.status !== 200) throw new Error(`grant: ${r.status} ${r.text}`);
    },
  };
}

/**
 * Waits for an asynchronous write to show: re-queries until `ready` holds, up to a deadline, then
 * fails naming what it waited for and the last answer. (Audit rows are written after the stage frame.)
 */
export async function waitUntil<T>(query: () => Promise<T>, ready: (v: T) => boolean, what: string, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await query();
    if (ready(v)) return v;
    if (Date.now() > deadline) throw new Error(`still not ${what} after ${ms} ms; last: ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}
