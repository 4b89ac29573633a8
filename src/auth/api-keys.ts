// API keys for backends (the server API): an admin creates one with a name and scopes and sees
// its secret once; the hub keeps only the secret's SHA-256. A request presents the secret as a
// bearer token; the key is looked up by its hash on every request (one indexed read), so a
// revocation holds on every node at once. `lastUsedAt` is written at most once a minute a key.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { SbError } from '../errors.js';
import type { ApiKey, ApiScope } from '../store/api-keys.js';
import type { Store } from '../store/store.js';

/** Live (unrevoked) keys one hub may hold. */
export const MAX_API_KEYS = 1000;
const TOUCH_EVERY_MS = 60_000;

const hash = (secret: string): Buffer => createHash('sha256').update(secret).digest();

export class ApiKeysService {
  private readonly touched = new Map<string, number>();

  constructor(private readonly store: Store) {}

  /** A new key: its description, and its secret (`sbk_` and 43 characters), which is never shown again. */
  async create(adminId: string, name: string, scopes: ApiScope[]): Promise<{ apiKey: ApiKey; secret: string }> {
    const live = (await this.store.apiKeys.list()).filter((k) => !k.revokedAt).length;
    if (live >= MAX_API_KEYS) throw new SbError('CONFLICT', `at most ${MAX_API_KEYS} live API keys; revoke one first`);
    const secret = `sbk_${randomBytes(32).toString('base64url')}`;
    const apiKey = await this.store.apiKeys.create({
      id: randomUUID(),
      name,
      secretHash: hash(secret),
      prefix: secret.slice(0, 12),
      scopes: [...new Set(scopes)],
      createdBy: adminId,
    });
    return { apiKey, secret };
  }

  /** The live key of this secret, or undefined (unknown or revoked). */
  async verify(secret: string): Promise<ApiKey | undefined> {
    const key = await this.store.apiKeys.byHash(hash(secret));
    if (key) {
      const now = Date.now();
      if (now - (this.touched.get(key.id) ?? 0) >= TOUCH_EVERY_MS) {
        this.touched.set(key.id, now);
        void this.store.apiKeys.touch(key.id).catch(() => this.touched.delete(key.id));
      }
    }
    return key;
  }

  list(): Promise<ApiKey[]> {
    return this.store.apiKeys.list();
  }

  async revoke(id: string): Promise<ApiKey> {
    const key = await this.store.apiKeys.revoke(id);
    if (!key) throw new SbError('NOT_FOUND', 'no such API key');
    this.touched.delete(id);
    return key;
  }
}
