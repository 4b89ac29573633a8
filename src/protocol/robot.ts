// The robot wire protocol `sbr.v1`, spoken over the mutual-TLS robot endpoint. A frame is a 4-byte
// big-endian length, then that many bytes of plain MessagePack: an array whose first element is a
// small integer tag. Arrays, not maps, keep a telemetry frame at 16 bytes plus its payload.
// docs/protocol.md ("Robot protocol") is the specification; this module is the one implementation,
// shared by the hub and the robot simulator.

import { packPlain, unpackPlain } from './codec.js';
import { MAX_CSR_BYTES } from './csr-limits.js';

export const ROBOT_PROTOCOL_VERSION = 1;

export const Tag = {
  /** robot → hub, first frame: [1, version, channels] */
  HELLO: 1,
  /** hub → robot, answers HELLO: [2, robotId, heartbeatMs] */
  WELCOME: 2,
  /** hub → robot: [6, channelId, seq]: every sample of the reliable channel up to seq is stored (cumulative) */
  ACK: 6,
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
  /** robot → hub, any time after WELCOME: [13, channels]: adds channels, or replaces those with the same id */
  ADVERTISE: 13,
  /** robot → hub, any time after WELCOME: [14, [channelId, ...]] */
  WITHDRAW: 14,
  /** robot → hub, after WELCOME: [20, csrDer]: a new certificate for a key it made (renewal with its current one) */
  RENEW: 20,
  /** hub → robot, answers RENEW: [21, certPem, caPem] (a refused RENEW gets ERROR with ref "renew") */
  CERTIFICATE: 21,
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
  /** How `schemaData` is written (`jsonschema`, `ros2msg`, `ros2idl`, `protobuf`, `flatbuffer`, …); absent when the robot sent none. */
  schemaEncoding?: string | null;
  /** The schema itself: text, or bytes (a FileDescriptorSet); at most SCHEMA_MAX_BYTES; absent when the robot sent none. */
  schemaData?: string | Uint8Array | null;
}

export type RobotFrame =
  | { tag: typeof Tag.HELLO; version: number; channels: Channel[] }
  /** `seq`: on a reliable channel, the robot's per-channel sample number (+1 per sample): the hub stores the sample and ACKs it. */
  | { tag: typeof Tag.TELEMETRY; channel: number; ts: number; payload: unknown; seq?: number }
  | { tag: typeof Tag.HEARTBEAT }
  | { tag: typeof Tag.STATUS; command: string; stage: RobotStage; detail: unknown }
  | { tag: typeof Tag.ADVERTISE; channels: Channel[] }
  | { tag: typeof Tag.WITHDRAW; channels: number[] }
  | { tag: typeof Tag.RENEW; csr: Uint8Array };

export type HubFrame =
  /** `lastStored`: [channelId, lastStoredSeq] of the robot's reliable channels that have stored samples. */
  | { tag: typeof Tag.WELCOME; robotId: string; heartbeatMs: number; lastStored?: [number, number][] }
  | { tag: typeof Tag.ACK; channel: number; seq: number }
  | { tag: typeof Tag.HEARTBEAT }
  | { tag: typeof Tag.ERROR; code: string; message: string; ref: string | null }
  | { tag: typeof Tag.COMMAND; command: string; name: string; args: unknown; timeoutMs: number }
  | { tag: typeof Tag.ESTOP; command: string }
  | { tag: typeof Tag.CERTIFICATE; certPem: string; caPem: string };

/** Channels a robot has at any time (advertised in HELLO or later, not withdrawn). */
export const MAX_CHANNELS = 64;
/** A channel's `schemaData`, bytes (UTF-8 for text). */
export const SCHEMA_MAX_BYTES = 65_536;
/** The `schemaData` of all of a robot's channels at any time, bytes. */
export const ROBOT_SCHEMAS_MAX_BYTES = 262_144;
const NAME_MAX = 64;
const HINT_MAX = 256;
const COMMAND_ID_MAX = 64;

/** A RENEW's certificate signing request, DER bytes: csr-limits.ts. */
export { MAX_CSR_BYTES };

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
      return frameBytes(f.lastStored ? [f.tag, f.robotId, f.heartbeatMs, f.lastStored] : [f.tag, f.robotId, f.heartbeatMs]);
    case Tag.ACK:
      return frameBytes([f.tag, f.channel, f.seq]);
    case Tag.HEARTBEAT:
      return frameBytes([f.tag]);
    case Tag.ERROR:
      return frameBytes([f.tag, f.code, f.message, f.ref]);
    case Tag.COMMAND:
      return frameBytes([f.tag, f.command, f.name, f.args, f.timeoutMs]);
    case Tag.ESTOP:
      return frameBytes([f.tag, f.command]);
    case Tag.CERTIFICATE:
      return frameBytes([f.tag, f.certPem, f.caPem]);
  }
}

/** A channel as HELLO and ADVERTISE carry it: 5 elements, 7 when it has a schema. */
function descriptor(c: Channel): unknown[] {
  const d: unknown[] = [c.id, c.name, c.encoding, c.schema, DELIVERY.indexOf(c.delivery)];
  if (c.schemaEncoding != null || c.schemaData != null) d.push(c.schemaEncoding ?? null, c.schemaData ?? null);
  return d;
}

export function encodeRobotFrame(f: RobotFrame): Buffer {
  switch (f.tag) {
    case Tag.HELLO:
      return frameBytes([f.tag, f.version, f.channels.map(descriptor)]);
    case Tag.ADVERTISE:
      return frameBytes([f.tag, f.channels.map(descriptor)]);
    case Tag.WITHDRAW:
      return frameBytes([f.tag, f.channels]);
    case Tag.TELEMETRY:
      return frameBytes(f.seq === undefined ? [f.tag, f.channel, f.ts, f.payload] : [f.tag, f.channel, f.ts, f.payload, f.seq]);
    case Tag.HEARTBEAT:
      return frameBytes([f.tag]);
    case Tag.STATUS:
      return frameBytes([f.tag, f.command, stageCode(f.stage), f.detail ?? null]);
    case Tag.RENEW:
      return frameBytes([f.tag, f.csr]);
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

/** Bytes of a channel's schema data (UTF-8 for text). */
export const schemaBytes = (c: Channel): number =>
  c.schemaData == null ? 0 : typeof c.schemaData === 'string' ? Buffer.byteLength(c.schemaData) : c.schemaData.byteLength;

function channelOf(v: unknown, i: number): Channel {
  if (!Array.isArray(v) || (v.length !== 5 && v.length !== 7))
    throw new RobotProtocolError(
      'VALIDATION',
      `channels[${i}]: [id, name, encoding, schema, delivery] or [id, name, encoding, schema, delivery, schemaEncoding, schemaData]`,
    );
  const [id, name, encoding, schema, delivery, schemaEncoding = null, schemaData = null] = v;
  if (!isUint(id, 65_535)) throw new RobotProtocolError('VALIDATION', `channels[${i}].id: an integer from 0 to 65535`);
  if (delivery !== 0 && delivery !== 1) throw new RobotProtocolError('VALIDATION', `channels[${i}].delivery: 0 (latest) or 1 (reliable)`);
  if (schemaData !== null && typeof schemaData !== 'string' && !(schemaData instanceof Uint8Array))
    throw new RobotProtocolError('VALIDATION', `channels[${i}].schemaData: a string, binary, or nil`);
  if (schemaData !== null && schemaEncoding === null) throw new RobotProtocolError('VALIDATION', `channels[${i}]: schemaData needs a schemaEncoding`);
  const c: Channel = {
    id,
    name: text(name, `channels[${i}].name`, NAME_MAX) as string,
    encoding: text(encoding, `channels[${i}].encoding`, NAME_MAX) as string,
    schema: text(schema, `channels[${i}].schema`, HINT_MAX, true),
    delivery: DELIVERY[delivery] as Delivery,
  };
  if (v.length === 7) {
    c.schemaEncoding = text(schemaEncoding, `channels[${i}].schemaEncoding`, NAME_MAX, true);
    c.schemaData = schemaData as string | Uint8Array | null;
    if (schemaBytes(c) > SCHEMA_MAX_BYTES) throw new RobotProtocolError('VALIDATION', `channels[${i}].schemaData: at most ${SCHEMA_MAX_BYTES} bytes`);
  }
  return c;
}

/** Channels of one HELLO or ADVERTISE: 1 (HELLO: 0) to MAX_CHANNELS, ids and names unique among them. */
function channelList(v: unknown, frame: string, min: number): Channel[] {
  if (!Array.isArray(v) || v.length < min || v.length > MAX_CHANNELS)
    throw new RobotProtocolError('VALIDATION', `${frame}: channels is an array of ${min} to ${MAX_CHANNELS}`);
  const channels = v.map(channelOf);
  const ids = new Set(channels.map((c) => c.id));
  const names = new Set(channels.map((c) => c.name));
  if (ids.size !== channels.length || names.size !== channels.length)
    throw new RobotProtocolError('VALIDATION', `${frame}: channel ids and names must be unique`);
  return checkTotals(channels, frame);
}

/** A robot's whole channel set within the bounds that hold at any time. */
function checkTotals(channels: Channel[], frame: string): Channel[] {
  if (channels.length > MAX_CHANNELS) throw new RobotProtocolError('VALIDATION', `${frame}: a robot has at most ${MAX_CHANNELS} channels at a time`);
  const total = channels.reduce((n, c) => n + schemaBytes(c), 0);
  if (total > ROBOT_SCHEMAS_MAX_BYTES)
    throw new RobotProtocolError('VALIDATION', `${frame}: the schemas of a robot's channels total at most ${ROBOT_SCHEMAS_MAX_BYTES} bytes`);
  return channels;
}

/**
 * A robot's channels after an ADVERTISE: each one replaces the channel with its id, or is added.
 * A name another id still holds, more than MAX_CHANNELS channels or more than ROBOT_SCHEMAS_MAX_BYTES
 * of schemas in all is VALIDATION, and nothing changes.
 */
export function advertised(current: ReadonlyMap<number, Channel>, add: Channel[]): Map<number, Channel> {
  const next = new Map(current);
  for (const c of add) next.set(c.id, c);
  const names = new Map<string, number>();
  for (const c of next.values()) {
    const other = names.get(c.name);
    if (other !== undefined)
      throw new RobotProtocolError('VALIDATION', `ADVERTISE: channel ${other} is already named ${JSON.stringify(c.name)}; withdraw it first`);
    names.set(c.name, c.id);
  }
  checkTotals([...next.values()], 'ADVERTISE');
  return next;
}

/** A robot's channels after a WITHDRAW; an id it does not have is VALIDATION, and nothing changes. */
export function withdrawn(current: ReadonlyMap<number, Channel>, ids: number[]): Map<number, Channel> {
  const next = new Map(current);
  for (const id of ids) if (!next.delete(id)) throw new RobotProtocolError('VALIDATION', `WITHDRAW: channel ${id} is not advertised`);
  return next;
}

/** Decodes and checks one frame body a robot sent. */
export function parseRobotFrame(body: Buffer): RobotFrame {
  const a = unpackArray(body);
  switch (a[0]) {
    case Tag.HELLO: {
      if (a.length !== 3) throw new RobotProtocolError('VALIDATION', 'HELLO: [1, version, channels]');
      if (a[1] !== ROBOT_PROTOCOL_VERSION)
        throw new RobotProtocolError('VALIDATION', `HELLO: unsupported version ${String(a[1])}; this hub speaks ${ROBOT_PROTOCOL_VERSION}`);
      return { tag: Tag.HELLO, version: a[1], channels: channelList(a[2], 'HELLO', 0) };
    }
    case Tag.ADVERTISE:
      if (a.length !== 2) throw new RobotProtocolError('VALIDATION', 'ADVERTISE: [13, channels]');
      return { tag: Tag.ADVERTISE, channels: channelList(a[1], 'ADVERTISE', 1) };
    case Tag.WITHDRAW: {
      const ids = a[1];
      if (a.length !== 2 || !Array.isArray(ids) || ids.length < 1 || ids.length > MAX_CHANNELS || !ids.every((id) => isUint(id, 65_535)))
        throw new RobotProtocolError('VALIDATION', `WITHDRAW: [14, [channelId, ...]] with 1 to ${MAX_CHANNELS} ids from 0 to 65535`);
      if (new Set(ids).size !== ids.length) throw new RobotProtocolError('VALIDATION', 'WITHDRAW: channel ids must be unique');
      return { tag: Tag.WITHDRAW, channels: ids as number[] };
    }
    case Tag.TELEMETRY:
      if (
        (a.length !== 4 && a.length !== 5) ||
        !isUint(a[1], 65_535) ||
        !isUint(a[2], Number.MAX_SAFE_INTEGER) ||
        (a.length === 5 && !isUint(a[4], Number.MAX_SAFE_INTEGER))
      ) {
        throw new RobotProtocolError(
          'VALIDATION',
          'TELEMETRY: [3, channel (0–65535), ts (ms, unsigned integer), payload] or, on a reliable channel, [3, channel, ts, payload, seq (unsigned integer)]',
        );
      }
      return a.length === 5
        ? { tag: Tag.TELEMETRY, channel: a[1], ts: a[2], payload: a[3], seq: a[4] as number }
        : { tag: Tag.TELEMETRY, channel: a[1], ts: a[2], payload: a[3] };
    case Tag.HEARTBEAT:
      return { tag: Tag.HEARTBEAT };
    case Tag.STATUS: {
      const stage = typeof a[2] === 'number' ? STAGES[a[2]] : undefined;
      if (a.length < 3 || a.length > 4 || !stage)
        throw new RobotProtocolError('VALIDATION', 'STATUS: [12, commandId, stage (1 accepted, 2 rejected, 3 completed, 4 failed), detail]');
      return { tag: Tag.STATUS, command: text(a[1], 'STATUS commandId', COMMAND_ID_MAX) as string, stage, detail: a[3] ?? null };
    }
    case Tag.RENEW:
      if (a.length !== 2 || !(a[1] instanceof Uint8Array) || a[1].length === 0 || a[1].length > MAX_CSR_BYTES)
        throw new RobotProtocolError('VALIDATION', `RENEW: [20, csr (bin: a DER PKCS#10 request of 1 to ${MAX_CSR_BYTES} bytes)]`);
      return { tag: Tag.RENEW, csr: a[1] };
    default:
      throw new RobotProtocolError('UNKNOWN_TYPE', `unknown frame type ${String(JSON.stringify(a[0])).slice(0, 40)}`);
  }
}

/** Decodes one frame body the hub sent (the robot's side: the simulator and the tests). */
export function parseHubFrame(body: Buffer): HubFrame {
  const a = unpackArray(body);
  switch (a[0]) {
    case Tag.WELCOME: {
      const welcome = { tag: Tag.WELCOME, robotId: String(a[1]), heartbeatMs: Number(a[2]) } as const;
      if (!Array.isArray(a[3])) return welcome;
      const pairs = a[3].filter((e): e is unknown[] => Array.isArray(e) && e.length === 2);
      return { ...welcome, lastStored: pairs.map(([ch, seq]) => [Number(ch), Number(seq)] as [number, number]) };
    }
    case Tag.ACK:
      return { tag: Tag.ACK, channel: Number(a[1]), seq: Number(a[2]) };
    case Tag.HEARTBEAT:
      return { tag: Tag.HEARTBEAT };
    case Tag.ERROR:
      return { tag: Tag.ERROR, code: String(a[1]), message: String(a[2]), ref: typeof a[3] === 'string' ? a[3] : null };
    case Tag.COMMAND:
      return { tag: Tag.COMMAND, command: String(a[1]), name: String(a[2]), args: a[3], timeoutMs: Number(a[4]) };
    case Tag.ESTOP:
      return { tag: Tag.ESTOP, command: String(a[1]) };
    case Tag.CERTIFICATE:
      return { tag: Tag.CERTIFICATE, certPem: String(a[1]), caPem: String(a[2]) };
    default:
      throw new RobotProtocolError('UNKNOWN_TYPE', `unknown frame type ${String(JSON.stringify(a[0])).slice(0, 40)}`);
  }
}
