// A logger that keeps every line it writes, for tests that check what a hub logs (and what it must not).

import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../src/log.js';

export function capturedLog(level = 'info'): { log: Logger; lines: Record<string, any>[]; text: () => string } {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      raw.push(chunk.toString('utf8'));
      cb();
    },
  });
  const log = pino({ level }, sink) as unknown as Logger;
  return {
    log,
    text: () => raw.join(''),
    get lines() {
      return raw
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    },
  };
}
