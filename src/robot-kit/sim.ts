// A simulated robot: publishes telemetry at a steady rate on a `pose` channel (latest) and a `log`
// channel (reliable), and answers commands (accepted at once, completed after an optional delay)
// and emergency stops. It drives a RobotClient, or anything with the same surface (the telemetry
// bench drives a WebSocket link with it). `switchboard robot-sim`, the tests and the bench use it.
// The loop is bounded: it ends at `durationMs`, on `stop()`, or when the link closes.

import type { Channel } from '../protocol/robot.js';
import type { RobotClient } from './robot-client.js';

/** What the simulator needs of a robot link; RobotClient has it. */
export type SimLink = Pick<RobotClient, 'on' | 'telemetry' | 'status' | 'closed'>;

export const POSE_CHANNEL = 1;
export const LOG_CHANNEL = 2;

/** The channels a simulated robot advertises in HELLO. */
export const SIM_CHANNELS: Channel[] = [
  { id: POSE_CHANNEL, name: 'pose', encoding: 'msgpack', schema: 'geometry_msgs/Pose2D', delivery: 'latest' },
  { id: LOG_CHANNEL, name: 'log', encoding: 'json', schema: null, delivery: 'reliable' },
];

export interface SimOptions {
  /** Pose samples per second (> 0). */
  rate: number;
  /** Stop after this long, ms; unset: until `stop()` or the link closes. */
  durationMs?: number;
  /** Delay between `accepted` and `completed` for a command, ms (default 0: both at once). */
  commandDelayMs?: number;
  /** One `log` line every this many pose samples (default: one per second of samples; 0: never). */
  logEvery?: number;
  /** The pose payload for sample `seq` (default: a point moving on a circle). */
  pose?: (seq: number) => unknown;
}

export interface SimStats {
  /** Telemetry frames written (pose + log). */
  sent: number;
  pose: number;
  log: number;
  /** Samples not sent because the loop fell more than a second behind (a stalled event loop). */
  skipped: number;
  /** Writes that found the socket's buffer full (the frame was still queued). */
  backpressured: number;
  /** Commands answered with a final stage (completed, or failed by an e-stop or the end). */
  commands: number;
  estops: number;
  /** ERROR frames from the hub (e.g. RATE_LIMITED). */
  hubErrors: number;
  lastHubError: { code: string; message: string } | undefined;
}

export type SimEnd = 'duration' | 'stopped' | 'closed';

export interface SimHandle {
  readonly stats: SimStats;
  /** Ends the loop; pending delayed commands are failed. Idempotent. */
  stop(): void;
  /** Resolves when the loop has ended, with why. */
  readonly done: Promise<SimEnd>;
}

const defaultPose = (seq: number) => {
  const a = seq / 50;
  return { seq, x: Math.round(Math.cos(a) * 1000) / 100, y: Math.round(Math.sin(a) * 1000) / 100, theta: Math.round((a % (2 * Math.PI)) * 1000) / 1000 };
};

export function simulateRobot(link: SimLink, opts: SimOptions): SimHandle {
  if (!(opts.rate > 0) || !Number.isFinite(opts.rate)) throw new RangeError('rate: a positive number of samples per second');
  const rate = opts.rate;
  const commandDelayMs = opts.commandDelayMs ?? 0;
  const logEvery = opts.logEvery ?? Math.max(1, Math.round(rate));
  const pose = opts.pose ?? defaultPose;
  const stats: SimStats = { sent: 0, pose: 0, log: 0, skipped: 0, backpressured: 0, commands: 0, estops: 0, hubErrors: 0, lastHubError: undefined };
  const delayed = new Map<string, NodeJS.Timeout>();
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  let resolveDone: (end: SimEnd) => void = () => {};
  const done = new Promise<SimEnd>((resolve) => {
    resolveDone = resolve;
  });

  const write = (ok: boolean) => {
    stats.sent++;
    if (!ok) stats.backpressured++;
  };

  const complete = (id: string, name: string) => {
    delayed.delete(id);
    link.status(id, 'completed', { ok: true, name });
    stats.commands++;
  };

  const offs = [
    link.on('command', (c) => {
      if (ended) return;
      link.status(c.command, 'accepted');
      if (commandDelayMs <= 0) return complete(c.command, c.name);
      delayed.set(
        c.command,
        setTimeout(() => complete(c.command, c.name), commandDelayMs),
      );
    }),
    link.on('estop', (id) => {
      if (ended) return;
      // Stop first: whatever was running is abandoned.
      failPending('emergency stop');
      link.status(id, 'accepted');
      link.status(id, 'completed', { stopped: true });
      stats.estops++;
    }),
    link.on('hubError', (e) => {
      stats.hubErrors++;
      stats.lastHubError = { code: e.code, message: e.message };
    }),
    link.on('close', () => end('closed')),
  ];

  function failPending(reason: string): void {
    for (const [id, t] of delayed) {
      clearTimeout(t);
      if (!link.closed) link.status(id, 'failed', reason);
      stats.commands++;
    }
    delayed.clear();
  }

  function end(why: SimEnd): void {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    if (why === 'closed') {
      for (const t of delayed.values()) clearTimeout(t);
      delayed.clear();
    } else {
      failPending('the simulator stopped');
    }
    for (const off of offs) off();
    resolveDone(why);
  }

  // Sample k is due at start + k / rate; a timer wakes for the next one and sends every due sample,
  // so timer jitter never lowers the rate. More than a second behind, the backlog is skipped.
  const start = performance.now();
  let seq = 0;
  const tick = () => {
    if (ended) return;
    if (link.closed) return end('closed');
    const elapsed = performance.now() - start;
    if (opts.durationMs !== undefined && elapsed >= opts.durationMs) return end('duration');
    const due = Math.floor((elapsed / 1000) * rate) + 1;
    if (due - seq > rate) {
      stats.skipped += due - seq - Math.ceil(rate);
      seq = due - Math.ceil(rate);
    }
    while (seq < due) {
      write(link.telemetry(POSE_CHANNEL, pose(seq)));
      stats.pose++;
      if (logEvery > 0 && seq % logEvery === 0) {
        write(link.telemetry(LOG_CHANNEL, { level: 'info', msg: `sample ${seq}` }));
        stats.log++;
      }
      seq++;
    }
    const next = Math.min(start + (seq / rate) * 1000, opts.durationMs === undefined ? Number.POSITIVE_INFINITY : start + opts.durationMs);
    timer = setTimeout(tick, Math.max(0, next - performance.now()));
  };
  tick();

  return { stats, stop: () => end('stopped'), done };
}
