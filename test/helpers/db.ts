// Test databases: every test file that needs PostgreSQL gets a database of its own on the server
// `npm test` provisioned (SB_TEST_ADMIN_URL), dropped when the file's tests end.

import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { Test } from 'tap';

export function adminUrl(): string {
  const url = process.env.SB_TEST_ADMIN_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('no PostgreSQL for tests: run `npm test`, which provisions one (or set DATABASE_URL)');
  return url;
}

/** Creates an empty database for this test (dropped at teardown) and returns its URL. */
export async function freshDatabase(t: Test): Promise<string> {
  const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  const name = `sb_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  t.teardown(async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });
  const u = new URL(adminUrl());
  u.pathname = `/${name}`;
  return u.toString();
}
