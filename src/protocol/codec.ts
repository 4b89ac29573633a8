// Frame encoding for both subprotocols. MessagePack is plain (no msgpackr records or extensions,
// timestamps as integers), so any MessagePack library decodes it; JSON carries the same maps as text.

import { Packr } from 'msgpackr';
import type { Encoding } from './frames.js';

const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, bundleStrings: false, mapsAsObjects: true, int64AsType: 'number' });

export function encode(frame: unknown, encoding: Encoding): Uint8Array | string {
  return encoding === 'msgpack' ? packr.pack(frame) : JSON.stringify(frame);
}

/** Decodes one frame; throws on bytes that are not a single valid value of the encoding. */
export function decode(data: Uint8Array | string, encoding: Encoding): unknown {
  if (encoding === 'json') return JSON.parse(typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data));
  if (typeof data === 'string') throw new Error('expected a binary frame');
  return packr.unpack(data);
}
