// `switchboard robot-sim`: connects simulated robots to a hub's robot endpoint, one per certificate
// pair (`<robot-id>.crt` + `<robot-id>.key`, as `robot create --out DIR` writes them), publishes
// telemetry at a rate and answers commands and e-stops (src/robot-kit/sim.ts). Prints a line per robot
// connected and a summary every few seconds; stops at --duration or on SIGINT / SIGTERM.

import { readdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { defaultCaFiles } from './auth/pki.js';
import { type Config, ConfigError } from './config.js';
import { RobotClient } from './robot-kit/robot-client.js';
import { SIM_CHANNELS, type SimHandle, type SimStats, simulateRobot } from './robot-kit/sim.js';

export interface RobotSimArgs {
  hub?: string;
  ca?: string;
  certs?: string;
  robots?: string;
  rate?: string;
  duration?: string;
  commandDelay?: string;
}

export const ROBOT_SIM_USAGE =
  'usage: switchboard robot-sim [--hub HOST:PORT] [--ca FILE] [--certs DIR] [--robots N] [--rate HZ] [--duration S] [--command-delay MS]';

const SUMMARY_EVERY_MS = 5_000;
const CONNECT_BATCH = 20;

interface Pair {
  id: string;
  cert: string;
  key: string;
}

export function parseHub(raw: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(raw);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65_535) throw new ConfigError(`--hub: expected HOST:PORT (e.g. 127.0.0.1:8443), got "${raw}"`);
  return { host: (m[1] ?? m[2]) as string, port };
}

function positive(raw: string | undefined, flag: string, def: number | undefined, opts: { integer?: boolean; zero?: boolean } = {}): number | undefined {
  if (raw === undefined) return def;
  const n = Number(raw);
  const ok = raw.trim() !== '' && Number.isFinite(n) && (opts.zero ? n >= 0 : n > 0) && (!opts.integer || Number.isInteger(n));
  if (!ok) throw new ConfigError(`${flag}: expected ${opts.integer ? 'an integer' : 'a number'} ${opts.zero ? '≥ 0' : '> 0'}, got "${raw}"`);
  return n;
}

async function readText(file: string, flag: string, hint: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${flag}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})${hint}`);
  }
}

/** The certificate pairs in `dir`, sorted by robot id. */
async function loadPairs(dir: string): Promise<Pair[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new ConfigError(`--certs: cannot read the directory ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const files = new Set(names);
  const ids = names
    .filter((n) => n.endsWith('.crt') && files.has(`${n.slice(0, -4)}.key`))
    .map((n) => n.slice(0, -4))
    .sort();
  if (ids.length === 0) {
    throw new ConfigError(
      `--certs: no robot certificate pairs (<robot-id>.crt with <robot-id>.key) in ${dir}; \`switchboard robot create --owner USER --name NAME --out ${dir}\` writes one`,
    );
  }
  return Promise.all(
    ids.map(async (id) => ({
      id,
      cert: await readText(path.join(dir, `${id}.crt`), '--certs', ''),
      key: await readText(path.join(dir, `${id}.key`), '--certs', ''),
    })),
  );
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

function summary(head: string, stats: SimStats[], seconds: number): string {
  const sum = (k: 'sent' | 'commands' | 'estops' | 'hubErrors' | 'skipped') => stats.reduce((a, s) => a + s[k], 0);
  const sent = sum('sent');
  const extra = [sum('hubErrors') ? `, ${plural(sum('hubErrors'), 'hub error')}` : '', sum('skipped') ? `, ${sum('skipped')} samples skipped` : ''].join('');
  const perS = (sent / Math.max(seconds, 0.001)).toFixed(1);
  return `${head}: ${plural(sent, 'frame')} sent (${perS}/s), ${plural(sum('commands'), 'command')} answered, ${plural(sum('estops'), 'e-stop')}${extra}`;
}

export async function robotSim(cfg: Config, a: RobotSimArgs): Promise<number> {
  const { host, port } = parseHub(a.hub ?? '127.0.0.1:8443');
  const rate = positive(a.rate, '--rate', 10) as number;
  if (rate > 10_000) throw new ConfigError(`--rate: at most 10000 samples per second per robot, got "${a.rate}"`);
  const durationS = positive(a.duration, '--duration', undefined);
  const commandDelayMs = positive(a.commandDelay, '--command-delay', 0, { integer: true, zero: true }) as number;
  const wanted = positive(a.robots, '--robots', undefined, { integer: true });
  const dir = path.resolve(a.certs ?? '.');
  let pairs = await loadPairs(dir);
  if (wanted !== undefined) {
    if (wanted > pairs.length) throw new ConfigError(`--robots: ${wanted} asked for, but ${dir} holds only ${plural(pairs.length, 'certificate pair')}`);
    pairs = pairs.slice(0, wanted);
  }
  const caFile = path.resolve(a.ca ?? defaultCaFiles(cfg.dataDir).certFile);
  const ca = await readText(caFile, '--ca', a.ca ? '' : '; run `switchboard pki init` on the hub, or pass --ca with the CA that signed its server certificate');
  const servername = isIP(host) ? 'localhost' : host;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);

  // Ctrl-C during the connects ends the run too: the robots connected so far are closed.
  let stopping = false;
  const sims: { id: string; client: RobotClient; sim: SimHandle }[] = [];
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      err(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    for (const s of sims) s.sim.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const t0 = performance.now();
  let online = 0;
  let connected = 0;
  let summaryTimer: NodeJS.Timeout | undefined;
  try {
    out(`connecting ${plural(pairs.length, 'robot')} to ${host}:${port} (${rate} Hz each)`);
    for (let i = 0; i < pairs.length && !stopping; i += CONNECT_BATCH) {
      await Promise.all(
        pairs.slice(i, i + CONNECT_BATCH).map(async (p) => {
          let client: RobotClient;
          try {
            client = await RobotClient.connect({ host, port, servername, cert: p.cert, key: p.key, ca, channels: SIM_CHANNELS });
          } catch (e) {
            err(`robot ${p.id}: not connected: ${(e as { code?: string }).code ?? 'ERROR'}: ${(e as Error).message}`);
            return;
          }
          if (stopping) {
            await client.close();
            return;
          }
          online++;
          connected++;
          const sim = simulateRobot(client, { rate, commandDelayMs, durationMs: durationS === undefined ? undefined : durationS * 1000 });
          sims.push({ id: client.robotId, client, sim });
          out(`robot ${client.robotId} connected (${connected}/${pairs.length})`);
          sim.done.then((why) => {
            online--;
            if (why === 'closed' && !stopping) {
              const e = client.lastError;
              err(`robot ${client.robotId} disconnected${e ? `: ${e.code}: ${e.message}` : ''}`);
            }
          });
        }),
      );
    }
    if (sims.length === 0) {
      if (stopping) return 0;
      err('no robot connected');
      return 1;
    }
    const stats = () => sims.map((s) => s.sim.stats);
    summaryTimer = setInterval(() => {
      const seconds = (performance.now() - t0) / 1000;
      out(summary(`[${seconds.toFixed(1)} s] ${online}/${pairs.length} robots online`, stats(), seconds));
    }, SUMMARY_EVERY_MS);
    const ends = await Promise.all(sims.map((s) => s.sim.done));
    clearInterval(summaryTimer);
    await Promise.all(sims.map((s) => s.client.close()));
    const seconds = (performance.now() - t0) / 1000;
    out(summary(`stopped after ${seconds.toFixed(1)} s, ${plural(sims.length, 'robot')}`, stats(), seconds));
    if (ends.every((e) => e === 'closed')) {
      err('every robot link closed');
      return 1;
    }
    return 0;
  } finally {
    clearInterval(summaryTimer);
    for (const s of sims) s.client.destroy();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
