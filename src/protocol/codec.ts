// Frame encoding for both subprotocols. MessagePack is plain (no msgpackr records or extensions;
// millisecond timestamps as 64-bit integers, not floats), so any MessagePack library decodes it into
// integer fields; JSON carries the same maps as text.

import { Packr } from 'msgpackr';
import type { Encoding } from './frames.js';

const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, bundleStrings: false, mapsAsObjects: true, int64AsType: 'number' });

/** Millisecond timestamps exceed 32 bits; msgpackr writes such numbers as float64 unless given a BigInt. */
const TIME_FIELDS = ['ts', 'exp', 'deadline'] as const;

function withIntegerTimes<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  let out: Record<string, unknown> | undefined;
  const v = value as Record<string, unknown>;
  for (const k of TIME_FIELDS) {
    if (typeof v[k] === 'number' && Number.isSafeInteger(v[k])) {
      out ??= { ...v };
      out[k] = BigInt(v[k] as number);
    }
  }
  if (Array.isArray(v.messages)) {
    out ??= { ...v };
    out.messages = v.messages.map(withIntegerTimes);
  }
  return (out ?? value) as T;
}

export function encode(frame: unknown, encoding: Encoding): Uint8Array | string {
  return encoding === 'msgpack' ? packr.pack(withIntegerTimes(frame)) : JSON.stringify(frame);
}

/** Decodes one frame; throws on bytes that are not a single valid value of the encoding. */
export function decode(data: Uint8Array | string, encoding: Encoding): unknown {
  if (encoding === 'json') return JSON.parse(typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data));
  if (typeof data === 'string') throw new Error('expected a binary frame');
  return packr.unpack(data);
}
