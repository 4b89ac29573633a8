// Files: uploads (attachments for messages, and avatars), their download by those allowed to see
// them, with ranges, and what each person stores against their quota.

import { type AttachmentsService, PICTURES } from '../chat/attachments-service.js';
import { notFound, SbError } from '../errors.js';
import type { Attachment } from '../protocol/frames.js';
import { attachmentOf, type BlobMeta } from '../store/blobs.js';
import type { Store } from '../store/store.js';
import type { Ctx, Reply, Route } from './http.js';
import type { BodyReader } from './http-stream.js';
import { me } from './routes-auth.js';
import { refs } from './schemas.js';

const tags = ['Attachments'];

export function attachmentRoutes(files: AttachmentsService, store: Store): Route[] {
  const L = files.limits;
  const upload = (ctx: Ctx<BodyReader>, kind: 'attachment' | 'avatar', name: string) =>
    files.upload({
      ownerId: ctx.user.id,
      kind,
      name,
      type: ctx.headers['content-type'],
      length: ctx.headers['content-length'] === undefined ? undefined : Number(ctx.headers['content-length']),
      body: ctx.body,
    });
  const refusals = {
    411: { description: 'No Content-Length (LENGTH_REQUIRED)' },
    413: { description: `Larger than SB_ATTACHMENT_MAX_BYTES (PAYLOAD_TOO_LARGE), or over your quota, SB_ATTACHMENT_QUOTA_BYTES (QUOTA_EXCEEDED)` },
    415: { description: 'A type not allowed, or a picture that is not of its declared type (UNSUPPORTED_MEDIA_TYPE)' },
    429: { description: '4 uploads of yours in progress already (RATE_LIMITED)' },
    503: { description: 'SB_UPLOADS_MAX uploads in progress on this node (OVERLOADED); retry after Retry-After' },
  };
  return [
    {
      method: 'POST',
      path: '/api/v1/attachments',
      auth: true,
      streamBody: true,
      query: {
        type: 'object',
        required: ['name'],
        properties: { name: { type: 'string', minLength: 1, maxLength: 1024, description: 'The file name (a path is cut to its last part)' } },
      },
      summary: 'Upload a file to attach to messages',
      description: `The body is the file itself (not a form), with its media type as Content-Type and a Content-Length; it is stored as it arrives, never held whole in memory. Allowed types: SB_ATTACHMENT_TYPES (by default ${L.types.join(', ')}); a PNG, JPEG, GIF or WebP must be a picture of that type, and its width and height are recorded. At most SB_ATTACHMENT_MAX_BYTES (${L.maxBytes}) bytes, within your quota. Then post a message with \`attachments\` (REST) or \`att\` (WebSocket) listing the id; a file no message carries is deleted after a day, and one is deleted with the last message carrying it. An upload cut short leaves nothing behind.`,
      tags,
      responses: {
        201: { description: 'Stored', schema: refs.Attachment },
        ...refusals,
      },
      async handle(ctx: Ctx<BodyReader, { name: string }>) {
        return { status: 201, body: attachmentOf(await upload(ctx, 'attachment', ctx.query.name)) };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/attachments/:id',
      auth: true,
      uuidParams: ['id'],
      summary: 'Download a file',
      description:
        "Allowed to the members of a room where a message carries it, to its uploader, and to anyone signed in for an avatar. Pictures come `inline`, anything else as an `attachment` to save; every file with `X-Content-Type-Options: nosniff` and a sandboxing Content-Security-Policy. One byte range (`Range: bytes=0-1023`, `bytes=1024-`, `bytes=-500`) gets 206 with Content-Range; a range past the end, 416. The ETag is the file's id (a file never changes): `If-None-Match` gets 304. Browsers may use the session cookie, so `<img src>` works.",
      tags,
      responses: {
        200: { description: 'The file' },
        206: { description: 'The range asked for' },
        304: { description: 'Not modified (If-None-Match)' },
        403: { description: 'Not a member of a room where a message carries it (FORBIDDEN)' },
        404: { description: 'No such file, or not completely uploaded' },
        416: { description: 'The range starts past the end (RANGE_NOT_SATISFIABLE)' },
      },
      async handle(ctx) {
        const found = await store.blobs.readable(ctx.params.id as string, ctx.user.id);
        if (!found) throw notFound('attachment');
        if (!found.allowed) throw new SbError('FORBIDDEN', 'only the members of a room where it was posted may download it');
        return download(files, ctx.user.id, found.blob, ctx.headers);
      },
    },
    {
      method: 'GET',
      path: '/api/v1/auth/me/storage',
      auth: true,
      summary: 'What your files use of your quota',
      tags,
      responses: {
        200: {
          description: 'Bytes and files stored (uploads in progress included), and the quota',
          schema: {
            type: 'object',
            properties: { usedBytes: { type: 'integer' }, files: { type: 'integer' }, quotaBytes: { type: 'integer' }, maxFileBytes: { type: 'integer' } },
          },
        },
      },
      async handle(ctx) {
        const u = await store.blobs.usage(ctx.user.id);
        return { body: { usedBytes: u.bytes, files: u.blobs, quotaBytes: L.quotaBytes, maxFileBytes: L.maxBytes } };
      },
    },
    {
      method: 'PUT',
      path: '/api/v1/auth/me/avatar',
      auth: true,
      streamBody: true,
      summary: 'Upload your avatar picture',
      description:
        'The body is a PNG, JPEG, GIF or WebP picture, with its Content-Type and a Content-Length (limits and quota as for attachments). Your `avatarUrl` becomes `/api/v1/attachments/{id}` on this hub, which anyone signed in may load; your previous uploaded avatar is deleted, as it is when `PATCH /api/v1/auth/me` sets another `avatarUrl` or none.',
      tags,
      responses: {
        200: { description: 'Your profile, with the new avatarUrl', schema: { type: 'object', properties: { user: refs.Me } } },
        ...refusals,
      },
      async handle(ctx: Ctx<BodyReader>) {
        const blob = await upload(ctx, 'avatar', 'avatar');
        if (!(await store.blobs.setAvatar(ctx.user.id, blob.id, `/api/v1/attachments/${blob.id}`))) {
          throw new SbError('CONFLICT', 'the avatar was replaced while it was being stored');
        }
        const user = await store.users.byId(ctx.user.id);
        if (!user) throw notFound('user');
        return { body: { user: me(user) } };
      },
    },
  ];
}

/** The blob (or the range of it asked for) as a streamed reply. */
function download(files: AttachmentsService, userId: string, blob: BlobMeta, headers: Record<string, string>): Reply {
  const etag = `"${blob.id}"`;
  const common: Record<string, string> = {
    etag,
    'cache-control': 'private, max-age=3600',
    'accept-ranges': 'bytes',
    'content-security-policy': "default-src 'none'; sandbox",
  };
  // Weak comparison (RFC 9110 §13.1.2): W/"id" matches "id"; * matches any file.
  if (headers['if-none-match']?.split(',').some((t) => [etag, `W/${etag}`, '*'].includes(t.trim()))) return { status: 304, headers: common };
  const range = parseRange(headers.range, blob.size);
  if (range === 'unsatisfiable') {
    throw new SbError('RANGE_NOT_SATISFIABLE', `the file is ${blob.size} bytes`, { size: blob.size });
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? blob.size - 1;
  const out: Record<string, string> = {
    ...common,
    'content-type': blob.type,
    'content-disposition': disposition(blob),
  };
  if (range) out['content-range'] = `bytes ${start}-${end}/${blob.size}`;
  return { status: range ? 206 : 200, headers: out, stream: { length: end - start + 1, ...files.download(userId, blob.id, start, end) } };
}

/** A single `bytes=` range (others, and several ranges, are ignored: the whole file is sent, as RFC 9110 allows). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header === undefined ? null : /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1) };
}

/** Inline for a picture, else to save; the name in ASCII for old clients and in UTF-8 (RFC 6266). */
function disposition(a: Attachment): string {
  const ascii = a.name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const utf8 = encodeURIComponent(a.name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${a.type in PICTURES ? 'inline' : 'attachment'}; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}
