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
export const packPlain = (value: unknown): Buffer => packr.pack(withIntegers(value));

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
  return value;
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
