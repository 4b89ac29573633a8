// Robots across the nodes of a cluster for a test: every node shares one robot CA and server
// certificate, as a cluster's nodes would; robots are enrolled over REST and connected with
// RobotClient over real TLS to the node a test names; users watch and drive them over WebSocket.

import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Test } from 'tap';
import { defaultCaFiles, defaultPkiDir } from '../../src/auth/pki.js';
import { clusterNames } from '../../src/cluster/nats.js';
import type { Hub } from '../../src/hub.js';
import { RobotClient } from '../../src/robot-kit/robot-client.js';
import { type Api, uniqueName } from './api.js';
import { startCluster } from './cluster.js';
import { FAST, tempDir } from './hub.js';
import { CHANNELS, initPki, type User, waitUntil } from './robots.js';
import { connect, type RawClient } from './ws.js';

export interface Robot {
  id: string;
  cert: string;
  key: string;
}

/** One robot CA and server certificate for every node, as a cluster's nodes would share them. */
export async function sharedPki(t: Test): Promise<{ env: Record<string, string>; caPem: string }> {
  const dir = await tempDir(t, 'sb-pki-');
  const { caPem } = await initPki(dir);
  const ca = defaultCaFiles(dir);
  const pki = defaultPkiDir(dir);
  return {
    caPem,
    env: {
      SB_ROBOT_CA_CERT_FILE: ca.certFile,
      SB_ROBOT_CA_KEY_FILE: ca.keyFile,
      SB_ROBOT_TLS_CERT_FILE: path.join(pki, 'server.crt'),
      SB_ROBOT_TLS_KEY_FILE: path.join(pki, 'server.key'),
      SB_ROBOT_PORT: '0',
      ...FAST,
    },
  };
}

/** Registers a robot owned by `owner` through `api`; returns its certificate and key. */
export async function enrollOn(api: Api, owner: User): Promise<Robot> {
  const r = await api.post('/api/v1/robots', { name: `robot-${randomBytes(4).toString('hex')}` }, { token: owner.token });
  if (r.status !== 201) throw new Error(`enroll: ${r.status} ${r.text}`);
  return { id: r.body.robot.id, cert: r.body.certificatePem, key: r.body.privateKeyPem };
}

/** Connects the robot to the robot endpoint on `port`; resolves after WELCOME. */
export async function connectRobot(t: Test, port: number, r: Robot, caPem: string): Promise<RobotClient> {
  const robot = await RobotClient.connect({ host: '127.0.0.1', port, cert: r.cert, key: r.key, ca: caPem, channels: CHANNELS });
  t.teardown(() => robot.destroy());
  return robot;
}

/** A raw sb.v1 WebSocket for a user of the node at `url`. */
export async function connectUser(t: Test, url: string, u: User): Promise<RawClient> {
  const ws = await connect(url, { token: u.token });
  t.teardown(() => ws.close().catch(() => {}));
  return ws;
}

/** `n` nodes sharing one robot CA and server certificate, all members of the cluster; users sign up and robots enroll on the first. */
export async function robotCluster(t: Test, n: number) {
  const pki = await sharedPki(t);
  const cluster = await startCluster(t, n, pki.env);
  for (const node of cluster.nodes)
    await waitUntil(
      async () => node.membership?.nodes().length,
      (k) => k === n,
      `${n} members`,
    );
  const [api] = cluster.apis as [Api];
  const signUp = (prefix: string) => api.signUp(uniqueName(prefix));
  const enroll = (owner: User) => enrollOn(api, owner);
  return {
    nodes: cluster.nodes,
    apis: cluster.apis,
    caPem: pki.caPem,
    names: clusterNames(cluster.env.SB_CLUSTER_NAME as string),
    signUp,
    enroll,
    /** An owner, a viewer and the owner's robot, the viewer's grant made through `via`. */
    async withViewer(via: Api = api) {
      const owner = await signUp('own');
      const viewer = await signUp('view');
      const r = await enroll(owner);
      t.equal((await via.request('PUT', `/api/v1/robots/${r.id}/grants/${viewer.id}`, { role: 'viewer' }, { token: owner.token })).status, 200);
      return { owner, viewer, r };
    },
    /** Connects the robot to `node`; resolves after WELCOME. */
    attach: (node: Hub, r: Robot) => connectRobot(t, node.robots?.port as number, r, pki.caPem),
    user: (node: Hub, u: User) => connectUser(t, node.url, u),
  };
}

/** Waits until node `api` lists the robot as `online` (its copy of the robot directory says so). */
export const listed = (api: Api, r: Robot, u: User, online = true) =>
  waitUntil(
    async () => (await api.get(`/api/v1/robots/${r.id}`, { token: u.token })).body.robot?.online,
    (v) => v === online,
    `listed ${online ? 'online' : 'offline'} on ${api.base}`,
  );

/** The robot's status through `api`, read by `reader`: online, its lease still `holder`'s (expiring at `expiresAt`, when given). */
export async function leaseKept(t: Test, api: Api, reader: User, r: Robot, holder: User, what: string, expiresAt?: string | number): Promise<void> {
  const expiry = expiresAt === undefined ? {} : { expiresAt: new Date(expiresAt).toISOString() };
  const status = await api.get(`/api/v1/robots/${r.id}/status`, { token: reader.token });
  t.match(status.body.status, { online: true, lease: { holder: { id: holder.id }, ...expiry } }, what);
}

/** A robot that accepts every command and completes it with its name, and completes every stop; returns what it got ('estop' for a stop). */
export function obedient(robot: RobotClient): string[] {
  const seen: string[] = [];
  robot.on('command', (c) => {
    seen.push(c.name);
    robot.status(c.command, 'accepted');
    robot.status(c.command, 'completed', { done: c.name });
  });
  robot.on('estop', (id) => {
    seen.push('estop');
    robot.status(id, 'completed');
  });
  return seen;
}
