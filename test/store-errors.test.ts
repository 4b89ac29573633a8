// Driver errors stop at the store: postgres.js and socket errors become the store's own named
// errors, alike for PostgreSQL and the embedded PGlite, and layers above never see a SQLSTATE.

import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import t from 'tap';
import type { SbError } from '../src/errors.js';
import { StoreUnavailableError, translateDriverError, translatingErrors, UniqueViolationError } from '../src/store/errors.js';
import { Store } from '../src/store/store.js';
import { silentLog, storeBackends, storeUser } from './helpers/stores.js';

const pgError = (fields: Record<string, string>) => new postgres.PostgresError(fields as never);
const socketError = (code: string, syscall = 'connect') => Object.assign(new Error(`${syscall} ${code}`), { code, syscall });

t.test('translateDriverError: unique violations and unreachable databases get the store’s names', async (t) => {
  const dup = pgError({ code: '23505', constraint_name: 'users_username_lower', message: 'duplicate key' });
  const unique = translateDriverError(dup);
  t.type(unique, UniqueViolationError);
  t.equal((unique as UniqueViolationError).constraint, 'users_username_lower');
  t.equal((unique as UniqueViolationError).cause, dup, 'the driver error stays as the cause, for the logs');

  for (const e of [
    socketError('ECONNREFUSED'),
    socketError('ECONNRESET', 'read'),
    socketError('ENOENT'), // the embedded server's Unix socket is gone
    Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' }),
    Object.assign(new Error('write CONNECT_TIMEOUT'), { code: 'CONNECT_TIMEOUT' }),
    pgError({ code: '57P01', message: 'terminating connection due to administrator command' }),
    pgError({ code: '57P03', message: 'the database system is starting up' }),
    pgError({ code: '08006', message: 'connection failure' }),
    pgError({ code: '53300', message: 'too many clients' }),
  ]) {
    const out = translateDriverError(e);
    t.type(out, StoreUnavailableError, `${(e as { code: string }).code}: unavailable`);
    t.equal((out as StoreUnavailableError).cause, e);
    t.equal((out as SbError).code, 'UNAVAILABLE');
    t.equal((out as SbError).status, 503);
    t.equal((out as SbError).retryAfterS, 5);
  }

  for (const e of [pgError({ code: '42P01', message: 'relation does not exist' }), socketError('ENOENT', 'open'), new Error('plain'), 'a string']) {
    t.equal(translateDriverError(e), e, 'anything else passes through as it is');
  }
  const already = new StoreUnavailableError({ cause: 'x' });
  t.equal(translateDriverError(already), already, 'translating twice changes nothing');
});

t.test('translatingErrors: rejections and throws of every method are translated, results pass through', async (t) => {
  class Repo {
    readonly factor = 2;
    readonly fn = () => 'a field, not a method';
    async ok(n: number) {
      return n * this.factor;
    }
    async rejects(): Promise<void> {
      throw pgError({ code: '23505', message: 'duplicate key' });
    }
    throws(): number {
      throw socketError('ECONNREFUSED');
    }
    get doubled(): number {
      return this.factor * 2;
    }
  }
  const inner = new Repo();
  const repo = translatingErrors(inner);
  t.equal(await repo.ok(21), 42, 'methods keep their `this`');
  t.equal(repo.doubled, 4, 'getters too');
  t.equal(repo.factor, 2, 'fields are read as they are');
  t.equal(repo.fn, inner.fn, 'function-valued fields are not wrapped');
  await t.rejects(repo.rejects(), UniqueViolationError);
  t.throws(() => repo.throws(), StoreUnavailableError);
});

for (const [backend, open] of Object.entries(storeBackends)) {
  t.test(`${backend}: both backends report the same store errors`, async (t) => {
    const store = await open(t);
    await store.migrate();
    const a = await storeUser(store, `ada${randomUUID().slice(0, 8)}`);
    const room = await store.rooms.createGroup(randomUUID(), 'r', a.id);
    const msg = { roomId: room.id, seq: 1, id: randomUUID(), senderId: a.id, cid: 'c1', body: 'hi', createdAt: new Date() };
    await store.messages.insertSequenced(room.id, [msg]);
    const again = store.messages.insertSequenced(room.id, [{ ...msg, seq: 2, id: randomUUID() }]);
    await t.rejects(again, UniqueViolationError, 'a cid stored twice is a unique violation');

    await store.close();
    await t.rejects(store.users.byId(a.id), StoreUnavailableError, 'a closed pool is an unavailable store');
  });
}

t.test('a database nobody listens on is an unavailable store, not a driver error', async (t) => {
  const store = await Store.open({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none', dataDir: '/nonexistent', poolSize: 1, log: silentLog });
  t.teardown(() => store.close());
  await t.rejects(store.users.byId(randomUUID()), StoreUnavailableError);
  await t.rejects(store.rateLimits.client.query({ text: 'SELECT 1' }), StoreUnavailableError, 'the rate limiter’s client too');
});
