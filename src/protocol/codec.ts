// Frame encoding for both subprotocols. MessagePack is plain (no msgpackr records or extensions;
// millisecond timestamps as 64-bit integers, not floats), so any MessagePack library decodes it into
// integer fields; JSON carries the same maps as text.

import { Packr } from 'msgpackr';
import type { Encoding } from './frames.js';

const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, bundleStrings: false, mapsAsObjects: true, int64AsType: 'number' });

/**
 * Millisecond timestamps exceed 32 bits, and msgpackr writes such numbers as float64 unless given a
 * BigInt: every integer beyond 32 bits, at any depth, goes out as int64. Objects are copied only on
 * the path to a converted value, so most frames pass through untouched.
 */
function withIntegers(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) && (value > 0xffffffff || value < -0x80000000) ? BigInt(value) : value;
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = withIntegers(value[i]);
      if (v !== value[i]) {
        out ??= value.slice();
        out[i] = v;
      }
    }
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  const o = value as Record<string, unknown>;
  for (const k in o) {
    const v = withIntegers(o[k]);
    if (v !== o[k]) {
      out ??= { ...o };
      out[k] = v;
    }
  }
  return out ?? value;
}

/** JSON has no byte strings: bytes (e.g. a robot's binary telemetry payload) go out as base64. */
function jsonBytes(this: Record<string, unknown>, k: string, v: unknown): unknown {
  // `this[k]` is the value before Buffer's own toJSON turned it into {type, data}.
  const raw = this[k];
  return raw instanceof Uint8Array ? base64(raw) : v;
}

/** Base64 without Buffer, so the SDK's JSON encoding works in browsers too. */
function base64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Plain MessagePack for any value, integers beyond 32 bits as int64. */
export const packPlain = (value: unknown): Uint8Array => packr.pack(withIntegers(value));

/** A value decoded from plain MessagePack holds only these: msgpackr turns extension types into others. */
function isPlain(v: unknown, depth: number): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return true;
  if (typeof v !== 'object' || depth > 64) return false;
  if (v instanceof Uint8Array) return true;
  if (Array.isArray(v)) return v.every((x) => isPlain(x, depth + 1));
  if (Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const k in v) if (!isPlain((v as Record<string, unknown>)[k], depth + 1)) return false;
  return true;
}

/**
 * Decodes plain MessagePack: throws on invalid bytes, and on extension types (msgpackr would decode
 * some into BigInts, Dates or class instances that JSON watchers and the audit digest cannot carry)
 * or nesting deeper than 64.
 */
export function unpackPlain(data: Uint8Array): unknown {
  const value = packr.unpack(data);
  if (!isPlain(value, 0)) throw new Error('MessagePack extension types are not accepted (plain MessagePack only), nor nesting deeper than 64');
  // msgpackr decodes invalid UTF-8 as U+FFFD: the value would be stored altered, so refuse it.
  if (!stringsAreUtf8(data)) throw new InvalidUtf8Error(value);
  return value;
}

/** Well-formed MessagePack whose strings are not all valid UTF-8; `value` is what it decoded to (for the request id). */
export class InvalidUtf8Error extends Error {
  constructor(readonly value: unknown) {
    super('MessagePack strings must be valid UTF-8');
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Whether every str in well-formed MessagePack bytes is valid UTF-8. Containers carry no payload of
 * their own (their items follow), so one linear pass over the item headers visits every string.
 */
function stringsAreUtf8(b: Uint8Array): boolean {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let i = 0;
  while (i < b.length) {
    const h = b[i++] as number;
    let str = -1;
    let skip = 0;
    if (h <= 0x9f || h >= 0xe0 || (h >= 0xc0 && h <= 0xc3))
      skip = 0; // fixint, fixmap, fixarray, nil, bool
    else if (h <= 0xbf) str = h & 0x1f;
    else if (h === 0xd9) str = view.getUint8(i++);
    else if (h === 0xda) {
      str = view.getUint16(i);
      i += 2;
    } else if (h === 0xdb) {
      str = view.getUint32(i);
      i += 4;
    } else if (h === 0xc4) skip = 1 + view.getUint8(i);
    else if (h === 0xc5) skip = 2 + view.getUint16(i);
    else if (h === 0xc6) skip = 4 + view.getUint32(i);
    else if (h === 0xc7) skip = 2 + view.getUint8(i);
    else if (h === 0xc8) skip = 3 + view.getUint16(i);
    else if (h === 0xc9) skip = 5 + view.getUint32(i);
    else if (h >= 0xd4 && h <= 0xd8) skip = 1 + (1 << (h - 0xd4));
    else if (h === 0xdc || h === 0xde) skip = 2;
    else if (h === 0xdd || h === 0xdf) skip = 4;
    else skip = [4, 8, 1, 2, 4, 8, 1, 2, 4, 8][h - 0xca] as number; // float32/64, uint8-64, int8-64
    if (str >= 0) {
      try {
        utf8.decode(b.subarray(i, i + str));
      } catch {
        return false;
      }
      i += str;
    } else i += skip;
  }
  return true;
}

export function encode(frame: unknown, encoding: Encoding): Uint8Array | string {
  return encoding === 'msgpack' ? packPlain(frame) : JSON.stringify(frame, jsonBytes);
}

/** Decodes one frame; throws on bytes that are not a single valid value of the encoding. */
export function decode(data: Uint8Array | string, encoding: Encoding): unknown {
  if (encoding === 'json') return JSON.parse(typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data));
  if (typeof data === 'string') throw new Error('expected a binary frame');
  return unpackPlain(data);
}
