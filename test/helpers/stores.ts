// Store factories for conformance suites: every repository test runs once per backend, against a
// fresh real PostgreSQL database and a fresh embedded PGlite data dir, closed at teardown.

import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import { createLogger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import { freshDatabase } from './db.js';
import { tempDir } from './hub.js';

export const silentLog = createLogger('silent');

export type StoreFactory = (t: Test) => Promise<Store>;

export const storeBackends: Record<'postgres' | 'embedded', StoreFactory> = {
  postgres: async (t) => {
    const s = await Store.open({ databaseUrl: await freshDatabase(t), dataDir: '/nonexistent', poolSize: 8, log: silentLog });
    t.teardown(() => s.close());
    return s;
  },
  embedded: async (t) => {
    const s = await Store.open({ databaseUrl: undefined, dataDir: await tempDir(t), poolSize: 8, log: silentLog });
    t.teardown(() => s.close());
    return s;
  },
};

/** Creates a user directly in the store (no password rules: the hash is a placeholder). */
export const storeUser = (store: Store, username: string) =>
  store.users.create({ id: randomUUID(), username, displayName: null, passwordHash: 'x', isAdmin: false }).then((u) => {
    if (!u) throw new Error(`user ${username} exists`);
    return u;
  });
