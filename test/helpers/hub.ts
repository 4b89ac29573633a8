// Starts a real hub on an ephemeral port for a test: on a fresh PostgreSQL database by default, or
// on the embedded PGlite store in a temp data dir. Closed at teardown.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { type Config, resolveConfig } from '../../src/config.js';
import { type Hub, startHub } from '../../src/hub.js';
import { freshDatabase } from './db.js';

/** Cheap password hashing and no registration/login limits: for tests that sign up many users. */
export const FAST = { SB_ARGON2_MEMORY_KIB: '8192', SB_ARGON2_TIME_COST: '1', SB_REGISTER_PER_IP_PER_HOUR: '10000', SB_LOGIN_PER_IP_PER_MINUTE: '10000' };
/** No publish rate limit: for tests that publish in volume. */
export const UNLIMITED = { SB_WS_PUBLISH_PER_SECOND: '1000000', SB_WS_PUBLISH_BURST: '1000000' };

export interface TestHubOptions {
  embedded?: boolean;
  /** Extra environment variables for the config (e.g. limits). */
  env?: Record<string, string>;
  dataDir?: string;
}

export async function tempDir(t: Test, prefix = 'sb-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function testConfig(t: Test, opts: TestHubOptions = {}): Promise<Config> {
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: '0',
    SB_ROBOT_PORT: '0',
    LOG_LEVEL: process.env.SB_TEST_LOG_LEVEL ?? 'silent',
    SB_DATA_DIR: opts.dataDir ?? (await tempDir(t)),
    SB_SHUTDOWN_TIMEOUT_MS: '5000',
    ...opts.env,
  };
  if (!opts.embedded && !env.DATABASE_URL) env.DATABASE_URL = await freshDatabase(t);
  return resolveConfig({}, env);
}

export async function startTestHub(t: Test, opts: TestHubOptions = {}): Promise<Hub> {
  const hub = await startHub(await testConfig(t, opts));
  t.teardown(() => hub.close());
  return hub;
}
