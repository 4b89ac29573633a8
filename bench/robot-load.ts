// The telemetry bench's load generator, a process of its own so the robots' TLS work never shares a
// process with the server being measured. It connects R simulated robots (src/robot-kit/sim.ts) to
//   hub  the hub's robot endpoint (RobotClient: length-prefixed MessagePack over mutual TLS),
//   tls  the bare Node TLS ingest baseline (the same client and bytes),
//   uws  the bare uWS ingest baseline (the same MessagePack bodies as binary WebSocket messages),
// prints {"msg":"connected"}, waits for a `go` line on stdin, runs the robots for the duration, then
// prints {"msg":"done", ...counts} and exits. Each pose sample carries `mono`: CLOCK_MONOTONIC in µs
// (process.hrtime), the clock every process on the machine shares, so receivers can time it.
// With `hold`, the links only stay open (HELLO, heartbeats) until that line, then close: the memory
// step. Bounded: it exits by itself if the line does not come within a minute.

import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { Emitter } from '../src/client/emitter.js';
import { encodeRobotFrame, parseHubFrame, ROBOT_PROTOCOL_VERSION, type RobotStage, Tag } from '../src/protocol/robot.js';
import { RobotClient, type RobotClientEvents } from '../src/robot-kit/robot-client.js';
import { SIM_CHANNELS, type SimHandle, type SimLink, simulateRobot } from '../src/robot-kit/sim.js';

export interface LoadConfig {
  mode: 'hub' | 'tls' | 'uws';
  host: string;
  port: number;
  /** PEM file of the CA that signed the server certificate. */
  caFile: string;
  /** A directory of <id>.crt + <id>.key pairs; the first `robots` (by name) are used. */
  certs: string;
  robots: number;
  rate: number;
  durationS: number;
  /** Connect, hold the links idle until the `go` line, then close them (no telemetry). */
  hold?: boolean;
}

const monoMicros = (): number => Number(process.hrtime.bigint() / 1000n);

const body = (frame: Buffer) => frame.subarray(4); // a WebSocket message is already framed

/** The robot protocol over a WebSocket (the uWS baseline): HELLO → WELCOME, then telemetry. */
class WsRobotLink extends Emitter<RobotClientEvents> {
  private constructor(private readonly ws: WebSocket) {
    super();
    ws.on('close', () => this.emit('close'));
  }

  static connect(url: string, o: { ca: string; cert: string; key: string }): Promise<WsRobotLink> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { ca: o.ca, cert: o.cert, key: o.key, perMessageDeflate: false });
      ws.once('error', reject);
      ws.once('open', () => {
        (ws as unknown as { _socket: { setNoDelay(v: boolean): void } })._socket.setNoDelay(true);
        ws.send(body(encodeRobotFrame({ tag: Tag.HELLO, version: ROBOT_PROTOCOL_VERSION, channels: SIM_CHANNELS })));
      });
      ws.once('message', (data: Buffer) => {
        const f = parseHubFrame(data);
        if (f.tag !== Tag.WELCOME) return reject(new Error(`expected WELCOME, got tag ${f.tag}`));
        resolve(new WsRobotLink(ws));
      });
    });
  }

  get closed(): boolean {
    return this.ws.readyState !== WebSocket.OPEN;
  }

  telemetry(channel: number, payload: unknown, ts: number = Date.now()): boolean {
    this.ws.send(body(encodeRobotFrame({ tag: Tag.TELEMETRY, channel, ts, payload })));
    return this.ws.bufferedAmount < 16_384;
  }

  status(command: string, stage: RobotStage, detail: unknown = null): boolean {
    this.ws.send(body(encodeRobotFrame({ tag: Tag.STATUS, command, stage, detail })));
    return true;
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

async function main(cfg: LoadConfig): Promise<void> {
  const out = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const ca = await readFile(cfg.caFile, 'utf8');
  const ids = (await readdir(cfg.certs))
    .filter((n) => n.endsWith('.crt'))
    .map((n) => n.slice(0, -4))
    .sort()
    .slice(0, cfg.robots);
  if (ids.length < cfg.robots) throw new Error(`only ${ids.length} certificate pairs in ${cfg.certs}`);
  const pairs = await Promise.all(
    ids.map(async (id) => ({
      cert: await readFile(path.join(cfg.certs, `${id}.crt`), 'utf8'),
      key: await readFile(path.join(cfg.certs, `${id}.key`), 'utf8'),
    })),
  );
  const t0 = performance.now();
  const links: (SimLink & { close(): Promise<void> })[] = [];
  for (let i = 0; i < pairs.length; i += 20) {
    links.push(
      ...(await Promise.all(
        pairs
          .slice(i, i + 20)
          .map((p) =>
            cfg.mode === 'uws'
              ? WsRobotLink.connect(`wss://${cfg.host}:${cfg.port}/robot`, { ca, ...p })
              : RobotClient.connect({ host: cfg.host, port: cfg.port, ca, ...p, channels: SIM_CHANNELS }),
          ),
      )),
    );
  }
  out({ msg: 'connected', robots: links.length, ms: performance.now() - t0 });

  const go = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 60_000);
    createInterface({ input: process.stdin }).once('line', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (!go) throw new Error('no `go` within 60 s');
  if (cfg.hold) {
    await Promise.all(links.map((l) => l.close()));
    return;
  }
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  // Spread the robots' phases over one sample period, as independent robots would be.
  const sims: SimHandle[] = await Promise.all(
    links.map(
      (link, i) =>
        new Promise<SimHandle>((resolve) =>
          setTimeout(
            () =>
              resolve(
                simulateRobot(link, {
                  rate: cfg.rate,
                  durationMs: cfg.durationS * 1000 - (performance.now() - started),
                  pose: (seq) => ({ seq, x: seq % 100, y: 0, theta: 0, mono: monoMicros() }),
                }),
              ),
            ((i / links.length) * 1000) / cfg.rate,
          ),
        ),
    ),
  );
  const ends = await Promise.all(sims.map((s) => s.done));
  const cpu = process.cpuUsage(cpu0);
  const sum = (k: 'sent' | 'pose' | 'log' | 'commands' | 'estops' | 'skipped' | 'backpressured' | 'hubErrors') => sims.reduce((a, s) => a + s.stats[k], 0);
  out({
    msg: 'done',
    seconds: (performance.now() - started) / 1000,
    sent: sum('sent'),
    pose: sum('pose'),
    log: sum('log'),
    commands: sum('commands'),
    estops: sum('estops'),
    skipped: sum('skipped'),
    backpressured: sum('backpressured'),
    hubErrors: sum('hubErrors'),
    lastHubError: sims.find((s) => s.stats.lastHubError)?.stats.lastHubError,
    closedEarly: ends.filter((e) => e === 'closed').length,
    cpuS: (cpu.user + cpu.system) / 1e6,
  });
  await Promise.all(links.map((l) => l.close()));
}

main(JSON.parse(process.argv[2] as string) as LoadConfig).then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`robot-load: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
