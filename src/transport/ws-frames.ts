// Validation of client frames: decoded bytes become a typed ClientFrame or a FrameError naming the
// problem (and the request id when the frame had a usable one), never an exception to uWS.

import { type ErrorCode, SbError } from '../errors.js';
import { decode, InvalidUtf8Error } from '../protocol/codec.js';
import type { ClientFrame, Encoding } from '../protocol/frames.js';
import { UUID_PATTERN } from './schemas.js';
import { type Schema, validateBody } from './validate.js';

const id = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER };
const room = { type: 'string', pattern: UUID_PATTERN };
const seq = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };
const frame = (t: string, props: Record<string, Schema>, required: string[] = []): Schema => ({
  type: 'object',
  additionalProperties: false,
  required: ['t', 'id', ...required],
  properties: { t: { const: t }, id, ...props },
});

const schemas: Record<ClientFrame['t'], Schema> = {
  sub: frame('sub', { room, since: seq }, ['room']),
  unsub: frame('unsub', { room }, ['room']),
  pub: frame(
    'pub',
    { room, cid: { type: 'string', minLength: 1, maxLength: 64 }, body: { type: 'string' }, att: { type: 'array', maxItems: 10, items: room } },
    ['room', 'cid', 'body'],
  ),
  hist: frame('hist', { room, before: { ...seq, minimum: 1 }, after: seq, limit: { type: 'integer', minimum: 1, maximum: 200 } }, ['room']),
  typing: frame('typing', { room }, ['room']),
  read: frame('read', { room, seq }, ['room', 'seq']),
  feed: frame('feed', { since: seq }),
  auth: frame('auth', { token: { type: 'string', minLength: 1, maxLength: 4096 } }, ['token']),
  ping: frame('ping', {}),
  watch: frame(
    'watch',
    {
      robot: room,
      channels: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 64 } },
      since: {
        type: 'object',
        maxProperties: 64,
        propertyNames: { type: 'string', minLength: 1, maxLength: 64 },
        additionalProperties: { type: 'integer', minimum: -1, maximum: Number.MAX_SAFE_INTEGER },
      },
    },
    ['robot'],
  ),
  unwatch: frame('unwatch', { robot: room }, ['robot']),
  cmd: frame(
    'cmd',
    { robot: room, name: { type: 'string', minLength: 1, maxLength: 64 }, args: {}, timeoutMs: { type: 'integer', minimum: 100, maximum: 600_000 } },
    ['robot', 'name'],
  ),
  estop: frame('estop', { robot: room }, ['robot']),
  lease: frame(
    'lease',
    { robot: room, op: { enum: ['acquire', 'renew', 'release'] }, ttlMs: { type: 'integer', minimum: 1_000, maximum: 300_000 }, force: { type: 'boolean' } },
    ['robot', 'op'],
  ),
};

/** How deep a frame's values (a command's `args`) may nest. */
export const MAX_DEPTH = 64;

/** Whether `value` nests deeper than `max` arrays and maps; iterative, so any depth is safe to ask about. */
function deeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) continue;
    if (d > max) return true;
    for (const x of Object.values(v)) stack.push([x, d + 1]);
  }
  return false;
}

/** The codes a frame that cannot be taken as a request is answered with. */
export type FrameCode = Extract<ErrorCode, 'BAD_FRAME' | 'UNKNOWN_TYPE' | 'VALIDATION'>;

export class FrameError extends SbError {
  declare readonly code: FrameCode;
  constructor(
    readonly id: number | null,
    code: FrameCode,
    message: string,
  ) {
    super(code, message);
    this.name = 'FrameError';
  }
  /** The code of the `error` frame it is answered with (the same as `code`). */
  get frameCode(): FrameCode {
    return this.code;
  }
}

/** Decodes and validates one WebSocket message of a connection using `encoding`; throws only FrameErrors. */
export function parseFrame(message: Uint8Array, isBinary: boolean, encoding: Encoding): ClientFrame {
  if (isBinary !== (encoding === 'msgpack')) {
    throw new FrameError(null, 'BAD_FRAME', `${encoding} connections send ${encoding === 'msgpack' ? 'binary' : 'text'} frames`);
  }
  let value: unknown;
  try {
    value = decode(message, encoding);
  } catch (e) {
    if (e instanceof InvalidUtf8Error) throw new FrameError(requestId(e.value), 'VALIDATION', e.message);
    throw new FrameError(null, 'BAD_FRAME', `not a valid ${encoding === 'msgpack' ? 'MessagePack' : 'JSON'} value`);
  }
  return toClientFrame(value);
}

/** The request id of a decoded value, when it has a usable one (errors about it carry it). */
export function requestId(value: unknown): number | null {
  const id = value !== null && typeof value === 'object' ? (value as Record<string, unknown>).id : undefined;
  return Number.isSafeInteger(id) && (id as number) > 0 ? (id as number) : null;
}

/** Checks a decoded value against the frame schemas. */
export function toClientFrame(value: unknown): ClientFrame {
  // Plain objects only: MessagePack also decodes to arrays, byte arrays, dates and the 0xc1 marker.
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new FrameError(null, 'BAD_FRAME', 'a frame is a map with a type field `t`');
  }
  const v = value as Record<string, unknown>;
  const reqId = requestId(v);
  // As the robot protocol: deeper values are refused here, before anything walks them recursively.
  if (deeperThan(value, MAX_DEPTH + 1)) throw new FrameError(reqId, 'VALIDATION', `values may nest at most ${MAX_DEPTH} levels deep`);
  const schema = typeof v.t === 'string' ? schemas[v.t as ClientFrame['t']] : undefined;
  if (!schema || !Object.hasOwn(schemas, v.t as string))
    throw new FrameError(reqId, 'UNKNOWN_TYPE', `unknown frame type ${JSON.stringify(String(v.t)).slice(0, 40)}`);
  try {
    return validateBody<ClientFrame>(schema, v);
  } catch (e) {
    throw new FrameError(reqId, 'VALIDATION', (e as Error).message);
  }
}
