// Uploads: files people attach to messages, and their avatars. The bytes stream from the request
// into the blob store a chunk at a time (never the whole file in memory), after the upload is
// checked against the allowed types, the size cap and its owner's quota (reserved before the first
// byte is stored). A picture must be what its type says (PNG, JPEG, GIF or WebP, read from its
// first chunk, which also gives its dimensions), since it is shown inline. An upload that fails or
// is cut short deletes what it stored; nothing half-written is ever served (blobs.ts).

import { randomUUID } from 'node:crypto';
import { imageSize } from 'image-size';
import { SbError, ValidationError } from '../errors.js';
import type { BlobKind, BlobMeta } from '../store/blobs.js';
import type { Store } from '../store/store.js';

export interface UploadLimits {
  /** Largest file, bytes. */
  maxBytes: number;
  /** What each person may store in all, bytes. */
  quotaBytes: number;
  /** Media types an attachment may have. */
  types: readonly string[];
  /** Uploads in progress on this node at once (each holds up to two chunks in memory). */
  maxUploads: number;
  /** Downloads in progress on this node at once. */
  maxDownloads: number;
}

/** Uploads one person may have in progress at once, on a node. */
export const UPLOADS_PER_USER = 4;
/** Downloads one person may have in progress at once, on a node. */
export const DOWNLOADS_PER_USER = 8;

/** A file deleted while it was being sent: the reply is cut short (the client sees a short body). */
export class BlobGoneError extends Error {
  override name = 'BlobGoneError';
  constructor(blobId: string) {
    super(`blob ${blobId} was deleted while it was being sent`);
  }
}

/** The pictures shown inline, and image-size's name for each: a file of these types must be one. */
export const PICTURES: Readonly<Record<string, string>> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif', 'image/webp': 'webp' };

export interface Upload {
  ownerId: string;
  kind: BlobKind;
  name: string;
  /** The Content-Type header, parameters included. */
  type: string | undefined;
  /** The Content-Length header, when sent. */
  length: number | undefined;
  body: AsyncIterable<Uint8Array>;
}

/** Transfers in progress, per person and in all: a slot each, given back when it ends. */
class Slots {
  private total = 0;
  private readonly byUser = new Map<string, number>();

  constructor(
    private readonly what: string,
    private readonly perUser: number,
    private readonly max: number,
  ) {}

  /** A slot for the person, or RATE_LIMITED (theirs are taken) / OVERLOADED (the node's are); the function gives it back, once. */
  take(userId: string): () => void {
    const mine = this.byUser.get(userId) ?? 0;
    if (mine >= this.perUser) {
      throw new SbError('RATE_LIMITED', `at most ${this.perUser} ${this.what} of yours at once`, { limit: this.perUser, retryAfterS: 1 }, { retryAfterS: 1 });
    }
    if (this.total >= this.max) throw new SbError('OVERLOADED', `too many ${this.what} in progress on this node; retry shortly`, undefined, { retryAfterS: 1 });
    this.total++;
    this.byUser.set(userId, mine + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.total--;
      const left = (this.byUser.get(userId) ?? 1) - 1;
      if (left === 0) this.byUser.delete(userId);
      else this.byUser.set(userId, left);
    };
  }
}

export class AttachmentsService {
  private readonly uploads: Slots;
  private readonly downloads: Slots;

  constructor(
    private readonly store: Store,
    readonly limits: UploadLimits,
  ) {
    this.uploads = new Slots('uploads', UPLOADS_PER_USER, limits.maxUploads);
    this.downloads = new Slots('downloads', DOWNLOADS_PER_USER, limits.maxDownloads);
  }

  /** Stores the body as a new blob; its description once complete. */
  async upload(u: Upload): Promise<BlobMeta> {
    const type = checkType(u.type, u.kind === 'avatar' ? Object.keys(PICTURES) : this.limits.types);
    const name = checkName(u.name);
    if (u.length === undefined) throw new SbError('LENGTH_REQUIRED', 'send the file with a Content-Length header (chunked uploads are not taken)');
    if (u.length > this.limits.maxBytes) {
      throw new SbError('PAYLOAD_TOO_LARGE', `the file is ${u.length} bytes; the limit is ${this.limits.maxBytes}`, { limit: this.limits.maxBytes });
    }
    if (type in PICTURES && u.length === 0) throw new ValidationError('body', `an empty file is not a ${type} picture`);
    const release = this.uploads.take(u.ownerId);
    try {
      return await this.keep(u, name, type, u.length);
    } finally {
      release();
    }
  }

  /**
   * Bytes start..end (inclusive) of the blob, a chunk at a time, in one of the person's download
   * slots: `close` gives it back (the router calls it once the reply is over, sent or not).
   */
  download(userId: string, blobId: string, start: number, end: number): { chunks: AsyncIterable<Uint8Array>; close: () => void } {
    const close = this.downloads.take(userId);
    const store = this.store.chunks;
    const chunks = (async function* () {
      const size = store.chunkBytes;
      for (let n = Math.floor(start / size); n <= Math.floor(end / size); n++) {
        const data = await store.get(blobId, n);
        if (!data) throw new BlobGoneError(blobId);
        yield data.subarray(Math.max(0, start - n * size), Math.min(data.length, end - n * size + 1));
      }
    })();
    return { chunks, close };
  }

  private async keep(u: Upload, name: string, type: string, length: number): Promise<BlobMeta> {
    const id = randomUUID();
    const quota = this.limits.quotaBytes;
    const r = await this.store.blobs.reserve({ id, ownerId: u.ownerId, kind: u.kind, name, type, size: length }, quota);
    if (!r.ok) {
      throw new SbError('QUOTA_EXCEEDED', `the file (${length} bytes) does not fit in your quota: ${r.usedBytes} of ${quota} bytes used`, {
        quota,
        used: r.usedBytes,
      });
    }
    try {
      const dims = await this.copy(id, type, length, u.body);
      if (!(await this.store.blobs.finish(id, dims))) throw new SbError('CONFLICT', 'the upload was deleted while it was being stored');
      return { id, ownerId: u.ownerId, kind: u.kind, name, type, size: length, ...dims, ready: true, createdAt: new Date() };
    } catch (e) {
      await this.store.blobs.discard(id).catch(() => {});
      throw e;
    }
  }

  /** Copies the body into the blob's chunks; a picture's dimensions. */
  private async copy(id: string, type: string, length: number, body: AsyncIterable<Uint8Array>): Promise<{ width: number; height: number } | undefined> {
    const { chunks } = this.store;
    const size = chunks.chunkBytes;
    let chunk = Buffer.allocUnsafe(Math.min(size, length));
    let fill = 0;
    let n = 0;
    let received = 0;
    let dims: { width: number; height: number } | undefined;
    const flush = async () => {
      const data = chunk.subarray(0, fill);
      if (n === 0 && type in PICTURES) dims = picture(data, type);
      await chunks.put(id, n++, data);
      fill = 0;
      received += data.length;
      chunk = Buffer.allocUnsafe(Math.min(size, length - received));
    };
    for await (const piece of body) {
      let at = 0;
      while (at < piece.length) {
        const take = Math.min(piece.length - at, chunk.length - fill);
        if (take === 0) throw new ValidationError('body', `more bytes than the Content-Length (${length})`);
        chunk.set(piece.subarray(at, at + take), fill);
        fill += take;
        at += take;
        if (fill === chunk.length) await flush();
      }
    }
    if (received + fill !== length) throw new ValidationError('body', `${received + fill} bytes arrived; the Content-Length said ${length}`);
    if (n === 0) await flush();
    return dims;
  }
}

function checkType(header: string | undefined, allowed: readonly string[]): string {
  const type = (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!allowed.includes(type)) {
    throw new SbError('UNSUPPORTED_MEDIA_TYPE', `${type ? `${type} is not` : 'a Content-Type is'} accepted here; send one of: ${allowed.join(', ')}`, {
      allowed,
    });
  }
  return type;
}

/** A file name as given, without a path or control characters, at most 255 characters. */
function checkName(raw: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
  const name = (raw.split(/[\\/]/).pop() ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim();
  if (name === '' || name === '.' || name === '..') throw new ValidationError('name', 'must name the file (e.g. report.pdf)');
  if (name.length > 255) throw new ValidationError('name', 'at most 255 characters');
  return name;
}

/** The picture's displayed size (EXIF orientations 5 to 8 turn it a quarter); refused when it is not a picture of `type`. */
function picture(head: Buffer, type: string): { width: number; height: number } {
  let size: ReturnType<typeof imageSize>;
  try {
    size = imageSize(head);
  } catch {
    throw new SbError('UNSUPPORTED_MEDIA_TYPE', `the file is not a ${type} picture (or its size is not in its first ${head.length} bytes)`);
  }
  if (size.type !== PICTURES[type]) throw new SbError('UNSUPPORTED_MEDIA_TYPE', `the file is a ${size.type ?? 'different'} picture, not ${type}`);
  const turned = (size.orientation ?? 1) >= 5;
  return turned ? { width: size.height, height: size.width } : { width: size.width, height: size.height };
}
