// Blobs (migration 13): files people upload, kept in the database in chunks so every node of a
// cluster serves what any node stored, with no shared disk, and so no upload or download ever holds
// a whole file in memory. A blob's row is written first, as a reservation against its owner's
// quota (the owner's row is locked, so two uploads at once cannot both take the last of it); its
// chunks follow; it is `ready` once the last one is stored. Who may read it follows from the
// messages that reference it (attachment_refs): their rooms' members. The row of a blob's last
// reference going deletes the blob (a trigger), and the hourly sweep deletes what an interrupted
// upload or a crash left.

import type { Attachment } from '../protocol/frames.js';
import type { Sql, Tx } from './db.js';

export type BlobKind = 'attachment' | 'avatar';

export interface BlobMeta extends Attachment {
  ownerId: string;
  kind: BlobKind;
  ready: boolean;
  createdAt: Date;
}

/**
 * Where a blob's bytes live: chunk n of each blob, every chunk but the last `chunkBytes` long. The
 * database (`DbChunks`) is the one implementation; an object store would be another.
 */
export interface BlobStore {
  readonly chunkBytes: number;
  put(blobId: string, n: number, data: Uint8Array): Promise<void>;
  /** Chunk n, or undefined when the blob (or that chunk) is gone. */
  get(blobId: string, n: number): Promise<Buffer | undefined>;
}

/** 256 KiB: a chunk is one row, one statement, and the most an upload or a download holds of a file. */
export const CHUNK_BYTES = 256 * 1024;

export class DbChunks implements BlobStore {
  readonly chunkBytes = CHUNK_BYTES;

  constructor(private readonly sql: Sql) {}

  async put(blobId: string, n: number, data: Uint8Array): Promise<void> {
    await this.sql`INSERT INTO blob_chunks (blob_id, n, data) VALUES (${blobId}, ${n}, ${Buffer.from(data.buffer, data.byteOffset, data.byteLength)})`;
  }

  async get(blobId: string, n: number): Promise<Buffer | undefined> {
    const [row] = await this.sql<{ data: Uint8Array }[]>`SELECT data FROM blob_chunks WHERE blob_id = ${blobId} AND n = ${n}`;
    return row && Buffer.from(row.data.buffer, row.data.byteOffset, row.data.byteLength);
  }
}

interface Row {
  id: string;
  owner_id: string;
  kind: BlobKind;
  name: string;
  content_type: string;
  size: string;
  width: number | null;
  height: number | null;
  ready: boolean;
  created_at: Date;
}

/** What a message shows of a file. */
export function attachmentOf(b: BlobMeta): Attachment {
  const a: Attachment = { id: b.id, name: b.name, type: b.type, size: b.size };
  if (b.width !== undefined && b.height !== undefined) {
    a.width = b.width;
    a.height = b.height;
  }
  return a;
}

function toMeta(r: Row): BlobMeta {
  const m: BlobMeta = {
    id: r.id,
    ownerId: r.owner_id,
    kind: r.kind,
    name: r.name,
    type: r.content_type,
    size: Number(r.size),
    ready: r.ready,
    createdAt: r.created_at,
  };
  if (r.width !== null && r.height !== null) {
    m.width = r.width;
    m.height = r.height;
  }
  return m;
}

export class Blobs {
  constructor(private readonly sql: Sql) {}

  /**
   * Writes the blob's row (not ready yet) when its size fits in what is left of the owner's quota
   * (every blob of theirs counts, ready or not); otherwise returns the bytes they already use.
   */
  async reserve(
    b: { id: string; ownerId: string; kind: BlobKind; name: string; type: string; size: number },
    quotaBytes: number,
  ): Promise<{ ok: true } | { ok: false; usedBytes: number }> {
    return this.sql.begin(async (tx) => {
      await tx`SELECT 1 FROM users WHERE id = ${b.ownerId} FOR UPDATE`;
      const [u] = await tx<{ used: string }[]>`SELECT coalesce(sum(size), 0) AS used FROM blobs WHERE owner_id = ${b.ownerId}`;
      const used = Number(u?.used ?? 0);
      if (used + b.size > quotaBytes) return { ok: false as const, usedBytes: used };
      await tx`
        INSERT INTO blobs (id, owner_id, kind, name, content_type, size)
        VALUES (${b.id}, ${b.ownerId}, ${b.kind}, ${b.name}, ${b.type}, ${b.size})`;
      return { ok: true as const };
    });
  }

  /** Marks the blob complete, with an image's dimensions; false when its row is gone meanwhile. */
  async finish(id: string, dims: { width: number; height: number } | undefined): Promise<boolean> {
    const r = await this.sql`
      UPDATE blobs SET ready = true, width = ${dims?.width ?? null}, height = ${dims?.height ?? null}
      WHERE id = ${id} AND NOT ready`;
    return r.count > 0;
  }

  /** Deletes the blob and its chunks (an upload that failed, or a replaced avatar). */
  async discard(id: string): Promise<void> {
    await this.sql`DELETE FROM blobs WHERE id = ${id}`;
  }

  /** The ready blob, and whether `userId` may read it: its owner, anyone for an avatar, else a member of a room one of its messages is in. */
  async readable(id: string, userId: string): Promise<{ blob: BlobMeta; allowed: boolean } | undefined> {
    const [row] = await this.sql<(Row & { allowed: boolean })[]>`
      SELECT b.*, (b.owner_id = ${userId} OR b.kind = 'avatar' OR EXISTS (
        SELECT 1 FROM attachment_refs r JOIN room_members m ON m.room_id = r.room_id AND m.user_id = ${userId}
        WHERE r.blob_id = b.id)) AS allowed
      FROM blobs b WHERE b.id = ${id} AND b.ready`;
    return row && { blob: toMeta(row), allowed: row.allowed };
  }

  /** Of these ids, the ready attachments `ownerId` uploaded. */
  async owned(ownerId: string, ids: string[]): Promise<BlobMeta[]> {
    const rows = await this.sql<Row[]>`
      SELECT * FROM blobs WHERE id = ANY(${ids}::uuid[]) AND owner_id = ${ownerId} AND kind = 'attachment' AND ready`;
    return rows.map(toMeta);
  }

  /** Bytes and blobs the person stores (uploads in progress included). */
  async usage(ownerId: string): Promise<{ bytes: number; blobs: number }> {
    const [r] = await this.sql<{ bytes: string; blobs: string }[]>`
      SELECT coalesce(sum(size), 0) AS bytes, count(*) AS blobs FROM blobs WHERE owner_id = ${ownerId}`;
    return { bytes: Number(r?.bytes ?? 0), blobs: Number(r?.blobs ?? 0) };
  }

  /**
   * Makes `blobId` (a ready avatar the person uploaded) their avatar, at `url`, and deletes their
   * other avatars; false when that blob is gone. (Setting a link as the avatar deletes them too: users.ts.)
   */
  async setAvatar(userId: string, blobId: string, url: string): Promise<boolean> {
    return this.sql.begin(async (tx) => {
      const r = await tx`UPDATE users SET avatar_url = ${url} WHERE id = ${userId} AND EXISTS (
        SELECT 1 FROM blobs WHERE id = ${blobId} AND owner_id = ${userId} AND kind = 'avatar' AND ready)`;
      if (r.count === 0) return false;
      await tx`DELETE FROM blobs WHERE owner_id = ${userId} AND kind = 'avatar' AND id <> ${blobId}`;
      return true;
    });
  }

  /**
   * Deletes what is left over: uploads not finished within `hours` (cut short by a crash: one
   * that fails otherwise deletes itself), and attachments no message carries, once one did (two
   * deletions at once can each leave the other's last reference) or `hours` after their upload.
   * Returns how many.
   */
  async sweep(hours: number): Promise<number> {
    const leftOver = (sql: Sql | Tx) => sql`
      (CASE WHEN b.ready THEN b.kind = 'attachment' AND (b.used OR b.created_at < now() - make_interval(hours => ${hours}))
                AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.blob_id = b.id)
            ELSE b.created_at < now() - make_interval(hours => ${hours}) END)`;
    return this.sql.begin(async (tx) => {
      // Locked first, skipping any a commit is posting right now; the DELETE, a later statement,
      // then reads the references afresh (as the trigger does, migration 13).
      const ids = (await tx<{ id: string }[]>`SELECT id FROM blobs b WHERE ${leftOver(tx)} ORDER BY id FOR UPDATE SKIP LOCKED`).map((r) => r.id);
      if (ids.length === 0) return 0;
      return (await tx`DELETE FROM blobs b WHERE b.id = ANY(${ids}::uuid[]) AND ${leftOver(tx)}`).count;
    });
  }
}
