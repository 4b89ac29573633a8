// The reliable uplink, one robot against the hub in its own process (part of `npm run bench --
// telemetry`; dist/ must be built, which `npm run bench` does):
//   acked     The robot numbers samples on a reliable channel as fast as the hub acknowledges them,
//             keeping at most `window` unacknowledged (its replay buffer): acknowledged samples/s.
//   baseline  The same samples without `seq` (neither stored nor acknowledged), as fast as the link
//             takes them, timed to the ACK of one numbered sample sent after them (the hub handles a
//             robot's frames in order): what storing and acknowledging cost, in the same run.
//   replay    The robot keeps sampling at `dropRate` Hz into its buffer while its link is down for
//             `seconds`, reconnects, and sends again everything above WELCOME's lastStored: time
//             from the new link's WELCOME to the ACK of the last buffered sample, and whether the
//             store then holds every seq exactly once.
// Also: a `watch` with `channels` against one without, under a heavy channel (bytes each received).

import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import type { Channel } from '../src/protocol/robot.js';
import { RobotClient } from '../src/robot-kit/robot-client.js';
import { fmt, json, startHub } from './lib.js';

const PASSWORD = 'bench-password-1';
const LOG: Channel = { id: 1, name: 'log', encoding: 'msgpack', schema: null, delivery: 'reliable' };
const CAMERA: Channel = { id: 2, name: 'camera', encoding: 'raw', schema: null, delivery: 'reliable' };

export interface UplinkOptions {
  store: 'embedded' | 'postgres';
  seconds: number;
  window: number;
  dropRate: number;
}

export interface UplinkResult {
  ackedPerS: number;
  /** Samples/s of the same link without seq (not stored, not acknowledged). */
  unackedPerS: number;
  replayMs: number;
  buffered: number;
  /** The store holds every seq once, in order. */
  exact: number;
  lightKiB: number;
  allKiB: number;
}

export async function reliableUplink({ store, seconds, window, dropRate }: UplinkOptions): Promise<UplinkResult> {
  const hub = await startHub(
    store,
    { SB_ROBOT_TELEMETRY_PER_SECOND: '1000000', SB_ROBOT_HISTORY_MAX_SAMPLES: '100000000' },
    {
      prepare: async (dataDir) => {
        await promisify(execFile)(process.execPath, [path.resolve('dist/cli.js'), 'pki', 'init'], { env: { ...process.env, SB_DATA_DIR: dataDir } });
      },
    },
  );
  try {
    const port = (await hub.waitForLine((l) => l.msg === 'robot endpoint listening (mutual TLS)', 'the robot endpoint')).port as number;
    const username = `up${Date.now().toString(36)}`;
    await json(`${hub.url}/api/v1/auth/register`, 'POST', { username, password: PASSWORD });
    const token = (await json(`${hub.url}/api/v1/auth/login`, 'POST', { username, password: PASSWORD })).accessToken as string;
    const r = await json(`${hub.url}/api/v1/robots`, 'POST', { name: 'uplink-bench' }, token);
    const ca = await readFile(path.join(hub.dataDir, 'pki', 'robot-ca.crt'), 'utf8');
    const connect = () => RobotClient.connect({ host: '127.0.0.1', port, cert: r.certificatePem, key: r.privateKeyPem, ca, channels: [LOG, CAMERA] });

    // acked: as fast as the acknowledgements allow, with at most `window` in flight.
    let robot = await connect();
    let next = 0;
    let acked = -1;
    let wake: (() => void) | undefined;
    robot.on('ack', (_ch, seq) => {
      acked = seq;
      wake?.();
    });
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      for (; next - acked - 1 < window; next++) if (!robot.reliable(LOG.id, next, { n: next })) await robot.drained();
      await new Promise<void>((res) => {
        wake = res;
      });
    }
    const ackedRate = (acked + 1) / seconds;
    while (acked < next - 1)
      await new Promise<void>((res) => {
        wake = res;
      });

    // baseline: the same samples without seq, timed to the ACK of one numbered sample after them.
    const plain = 20_000;
    const b0 = performance.now();
    const mark = next++;
    const marked = new Promise<void>((res) => robot.on('ack', (_ch, seq) => seq >= mark && res()));
    for (let i = 0; i < plain; i++) if (!robot.telemetry(LOG.id, { n: i })) await robot.drained();
    robot.reliable(LOG.id, mark, { n: 'mark' });
    await marked;
    const unackedPerS = (plain + 1) / ((performance.now() - b0) / 1000);

    // replay: the link is down for `seconds` while the robot samples into its buffer.
    robot.destroy();
    const buffer: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      buffer.push(next++);
      await new Promise((res) => setTimeout(res, 1000 / dropRate));
    }
    robot = await connect();
    const welcomed = performance.now();
    const from = (robot.lastStored.get(LOG.id) ?? -1) + 1;
    const last = next - 1;
    const done = new Promise<void>((res) => robot.on('ack', (_ch, seq) => seq >= last && res()));
    for (let seq = from; seq <= last; seq++) if (!robot.reliable(LOG.id, seq, { n: seq })) await robot.drained();
    await done;
    const replayMs = performance.now() - welcomed;
    let count = 0;
    let since = -1;
    let ordered = true;
    for (;;) {
      const page = (await json(`${hub.url}/api/v1/robots/${r.robot.id}/telemetry/log?since=${since}&limit=1000`, 'GET', undefined, token)).samples as {
        seq: number;
      }[];
      if (page.length === 0) break;
      for (const s of page) {
        if (s.seq !== since + 1) ordered = false;
        since = s.seq;
      }
      count += page.length;
    }

    // Per-channel watching: bytes received by a watcher of `log` only and by one of every channel while a 16 KiB camera channel runs.
    const wsUrl = `${hub.url.replace(/^http/, 'ws')}/ws`;
    const watcher = async (channels?: string[]) => {
      const ws = new WebSocket(wsUrl, ['sb.v1.json'], { headers: { authorization: `Bearer ${token}` } });
      let bytes = 0;
      let onFrame: (f: { t: string; data?: { end?: boolean } }) => void = () => {};
      ws.on('message', (d: Buffer) => {
        bytes += d.length;
        onFrame(JSON.parse(d.toString()));
      });
      const frame = (pred: (f: { t: string; data?: { end?: boolean } }) => boolean) =>
        new Promise<void>((res) => {
          onFrame = (f) => pred(f) && res();
        });
      await new Promise((res) => ws.once('open', res));
      const watching = frame((f) => f.t === 'watching');
      ws.send(JSON.stringify({ t: 'watch', id: 1, robot: r.robot.id, ...(channels ? { channels } : {}) }));
      await watching;
      return { ws, bytes: () => bytes, frame };
    };
    const light = await watcher(['log']);
    const all = await watcher();
    const before = [light.bytes(), all.bytes()];
    const frame = Buffer.alloc(16_384, 7);
    const ends = [light, all].map((w) => w.frame((f) => f.t === 'tm' && f.data?.end === true));
    for (let i = 0; i < 500; i++) if (!robot.telemetry(CAMERA.id, frame)) await robot.drained();
    robot.telemetry(LOG.id, { end: true });
    await Promise.all(ends);
    const result: UplinkResult = {
      ackedPerS: ackedRate,
      unackedPerS,
      replayMs,
      buffered: buffer.length,
      exact: count === last + 1 && ordered ? 1 : 0,
      lightKiB: (light.bytes() - (before[0] ?? 0)) / 1024,
      allKiB: (all.bytes() - (before[1] ?? 0)) / 1024,
    };
    light.ws.close();
    all.ws.close();
    robot.destroy();
    return result;
  } finally {
    await hub.stop();
  }
}

export const uplinkRows = (r: UplinkResult, o: UplinkOptions): string[] => [
  `reliable uplink (${o.store}), one robot: ${fmt(r.ackedPerS, 0)} acked samples/s with ${o.window} unacknowledged at most; the same link without seq (not stored) ${fmt(r.unackedPerS, 0)} samples/s: ratio ${fmt(r.ackedPerS / r.unackedPerS, 2)}`,
  `  replay after a ${o.seconds} s drop (${fmt(r.buffered, 0)} samples buffered at ${o.dropRate} Hz): ${fmt(r.replayMs, 0)} ms from WELCOME to the last ACK; stored ${r.exact === 1 ? 'each seq once, in order' : 'NOT each seq once, in order'}`,
  `  per-channel watching, 500 × 16 KiB camera samples: a watcher of log only got ${fmt(r.lightKiB, 1)} KiB, a watcher of every channel ${fmt(r.allKiB, 1)} KiB`,
];
