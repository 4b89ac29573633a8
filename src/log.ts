// The process logger: JSON lines by default, pino-pretty when stdout is a terminal. Log calls pass
// ids and counts, never passwords, tokens or message bodies; the redact list below is the safety
// net for a field that slips through.

import { type Logger, pino } from 'pino';

export type { Logger };

const REDACT = [
  'password',
  '*.password',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'authorization',
  '*.authorization',
  'cookie',
  '*.cookie',
  'body',
  '*.body',
];

export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  const pretty = process.stdout.isTTY && level !== 'silent';
  return pino({
    level,
    base,
    redact: { paths: REDACT, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  });
}
