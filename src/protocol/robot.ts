// The robot wire protocol `sbr.v1`, spoken over the mutual-TLS robot endpoint. A frame is a 4-byte
// big-endian length, then that many bytes of plain MessagePack: an array whose first element is a
// small integer tag. Arrays, not maps, keep a telemetry frame at 16 bytes plus its payload.
// docs/protocol.md ("Robot protocol") is the specification; this module is the one implementation,
// shared by the hub and the robot simulator.

import { packPlain, unpackPlain } from './codec.js';

export const ROBOT_PROTOCOL_VERSION = 1;

export const Tag = {
  /** robot → hub, first frame: [1, version, channels] */
  HELLO: 1,
  /** hub → robot, answers HELLO: [2, robotId, heartbeatMs] */
  WELCOME: 2,
  /** robot → hub: [3, channel, ts, payload] */
  TELEMETRY: 3,
  /** both ways, whenever the link was otherwise quiet for heartbeatMs: [4] */
  HEARTBEAT: 4,
  /** hub → robot: [5, code, message, ref] (ref: the command id it concerns, or nil) */
  ERROR: 5,
  /** hub → robot: [10, commandId, name, args, timeoutMs] */
  COMMAND: 10,
  /** hub → robot: [11, commandId]: stop now; answered like a command */
  ESTOP: 11,
  /** robot → hub: [12, commandId, stage, detail] */
  STATUS: 12,
} as const;

export type Delivery = 'latest' | 'reliable';
const DELIVERY: Delivery[] = ['latest', 'reliable'];

/** What a robot reports about a command: `detail` is the reason (rejected), result (completed) or error (failed). */
export type RobotStage = 'accepted' | 'rejected' | 'completed' | 'failed';
const STAGES: (RobotStage | undefined)[] = [undefined, 'accepted', 'rejected', 'completed', 'failed'];
export const stageCode = (s: RobotStage): number => STAGES.indexOf(s);

export interface Channel {
  /** Small integer the telemetry frames refer to, 0–65535, unique per robot. */
  id: number;
  name: string;
  /** How the payload is meant to be read (e.g. `msgpack`, `json`, `raw`): a hint for watchers. */
  encoding: string;
  /** Free-form schema hint (e.g. `geometry_msgs/Twist`), or null. */
  schema: string | null;
  delivery: Delivery;
}

export type RobotFrame =
  | { tag: typeof Tag.HELLO; version: number; channels: Channel[] }
  | { tag: typeof Tag.TELEMETRY; channel: number; ts: number; payload: unknown }
  | { tag: typeof Tag.HEARTBEAT }
  | { tag: typeof Tag.STATUS; command: string; stage: RobotStage; detail: unknown };

export type HubFrame =
  | { tag: typeof Tag.WELCOME; robotId: string; heartbeatMs: number }
  | { tag: typeof Tag.HEARTBEAT }
  | { tag: typeof Tag.ERROR; code: string; message: string; ref: string | null }
  | { tag: typeof Tag.COMMAND; command: string; name: string; args: unknown; timeoutMs: number }
  | { tag: typeof Tag.ESTOP; command: string };

export const MAX_CHANNELS = 64;
const NAME_MAX = 64;
const HINT_MAX = 256;
const COMMAND_ID_MAX = 64;

/** A frame the receiver cannot accept; `code` is what the ERROR frame sent back carries. */
export class RobotProtocolError extends Error {
  constructor(
    readonly code: 'BAD_FRAME' | 'UNKNOWN_TYPE' | 'VALIDATION' | 'FRAME_TOO_LARGE',
    message: string,
  ) {
    super(message);
    this.name = 'RobotProtocolError';
  }
}

/** Encodes a value as one length-prefixed frame. Integers beyond 32 bits go out as int64, not float. */
export function frameBytes(value: unknown[]): Buffer {
  const body = packPlain(value);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

export function encodeHubFrame(f: HubFrame): Buffer {
  switch (f.tag) {
    case Tag.WELCOME:
      return frameBytes([f.tag, f.robotId, f.heartbeatMs]);
    case Tag.HEARTBEAT:
      return frameBytes([f.tag]);
    case Tag.ERROR:
      return frameBytes([f.tag, f.code, f.message, f.ref]);
    case Tag.COMMAND:
      return frameBytes([f.tag, f.command, f.name, f.args, f.timeoutMs]);
    case Tag.ESTOP:
      return frameBytes([f.tag, f.command]);
  }
}

export function encodeRobotFrame(f: RobotFrame): Buffer {
  switch (f.tag) {
    case Tag.HELLO:
      return frameBytes([f.tag, f.version, f.channels.map((c) => [c.id, c.name, c.encoding, c.schema, DELIVERY.indexOf(c.delivery)])]);
    case Tag.TELEMETRY:
      return frameBytes([f.tag, f.channel, f.ts, f.payload]);
    case Tag.HEARTBEAT:
      return frameBytes([f.tag]);
    case Tag.STATUS:
      return frameBytes([f.tag, f.command, stageCode(f.stage), f.detail ?? null]);
  }
}

/**
 * Splits a byte stream into frame bodies. A declared length above `maxFrameBytes` throws before any
 * of the body is buffered, so a peer cannot make the reader hold more than one frame's worth.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Adds bytes; returns every complete frame body they finish, in order. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.chunks[0] as Buffer;
      const joined = head.length >= 4 ? head : this.join();
      const length = joined.readUInt32BE(0);
      if (length > this.maxFrameBytes) throw new RobotProtocolError('FRAME_TOO_LARGE', `frame of ${length} bytes; the limit is ${this.maxFrameBytes}`);
      if (this.buffered < 4 + length) break;
      const all = this.chunks.length === 1 ? joined : this.join();
      out.push(all.subarray(4, 4 + length));
      const rest = all.subarray(4 + length);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
    }
    return out;
  }

  private join(): Buffer {
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
  }
}

function unpackArray(body: Buffer): unknown[] {
  let value: unknown;
  try {
    value = unpackPlain(body);
  } catch {
    throw new RobotProtocolError('BAD_FRAME', 'not a valid plain MessagePack value (no extension types, nesting at most 64 deep)');
  }
  if (!Array.isArray(value) || value.length === 0) throw new RobotProtocolError('BAD_FRAME', 'a frame is an array whose first element is its type tag');
  return value;
}

const isUint = (v: unknown, max: number): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;

/** C0 and C1 control characters and DEL: NUL and friends would reach logs, JSON watchers and the console. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function text(v: unknown, what: string, max: number, optional = false): string | null {
  if (optional && v === null) return null;
  if (typeof v !== 'string' || v.length < 1 || [...v].length > max) throw new RobotProtocolError('VALIDATION', `${what}: a string of 1 to ${max} characters`);
  if (CONTROL.test(v)) throw new RobotProtocolError('VALIDATION', `${what}: no control characters (U+0000 to U+001F, U+007F to U+009F)`);
  return v;
}

function channelOf(v: unknown, i: number): Channel {
  if (!Array.isArray(v) || v.length !== 5) throw new RobotProtocolError('VALIDATION', `channels[${i}]: [id, name, encoding, schema, delivery]`);
  const [id, name, encoding, schema, delivery] = v;
  if (!isUint(id, 65_535)) throw new RobotProtocolError('VALIDATION', `channels[${i}].id: an integer from 0 to 65535`);
  if (delivery !== 0 && delivery !== 1) throw new RobotProtocolError('VALIDATION', `channels[${i}].delivery: 0 (latest) or 1 (reliable)`);
  return {
    id,
    name: text(name, `channels[${i}].name`, NAME_MAX) as string,
    encoding: text(encoding, `channels[${i}].encoding`, NAME_MAX) as string,
    schema: text(schema, `channels[${i}].schema`, HINT_MAX, true),
    delivery: DELIVERY[delivery] as Delivery,
  };
}

/** Decodes and checks one frame body a robot sent. */
export function parseRobotFrame(body: Buffer): RobotFrame {
  const a = unpackArray(body);
  switch (a[0]) {
    case Tag.HELLO: {
      if (a.length !== 3) throw new RobotProtocolError('VALIDATION', 'HELLO: [1, version, channels]');
      if (a[1] !== ROBOT_PROTOCOL_VERSION)
        throw new RobotProtocolError('VALIDATION', `HELLO: unsupported version ${String(a[1])}; this hub speaks ${ROBOT_PROTOCOL_VERSION}`);
      if (!Array.isArray(a[2]) || a[2].length > MAX_CHANNELS)
        throw new RobotProtocolError('VALIDATION', `HELLO: channels is an array of at most ${MAX_CHANNELS}`);
      const channels = a[2].map(channelOf);
      const ids = new Set(channels.map((c) => c.id));
      const names = new Set(channels.map((c) => c.name));
      if (ids.size !== channels.length || names.size !== channels.length)
        throw new RobotProtocolError('VALIDATION', 'HELLO: channel ids and names must be unique');
      return { tag: Tag.HELLO, version: a[1], channels };
    }
    case Tag.TELEMETRY:
      if (a.length !== 4 || !isUint(a[1], 65_535) || !isUint(a[2], Number.MAX_SAFE_INTEGER)) {
        throw new RobotProtocolError('VALIDATION', 'TELEMETRY: [3, channel (0–65535), ts (ms, unsigned integer), payload]');
      }
      return { tag: Tag.TELEMETRY, channel: a[1], ts: a[2], payload: a[3] };
    case Tag.HEARTBEAT:
      return { tag: Tag.HEARTBEAT };
    case Tag.STATUS: {
      const stage = typeof a[2] === 'number' ? STAGES[a[2]] : undefined;
      if (a.length < 3 || a.length > 4 || !stage)
        throw new RobotProtocolError('VALIDATION', 'STATUS: [12, commandId, stage (1 accepted, 2 rejected, 3 completed, 4 failed), detail]');
      return { tag: Tag.STATUS, command: text(a[1], 'STATUS commandId', COMMAND_ID_MAX) as string, stage, detail: a[3] ?? null };
    }
    default:
      throw new RobotProtocolError('UNKNOWN_TYPE', `unknown frame type ${String(JSON.stringify(a[0])).slice(0, 40)}`);
  }
}

/** Decodes one frame body the hub sent (the robot's side: the simulator and the tests). */
export function parseHubFrame(body: Buffer): HubFrame {
  const a = unpackArray(body);
  switch (a[0]) {
    case Tag.WELCOME:
      return { tag: Tag.WELCOME, robotId: String(a[1]), heartbeatMs: Number(a[2]) };
    case Tag.HEARTBEAT:
      return { tag: Tag.HEARTBEAT };
    case Tag.ERROR:
      return { tag: Tag.ERROR, code: String(a[1]), message: String(a[2]), ref: typeof a[3] === 'string' ? a[3] : null };
    case Tag.COMMAND:
      return { tag: Tag.COMMAND, command: String(a[1]), name: String(a[2]), args: a[3], timeoutMs: Number(a[4]) };
    case Tag.ESTOP:
      return { tag: Tag.ESTOP, command: String(a[1]) };
    default:
      throw new RobotProtocolError('UNKNOWN_TYPE', `unknown frame type ${String(JSON.stringify(a[0])).slice(0, 40)}`);
  }
}
