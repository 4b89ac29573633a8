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
  return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : v;
}

export function encode(frame: unknown, encoding: Encoding): Uint8Array | string {
  return encoding === 'msgpack' ? packr.pack(withIntegers(frame)) : JSON.stringify(frame, jsonBytes);
}

/** Decodes one frame; throws on bytes that are not a single valid value of the encoding. */
export function decode(data: Uint8Array | string, encoding: Encoding): unknown {
  if (encoding === 'json') return JSON.parse(typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data));
  if (typeof data === 'string') throw new Error('expected a binary frame');
  return packr.unpack(data);
}
