// Server API keys (migration 14): what an admin issues to a backend. Only the SHA-256 of each
// secret is stored; a key is found by that hash, and a revoked one is never found again.

import type { Sql } from './db.js';

export const API_SCOPES = ['publish', 'presence', 'users', 'rooms'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export interface ApiKey {
  id: string;
  name: string;
  /** The secret's first characters, to recognise a key in a list. */
  prefix: string;
  scopes: ApiScope[];
  createdBy: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

interface Row {
  id: string;
  name: string;
  prefix: string;
  scopes: ApiScope[];
  created_by: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const toKey = (r: Row): ApiKey => ({
  id: r.id,
  name: r.name,
  prefix: r.prefix,
  scopes: r.scopes,
  createdBy: r.created_by,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

export class ApiKeys {
  constructor(private readonly sql: Sql) {}

  async create(k: { id: string; name: string; secretHash: Buffer; prefix: string; scopes: ApiScope[]; createdBy: string }): Promise<ApiKey> {
    const [row] = await this.sql<Row[]>`
      INSERT INTO api_keys (id, name, secret_hash, prefix, scopes, created_by)
      VALUES (${k.id}, ${k.name}, ${k.secretHash}, ${k.prefix}, ${k.scopes}::text[], ${k.createdBy})
      RETURNING *`;
    return toKey(row as Row);
  }

  /** The key this secret hash belongs to, unless it was revoked. */
  async byHash(secretHash: Buffer): Promise<ApiKey | undefined> {
    const [row] = await this.sql<Row[]>`SELECT * FROM api_keys WHERE secret_hash = ${secretHash} AND revoked_at IS NULL`;
    return row && toKey(row);
  }

  /** Every key, revoked ones too, newest first. */
  async list(): Promise<ApiKey[]> {
    const rows = await this.sql<Row[]>`SELECT * FROM api_keys ORDER BY created_at DESC, id`;
    return rows.map(toKey);
  }

  /** Revokes the key; undefined when there is no such key (revoking twice keeps the first time). */
  async revoke(id: string): Promise<ApiKey | undefined> {
    const [row] = await this.sql<Row[]>`
      UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = ${id} RETURNING *`;
    return row && toKey(row);
  }

  async touch(id: string): Promise<void> {
    await this.sql`UPDATE api_keys SET last_used_at = now() WHERE id = ${id}`;
  }
}
