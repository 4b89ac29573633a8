// JSON Schemas of the REST API's shapes: request schemas are enforced by the router (Ajv) and every
// schema here is published in the OpenAPI document's components.

import { ValidationError } from '../errors.js';
import type { Schema } from './validate.js';

export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
export const refs = {
  User: ref('User'),
  Me: ref('Me'),
  AuthSession: ref('AuthSession'),
  Room: ref('Room'),
  Member: ref('Member'),
  Message: ref('Message'),
  Attachment: ref('Attachment'),
  Ban: ref('Ban'),
  Session: ref('Session'),
  CookieSession: ref('CookieSession'),
  Error: ref('Error'),
  Robot: ref('Robot'),
  RobotCertificate: ref('RobotCertificate'),
  RobotStatus: ref('RobotStatus'),
  Enrollment: ref('Enrollment'),
  Grant: ref('Grant'),
  Command: ref('Command'),
};

const str = (description: string, extra: Schema = {}): Schema => ({ type: 'string', description, ...extra });
const time = (description: string): Schema => str(description, { format: 'date-time' });

export const components: Record<string, Schema> = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: str('Stable machine-readable code, e.g. VALIDATION, NOT_MEMBER, RATE_LIMITED'),
          message: str('Human-readable explanation, safe to show'),
          field: str('For validation errors: the offending field'),
          retryAfterS: { type: 'integer', description: 'For RATE_LIMITED: seconds to wait (also in Retry-After)' },
        },
      },
    },
    example: { error: { code: 'VALIDATION', message: 'password: at least 10 characters', field: 'password' } },
  },
  User: {
    type: 'object',
    required: ['id', 'username', 'displayName', 'bio', 'avatarUrl', 'timeZone', 'createdAt'],
    properties: {
      id: str('User id', { format: 'uuid' }),
      username: str('Unique, case-insensitively; never changes'),
      displayName: { type: ['string', 'null'], description: 'What people see; the username when null' },
      bio: { type: ['string', 'null'] },
      avatarUrl: { type: ['string', 'null'], format: 'uri-reference', description: 'A link, or `/api/v1/attachments/{id}` for an uploaded avatar' },
      timeZone: { type: ['string', 'null'], description: 'IANA name, e.g. Europe/Paris' },
      createdAt: time('Account creation'),
      bot: { const: true, description: 'Present on a bot: an account the server API posts as, which never logs in' },
    },
  },
  AuthSession: {
    type: 'object',
    required: ['id', 'current', 'createdAt', 'lastUsedAt', 'expiresAt', 'userAgent', 'ip'],
    properties: {
      id: str('Session id', { format: 'uuid' }),
      current: { type: 'boolean', description: 'The session this request came from' },
      createdAt: time('Login'),
      lastUsedAt: time('Last login or refresh'),
      expiresAt: time('When its refresh token expires unless refreshed'),
      userAgent: { type: ['string', 'null'], description: 'The User-Agent of the login, cut to 256 characters' },
      ip: { type: ['string', 'null'], description: 'The client IP of the login' },
    },
  },
  Me: {
    allOf: [
      ref('User'),
      {
        type: 'object',
        required: ['isAdmin', 'email', 'pendingEmail', 'dmPolicy'],
        properties: {
          isAdmin: { type: 'boolean' },
          email: { type: ['string', 'null'], description: 'Your verified address (logs in by code); only you see it' },
          pendingEmail: { type: ['string', 'null'], description: 'An address waiting for its code' },
          dmPolicy: { enum: ['anyone', 'contacts'], description: 'Who may open a direct room with you' },
        },
      },
    ],
  },
  Room: {
    type: 'object',
    required: ['id', 'kind', 'name', 'ownerId', 'lastSeq', 'createdAt'],
    properties: {
      id: str('Room id', { format: 'uuid' }),
      kind: { enum: ['group', 'direct'] },
      name: { type: ['string', 'null'], description: 'Null for direct rooms' },
      ownerId: { type: ['string', 'null'], format: 'uuid' },
      lastSeq: { type: 'integer', description: 'Seq of the newest message (0 when empty)' },
      createdAt: time('Room creation'),
      role: { enum: ['owner', 'moderator', 'member', null], description: "The caller's role; null when not a member (single rooms, and `scope=mine`)" },
      receipts: { type: 'boolean', description: "Members see each other's read markers (direct rooms always do)" },
      readSeq: { type: 'integer', description: 'Your read marker: the last seq you read (members only; single rooms and `scope=mine`)' },
      unread: { type: 'integer', description: 'Messages posted after your read marker (not timeline events); counters, not a count over history' },
      mentions: { type: 'integer', description: 'Of those, the ones that mention you (`@username`)' },
      notify: { enum: ['all', 'mentions', 'muted'], description: 'Your notification level in the room (members only): which messages send you a `notice`' },
      peer: {
        type: ['object', 'null'],
        properties: { id: { type: 'string', format: 'uuid' }, username: { type: 'string' } },
        description: 'In a direct room listed by `scope=mine`: the other person (null once their account is gone)',
      },
    },
  },
  Member: {
    type: 'object',
    required: ['userId', 'username', 'role', 'joinedAt'],
    properties: {
      userId: str('User id', { format: 'uuid' }),
      username: str('Username'),
      role: { enum: ['owner', 'moderator', 'member'] },
      joinedAt: time('When they joined'),
      readSeq: { type: 'integer', description: 'Their read marker, where the room shows receipts (direct rooms, or `receipts` on)' },
    },
  },
  Ban: {
    type: 'object',
    required: ['userId', 'username', 'bannedBy', 'since'],
    properties: {
      userId: str('Banned user', { format: 'uuid' }),
      username: str('Their username'),
      bannedBy: { type: ['string', 'null'], format: 'uuid', description: 'Who banned them (null once that account is gone)' },
      since: time('When'),
    },
  },
  Attachment: {
    type: 'object',
    description: 'A file: what an upload answers, and what a message shows of each file it carries',
    required: ['id', 'name', 'type', 'size'],
    properties: {
      id: str('Its id: the bytes are at GET /api/v1/attachments/{id}', { format: 'uuid' }),
      name: str('The file name given at upload'),
      type: str('Its media type', { example: 'image/png' }),
      size: { type: 'integer', minimum: 0, description: 'Bytes' },
      width: { type: 'integer', minimum: 0, description: 'Pixels, for a picture (PNG, JPEG, GIF, WebP), as displayed' },
      height: { type: 'integer', minimum: 0, description: 'Pixels, for a picture' },
    },
  },
  Message: {
    type: 'object',
    required: ['id', 'roomId', 'seq', 'senderId', 'cid', 'body', 'createdAt'],
    properties: {
      id: str('Message id', { format: 'uuid' }),
      roomId: str('Room id', { format: 'uuid' }),
      seq: { type: 'integer', minimum: 1, description: 'Position in the room: contiguous from 1' },
      senderId: { type: ['string', 'null'], format: 'uuid', description: 'Null once the sender account is deleted. For an event: who did it' },
      cid: str("The sender's client message id (`ev:` and the id, for an event)"),
      body: str('Message text; empty for an event and once deleted'),
      createdAt: time('Server time the message was stored'),
      deletedAt: time('Present once the message was deleted: it stays as a tombstone, with an empty body'),
      editedAt: time('Present once the message was edited: `body` is its current text'),
      attachments: { type: 'array', items: ref('Attachment'), description: 'The files it carries, in the order given (none once deleted)' },
      reactions: {
        type: 'array',
        description: 'In history: each emoji on the message, oldest first, with how many reacted and whether you did',
        items: {
          type: 'object',
          required: ['emoji', 'count', 'me'],
          properties: { emoji: str('The emoji'), count: { type: 'integer', minimum: 1 }, me: { type: 'boolean' } },
        },
      },
      event: {
        type: 'object',
        description:
          "Present on a timeline event (not something posted): `user` joined (`member_joined`), left (`member_left`), was removed (`member_removed`) or banned (`member_banned`), or got `role` (`role_changed`); the room was renamed to `name` (`room_renamed`); the message at seq `target` was deleted (`message_deleted`), edited to `body` (`message_edited`), or got or lost `user`'s `emoji` (`reaction_added`, `reaction_removed`)",
        required: ['kind'],
        properties: {
          kind: {
            enum: [
              'member_joined',
              'member_left',
              'member_removed',
              'member_banned',
              'role_changed',
              'room_renamed',
              'message_deleted',
              'message_edited',
              'reaction_added',
              'reaction_removed',
            ],
          },
          user: { type: 'object', required: ['id', 'username'], properties: { id: str('User id', { format: 'uuid' }), username: str('Username') } },
          role: { enum: ['owner', 'moderator', 'member'] },
          name: str('The new name'),
          target: { type: 'integer', minimum: 1, description: 'Seq of the message deleted, edited or reacted to' },
          body: str('The new text (`message_edited`; empty once that message is deleted)'),
          emoji: str('The emoji'),
        },
      },
    },
  },
  Robot: {
    type: 'object',
    required: ['id', 'name', 'ownerId', 'createdAt', 'lastSeenAt', 'online', 'role'],
    properties: {
      id: str('Robot id: also the CN of its client certificates', { format: 'uuid' }),
      name: str('Unique per owner, case-insensitively; 1–64 characters'),
      ownerId: str('The owning user', { format: 'uuid' }),
      createdAt: time('Registration'),
      lastSeenAt: { type: ['string', 'null'], format: 'date-time', description: 'When the robot was last connected; null if never' },
      online: { type: 'boolean', description: 'Connected to the hub right now' },
      role: {
        enum: ['owner', 'operator', 'viewer', null],
        description: "The caller's role; null for an admin without one (admins may act as owners of any robot)",
      },
    },
  },
  RobotCertificate: {
    type: 'object',
    required: ['fingerprint', 'serial', 'notAfter', 'createdAt', 'revokedAt'],
    properties: {
      fingerprint: str('SHA-256 of the DER certificate, as `AB:CD:...` (the form `openssl x509 -fingerprint -sha256` prints)'),
      serial: str('Serial number, lowercase hex'),
      notAfter: time('Expiry'),
      createdAt: time('Issue'),
      revokedAt: { type: ['string', 'null'], format: 'date-time', description: 'Null while the certificate is trusted' },
    },
  },
  Enrollment: {
    type: 'object',
    required: ['certificatePem', 'caPem', 'fingerprint', 'serial', 'notAfter'],
    properties: {
      certificatePem: str('The client certificate (PEM), signed by the robot CA, CN = robot id'),
      privateKeyPem: str(
        'Its private key (PKCS#8 PEM), when the hub made it (no `csr` given). Returned this once and never stored: keep it on the robot. Absent when the certificate is for the key of a `csr`',
      ),
      caPem: str('The robot CA certificate (PEM) that signed it; with `pki init`, also what the hub’s server certificate chains to'),
      fingerprint: str('SHA-256 fingerprint of the certificate, `AB:CD:...`'),
      serial: str('Serial number, lowercase hex'),
      notAfter: time('Expiry'),
    },
  },
  RobotStatus: {
    type: 'object',
    required: ['online', 'lastSeenAt', 'channels', 'lease'],
    properties: {
      online: { type: 'boolean', description: 'Connected to the hub right now' },
      lastSeenAt: { type: ['string', 'null'], format: 'date-time', description: 'When the robot last connected or disconnected; null if never' },
      channels: {
        type: 'array',
        description:
          'The telemetry channels it advertises (in HELLO, then ADVERTISE and WITHDRAW) or advertised when it was last connected; empty when this node has not seen it connect recently (its live state is let go about a minute after it was last connected, watched or asked about)',
        items: {
          type: 'object',
          required: ['id', 'name', 'encoding', 'schema', 'delivery'],
          properties: {
            id: { type: 'integer', minimum: 0, maximum: 65535 },
            name: { type: 'string' },
            encoding: { type: 'string', description: 'How its payloads are meant to be read, e.g. `msgpack`, `json`, `raw`' },
            schema: { type: ['string', 'null'], description: 'Schema hint, e.g. `geometry_msgs/Twist`' },
            delivery: { enum: ['latest', 'reliable'] },
            schemaEncoding: {
              type: ['string', 'null'],
              description:
                'How `schemaData` is written (`jsonschema`, `ros2msg`, `ros2idl`, `protobuf`, `flatbuffer`, …); present only when the robot sent a schema',
            },
            schemaData: {
              type: ['string', 'null'],
              description:
                'The schema: its text, or base64 of its bytes when the robot sent binary (a protobuf FileDescriptorSet); present only when the robot sent one',
            },
          },
        },
      },
      lease: {
        type: ['object', 'null'],
        description: 'Who holds the control lease, and until when; null if nobody',
        required: ['holder', 'expiresAt'],
        properties: {
          holder: { type: 'object', required: ['id', 'username'], properties: { id: { type: 'string', format: 'uuid' }, username: { type: 'string' } } },
          expiresAt: time('When the lease lapses unless renewed'),
        },
      },
    },
  },
  Grant: {
    type: 'object',
    required: ['userId', 'username', 'role', 'grantedAt'],
    properties: {
      userId: str('User id', { format: 'uuid' }),
      username: str('Username'),
      role: { enum: ['viewer', 'operator'] },
      grantedAt: time('When the role was last set'),
    },
  },
  Command: {
    type: 'object',
    required: ['id', 'robotId', 'userId', 'command', 'argsDigest', 'issuedAt', 'deliveredAt', 'acceptedAt', 'completedAt', 'outcome'],
    properties: {
      id: str('Command id', { format: 'uuid' }),
      robotId: str('Robot id', { format: 'uuid' }),
      userId: { type: ['string', 'null'], format: 'uuid', description: 'Who issued it; null once that account is deleted' },
      command: str('Command name'),
      argsDigest: str('SHA-256 of the arguments, hex (the arguments themselves are not kept)'),
      issuedAt: time('Issued'),
      deliveredAt: { type: ['string', 'null'], format: 'date-time' },
      acceptedAt: { type: ['string', 'null'], format: 'date-time' },
      completedAt: { type: ['string', 'null'], format: 'date-time' },
      outcome: {
        type: ['string', 'null'],
        description:
          'Set once the command ended: `completed`, `rejected` or `failed` (as the robot reported), `timeout` (no outcome before the deadline), `lost` (the robot disconnected first: the outcome is unknown), `not_sent` (refused after it was recorded: robot offline, lease lost or deadline passed), `offline` (an emergency stop to an offline robot)',
      },
    },
  },
  Session: {
    type: 'object',
    required: ['tokenType', 'accessToken', 'accessExpiresAt', 'refreshToken', 'refreshExpiresAt', 'user'],
    properties: {
      tokenType: { const: 'Bearer' },
      accessToken: str('EdDSA JWT for `Authorization: Bearer`'),
      accessExpiresAt: time('Access token expiry'),
      refreshToken: str('Opaque; single use: each refresh returns a new one'),
      refreshExpiresAt: time('Refresh token expiry'),
      user: ref('Me'),
    },
  },
  CookieSession: {
    type: 'object',
    required: ['accessExpiresAt', 'refreshExpiresAt', 'csrfToken', 'user'],
    properties: {
      accessExpiresAt: time('Access cookie expiry'),
      refreshExpiresAt: time('Refresh cookie expiry'),
      csrfToken: str('Send as X-CSRF-Token on every state-changing request (also in the sb_csrf cookie)'),
      user: ref('Me'),
    },
  },
};

export const limitParam = (def: number, max: number): Schema => ({
  type: 'integer',
  minimum: 1,
  maximum: max,
  default: def,
  description: `Page size (1–${max})`,
});
export const cursorParam: Schema = { type: 'string', maxLength: 512, description: 'Opaque cursor from the previous page’s `nextCursor`' };

/** Cursors are opaque to clients: base64url of the last key of the page. */
export const encodeCursor = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');

/**
 * The key inside a cursor, or a 400 VALIDATION for anything this server did not issue. A cursor must
 * be the canonical encoding of its key (so stray bytes, invalid UTF-8 and NULs, which PostgreSQL
 * refuses in text, never reach a query), and `check` must accept the key's shape.
 */
export function decodeCursor(cursor: string | undefined, check: (key: string) => boolean): string | undefined {
  if (cursor === undefined) return undefined;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (encodeCursor(key) !== cursor || key.includes('\0') || !check(key)) throw new ValidationError('cursor', 'is not a cursor this endpoint issued');
  return key;
}

/** `nextCursor` for a page of `limit` rows: present only when the page is full. */
export function nextCursor<T>(rows: T[], limit: number, key: (row: T) => string): string | null {
  const last = rows[rows.length - 1];
  return rows.length === limit && last !== undefined ? encodeCursor(key(last)) : null;
}
