// Several hub nodes forming one cluster for a test: one fresh PostgreSQL database, the NATS
// server `npm test` provisioned (SB_TEST_NATS_URL), one signing key, and a cluster name of the
// test's own, so concurrent test files sharing the NATS server never see each other's subjects.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Test } from 'tap';
import type { Hub } from '../../src/hub.js';
import { Api } from './api.js';
import { freshDatabase } from './db.js';
import { startTestHub, tempDir } from './hub.js';

export function natsUrl(): string {
  const url = process.env.SB_TEST_NATS_URL ?? process.env.NATS_URL;
  if (!url) throw new Error('no NATS for tests: run `npm test`, which provisions one (or set NATS_URL)');
  return url;
}

export interface Cluster {
  nodes: Hub[];
  apis: Api[];
  env: Record<string, string>;
  /** Starts one more node of this cluster. */
  add(extraEnv?: Record<string, string>): Promise<Hub>;
}

export async function startCluster(t: Test, n: number, extraEnv: Record<string, string> = {}): Promise<Cluster> {
  const dir = await tempDir(t, 'sb-cluster-');
  const keyFile = path.join(dir, 'jwt.pem');
  await writeFile(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  const env: Record<string, string> = {
    DATABASE_URL: await freshDatabase(t),
    NATS_URL: natsUrl(),
    SB_CLUSTER_NAME: `t${randomBytes(6).toString('hex')}`,
    SB_JWT_KEY_FILE: keyFile,
    ...extraEnv,
  };
  const nodes: Hub[] = [];
  const add = async (more: Record<string, string> = {}) => {
    const hub = await startTestHub(t, { env: { ...env, SB_NODE_ID: `node${nodes.length + 1}`, ...more } });
    nodes.push(hub);
    return hub;
  };
  // One at a time: each migrates (under the advisory lock) before the next starts.
  for (let i = 0; i < n; i++) await add();
  return {
    nodes,
    get apis() {
      return nodes.map((h) => new Api(h.url));
    },
    env,
    add,
  };
}
