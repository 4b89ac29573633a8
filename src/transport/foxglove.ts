// A socket of the /foxglove endpoint: one robot seen through Foxglove's WebSocket protocol
// (`foxglove.websocket.v1`), so the Foxglove app can open a robot its user may watch. The robot's
// actor treats it as any watcher (it sends sb.v1 frames to `deliver`); this class turns them into
// Foxglove's: channels into `advertise`/`unadvertise`, samples of subscribed channels into binary
// message data. It is read-only: no client publishing, parameters or services.
// Invariants: a Foxglove channel id is never reused for a different channel (a robot that changes a
// channel's descriptor gets a new id), and only subscribed channels' samples are sent.

import type { AccessClaims } from '../auth/access-tokens.js';
import { encode } from '../protocol/codec.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { Channel } from '../protocol/robot.js';
import type { WebSocket } from './uws.js';
import { type Audience, type SessionLike, type UserData, WsConnection } from './ws-connection.js';

export const FOXGLOVE_SUBPROTOCOL = 'foxglove.websocket.v1';

/** Message encodings whose payloads Foxglove reads as bytes with a schema: passed through as the robot sent them. */
const BINARY_ENCODINGS = new Set(['protobuf', 'cdr', 'ros1', 'flatbuffer', 'cbor']);

/** Subscriptions a client may hold (one per channel; a robot has at most 64 channels). */
export const MAX_FOXGLOVE_SUBSCRIPTIONS = 64;

/** The session behind the socket: it watches the robot for the connection, choosing channels. */
export interface RobotWatchSession extends SessionLike {
  /** (Re)watches the robot, asking only for the named channels; the reply (`watching`) reaches `deliver`. */
  watch(channels: string[]): Promise<void>;
}

/** A robot channel as Foxglove's `advertise` lists it. */
export interface FoxgloveChannel {
  id: number;
  topic: string;
  encoding: string;
  schemaName: string;
  schema: string;
  schemaEncoding?: string;
}

/** How a robot channel reads in Foxglove (without its id): JSON unless its payloads are bytes with a schema Foxglove knows. */
export function foxgloveChannel(c: Channel): Omit<FoxgloveChannel, 'id'> {
  const topic = c.name.startsWith('/') ? c.name : `/${c.name}`;
  const data = c.schemaData ?? null;
  const schema = data === null ? '' : typeof data === 'string' ? data : Buffer.from(data).toString('base64');
  if (BINARY_ENCODINGS.has(c.encoding)) {
    return { topic, encoding: c.encoding, schemaName: c.schema ?? '', schema, ...(c.schemaEncoding ? { schemaEncoding: c.schemaEncoding } : {}) };
  }
  // MessagePack, JSON and anything else: the hub holds the decoded value and sends it as JSON.
  const jsonSchema = c.schemaEncoding === 'jsonschema' && typeof data === 'string';
  return { topic, encoding: 'json', schemaName: c.schema ?? '', schema: jsonSchema ? schema : '', ...(jsonSchema ? { schemaEncoding: 'jsonschema' } : {}) };
}

/** A sample's payload as the channel's Foxglove encoding wants it, or undefined when it cannot be (bytes expected, none sent). */
export function foxglovePayload(encoding: string, data: unknown): Uint8Array | undefined {
  if (encoding !== 'json') return data instanceof Uint8Array ? data : undefined;
  // Encoded once per sample, not per socket: every Foxglove watcher of it gets the same value object.
  const cacheable = typeof data === 'object' && data !== null;
  if (cacheable && jsonOf.has(data)) return jsonOf.get(data);
  let out: Uint8Array | undefined;
  try {
    out = Buffer.from(encode(data, 'json') as string);
  } catch {
    out = undefined; // e.g. a BigInt JSON cannot carry
  }
  if (cacheable) jsonOf.set(data, out);
  return out;
}

const jsonOf = new WeakMap<object, Uint8Array | undefined>();

/** Binary message data: opcode 1, subscription id (uint32 LE), timestamp in ns (uint64 LE), payload. */
export function messageData(subscription: number, tsMs: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(13 + payload.byteLength);
  out[0] = 1;
  out.writeUInt32LE(subscription, 1);
  out.writeBigUInt64LE(BigInt(tsMs) * 1_000_000n, 5);
  out.set(payload, 13);
  return out;
}

const isUint32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff_ffff;

interface Advertised {
  fox: FoxgloveChannel;
  name: string;
  delivery: Channel['delivery'];
  /** The descriptor it was advertised with, to tell a changed channel (new id) from the same one. */
  key: string;
}

export class FoxgloveConnection extends WsConnection {
  /** By the robot's channel id. */
  private readonly advertised = new Map<number, Advertised>();
  /** Foxglove channel id → subscription id, and back. */
  private readonly subs = new Map<number, number>();
  private readonly bySub = new Map<number, number>();
  /**
   * Channels subscribed and not yet answered, with the number of the watch that will answer them:
   * the `watching` replies come in the order of the watches, so the n-th reply sends the newest
   * sample of the channels subscribed before watch n was sent.
   */
  private readonly fresh = new Map<number, number>();
  private watchesSent = 0;
  private watchesAnswered = 0;
  private nextId = 1;
  private announced = false;
  watchSession!: RobotWatchSession;

  constructor(
    ws: WebSocket<UserData>,
    claims: AccessClaims,
    maxBackpressure: number,
    audience: Audience,
    server: { backlogged(c: WsConnection): void; slow(c: WsConnection): void },
    readonly robot: string,
  ) {
    super(ws, 'msgpack', claims, maxBackpressure, audience, server);
  }

  /** Sends serverInfo, then watches the robot; a robot the user may not watch ends the socket with a status saying so. */
  start(session: RobotWatchSession, node: string): void {
    this.watchSession = session;
    this.session = session;
    this.text({
      op: 'serverInfo',
      name: `switchboard ${node}`,
      capabilities: [],
      metadata: { robot: this.robot, node },
      sessionId: this.id,
    });
    this.rewatch();
  }

  private rewatch(): void {
    const names: string[] = [];
    for (const foxId of this.subs.keys()) {
      const ch = this.channelOf(foxId);
      if (ch !== undefined) names.push((this.advertised.get(ch) as Advertised).name);
    }
    this.watchesSent++;
    this.watchSession.watch(names).catch((e: unknown) => {
      const code = (e as { code?: string }).code;
      const message = code === 'NOT_FOUND' ? 'no such robot, or you may not watch it' : 'the hub could not watch this robot right now; reconnect shortly';
      this.status(2, message);
      this.close(code === 'NOT_FOUND' ? 1008 : 1011, message);
    });
  }

  /** The robot channel id behind a Foxglove channel id. */
  private channelOf(foxId: number): number | undefined {
    for (const [ch, a] of this.advertised) if (a.fox.id === foxId) return ch;
    return undefined;
  }

  override send(frame: ServerFrame): void {
    this.deliver(frame);
  }

  /** Topics are followed in-process (a Foxglove frame is made per socket): the server hands this socket each frame. */
  override subscribe(topic: string): void {
    if (this.closed) return;
    this.topics ??= new Set();
    this.topics.add(topic);
    this.audience.join(topic, this);
  }

  override unsubscribe(topic: string): void {
    this.topics?.delete(topic);
    this.audience.leave(topic, this);
  }

  /** One sb.v1 frame meant for a watcher, in Foxglove's terms; `key` marks a conflatable (latest) sample. */
  deliver(frame: ServerFrame, key?: string): void {
    if (this.closed) return;
    switch (frame.t) {
      case 'watching':
        this.channels(frame.channels);
        this.watchesAnswered++;
        for (const s of frame.latest) {
          const asked = this.fresh.get(s.ch);
          if (asked !== undefined && asked <= this.watchesAnswered) this.sample(s.ch, s.ts, s.data, `latest:${s.ch}`);
        }
        for (const [ch, asked] of this.fresh) if (asked <= this.watchesAnswered) this.fresh.delete(ch);
        if (!frame.online) this.status(0, 'the robot is offline');
        return;
      case 'robot':
        if (frame.kind === 'online') {
          this.channels(frame.channels ?? []);
          this.status(0, 'the robot is online');
        } else if (frame.kind === 'offline') this.status(0, 'the robot is offline');
        else {
          const why = frame.kind === 'deleted' ? 'the robot was deleted' : 'you may no longer watch this robot';
          this.status(2, why);
          this.close(1000, why);
        }
        return;
      case 'tm':
        this.sample(frame.ch, frame.ts, frame.data, key);
        return;
      case 'shutdown':
        this.status(1, 'the node is shutting down: reconnect');
        return;
      case 'channels':
        this.channels(frame.channels);
        return;
      default:
      // Leases, commands, notices and the rest are for people driving robots: not shown here.
    }
  }

  private sample(ch: number, ts: number, data: unknown, key: string | undefined): void {
    const a = this.advertised.get(ch);
    const sub = a && this.subs.get(a.fox.id);
    if (!a || sub === undefined) return;
    const payload = foxglovePayload(a.fox.encoding, data);
    if (!payload) return;
    const bytes = messageData(sub, ts, payload);
    if (key !== undefined || a.delivery === 'latest') this.offer(`tm:${ch}`, bytes);
    else this.sendBytes(bytes, true);
  }

  /** The robot's channels now: advertise what is new or changed, unadvertise what went (its subscriptions end). */
  private channels(list: Channel[]): void {
    const gone: number[] = [];
    const added: FoxgloveChannel[] = [];
    const now = new Map(list.map((c) => [c.id, c]));
    for (const [ch, a] of this.advertised) {
      const c = now.get(ch);
      if (c && descriptorKey(c) === a.key) continue;
      gone.push(a.fox.id);
      this.advertised.delete(ch);
      const sub = this.subs.get(a.fox.id);
      if (sub !== undefined) this.bySub.delete(sub);
      this.subs.delete(a.fox.id);
    }
    for (const c of list) {
      if (this.advertised.has(c.id)) continue;
      const fox = { id: this.nextId++, ...foxgloveChannel(c) };
      this.advertised.set(c.id, { fox, name: c.name, delivery: c.delivery, key: descriptorKey(c) });
      added.push(fox);
    }
    if (gone.length) this.text({ op: 'unadvertise', channelIds: gone });
    // Foxglove expects an advertise on connect even when there is nothing to advertise yet.
    if (added.length || !this.announced) this.text({ op: 'advertise', channels: added });
    this.announced = true;
  }

  /** A client message; false when it is a protocol violation (the server counts it). */
  receive(message: ArrayBuffer, isBinary: boolean): boolean {
    if (isBinary) return this.refuse('this server takes no binary messages (it declares no clientPublish or services)');
    let m: unknown;
    try {
      m = JSON.parse(Buffer.from(message).toString('utf8'));
    } catch {
      return this.refuse('not JSON');
    }
    const op = (m as { op?: unknown } | null)?.op;
    if (op === 'subscribe') return this.onSubscribe((m as { subscriptions?: unknown }).subscriptions);
    if (op === 'unsubscribe') return this.onUnsubscribe((m as { subscriptionIds?: unknown }).subscriptionIds);
    return this.refuse(`unsupported op ${JSON.stringify(String(op)).slice(0, 40)}: this server takes subscribe and unsubscribe`);
  }

  private onSubscribe(list: unknown): boolean {
    if (!Array.isArray(list) || list.length > MAX_FOXGLOVE_SUBSCRIPTIONS)
      return this.refuse(`subscribe: subscriptions is an array of at most ${MAX_FOXGLOVE_SUBSCRIPTIONS}`);
    let changed = false;
    for (const s of list as { id?: unknown; channelId?: unknown }[]) {
      if (!isUint32(s?.id) || !isUint32(s?.channelId)) return this.refuse('subscribe: each subscription is {id, channelId}, unsigned 32-bit integers');
      const ch = this.channelOf(s.channelId);
      if (ch === undefined) this.status(1, `subscribe: no channel ${s.channelId}`);
      else if (this.bySub.has(s.id)) this.status(1, `subscribe: subscription id ${s.id} is in use`);
      else if (this.subs.has(s.channelId)) this.status(1, `subscribe: channel ${s.channelId} is already subscribed`);
      else {
        this.subs.set(s.channelId, s.id);
        this.bySub.set(s.id, s.channelId);
        this.fresh.set(ch, this.watchesSent + 1); // answered by the watch sent below
        changed = true;
      }
    }
    if (changed) this.rewatch();
    return true;
  }

  private onUnsubscribe(ids: unknown): boolean {
    if (!Array.isArray(ids) || ids.length > MAX_FOXGLOVE_SUBSCRIPTIONS || !ids.every(isUint32)) {
      return this.refuse(`unsubscribe: subscriptionIds is an array of at most ${MAX_FOXGLOVE_SUBSCRIPTIONS} unsigned 32-bit integers`);
    }
    let changed = false;
    for (const id of ids) {
      const ch = this.bySub.get(id);
      if (ch === undefined) continue;
      this.bySub.delete(id);
      this.subs.delete(ch);
      changed = true;
    }
    if (changed) this.rewatch();
    return true;
  }

  private refuse(message: string): false {
    this.status(2, message);
    return false;
  }

  private status(level: 0 | 1 | 2, message: string): void {
    this.text({ op: 'status', level, message });
  }

  private text(value: object): void {
    this.sendBytes(JSON.stringify(value), false);
  }
}

const descriptorKey = (c: Channel): string => JSON.stringify(foxgloveChannel(c)) + c.delivery;
