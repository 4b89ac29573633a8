#!/usr/bin/env node
// The `switchboard` command: serve, migrate, demo, user create, pki init, robot create | revoke | rotate | sign, robot-sim. Configuration comes from flags, the
// environment and defaults (see config.ts); a bad value exits with status 2 and names the setting.

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createAccount } from './auth/auth-service.js';
import { Passwords } from './auth/passwords.js';
import { CaExistsError } from './auth/pki.js';
import { demo, demoRobotsDir } from './cli-demo.js';
import { pkiInit, robotCreate, robotRevoke, robotRotate, robotSign } from './cli-robot.js';
import { ROBOT_SIM_USAGE, robotSim } from './cli-robot-sim.js';
import { type Config, ConfigError, resolveConfig, spec } from './config.js';
import { SbError } from './errors.js';
import { startHub } from './hub.js';
import { createLogger } from './log.js';
import { Store } from './store/store.js';
import { VERSION } from './version.js';

const HELP = `switchboard ${VERSION}: a realtime hub

Usage:
  switchboard serve [--admin-password-stdin] [options]
                                         start a node (embedded store unless DATABASE_URL is set);
                                         with SB_ADMIN_USERNAME, the admin's password from stdin
  switchboard migrate [options]          apply pending database migrations and exit
  switchboard demo [--serve] [--robot-sim]
                                         fill an empty store with people, rooms, history and a robot
                                         for a first look, and print how to log in; --serve: then
                                         start the hub on it; --robot-sim: that, and run the robot's
                                         simulator beside it
  switchboard user create <username> [--admin] [--display-name NAME] [--password-stdin] [options]
                                         create an account; without --password-stdin a random
                                         password is generated and printed once
  switchboard pki init [--force]         create the robot CA and a development server certificate
                                         in <data dir>/pki (--force replaces an existing CA;
                                         without it, an existing CA exits with status 3)
  switchboard robot create --owner <username> --name <name> [--csr FILE] [--out DIR]
                                         register a robot; writes its client certificate and key
                                         (<id>.crt, <id>.key) into DIR (default: current dir);
                                         with --csr (a PEM request made on the robot), only the
                                         certificate, for the robot's own key
  switchboard robot revoke <robot-id>    revoke every certificate of the robot
  switchboard robot rotate <robot-id> [--out DIR]
                                         issue a new certificate and key, revoke the old ones
  switchboard robot sign <robot-id> --csr FILE [--out FILE]
                                         sign the robot's own request (PEM): a certificate for its
                                         key, written to --out (default <id>.crt); revokes the
                                         old ones. On a remote hub: POST /api/v1/robots/{id}/
                                         certificate with {"csr": ...} (docs/robots.md)
  switchboard robot-sim [--hub HOST:PORT] [--ca FILE] [--certs DIR] [--robots N] [--rate HZ]
                        [--duration S] [--command-delay MS]
                                         simulate robots: one per <robot-id>.crt + .key pair in
                                         --certs (default: current dir; --robots N takes the first
                                         N), connected to the robot endpoint at --hub (default
                                         127.0.0.1:8443) trusting --ca (default <data dir>/pki/
                                         robot-ca.crt); each publishes \`pose\` (latest) at --rate
                                         Hz (default 10) and a \`log\` line (reliable) per second,
                                         accepts commands and completes them after --command-delay
                                         ms (default 0), answers e-stops; runs --duration seconds
                                         or until Ctrl-C
  switchboard --help | --version

Options (each also an environment variable; flags win):
${spec.map((e) => `  --${e.flag.padEnd(26)} ${e.env.padEnd(28)} ${e.doc}`).join('\n')}
`;

async function main(argv: string[]): Promise<number> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    help: { type: 'boolean' },
    version: { type: 'boolean' },
    admin: { type: 'boolean' },
    'password-stdin': { type: 'boolean' },
    'admin-password-stdin': { type: 'boolean' },
    'display-name': { type: 'string' },
    force: { type: 'boolean' },
    owner: { type: 'string' },
    name: { type: 'string' },
    out: { type: 'string' },
    csr: { type: 'string' },
    hub: { type: 'string' },
    ca: { type: 'string' },
    certs: { type: 'string' },
    robots: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string' },
    'command-delay': { type: 'string' },
    serve: { type: 'boolean' },
    'robot-sim': { type: 'boolean' },
  };
  for (const e of spec) options[e.flag] = { type: 'string' };
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  if (values.help) return print(HELP);
  if (values.version) return print(VERSION);
  const flags: Record<string, string | undefined> = {};
  for (const e of spec) flags[e.flag] = values[e.flag] as string | undefined;
  const cfg = resolveConfig(flags);
  const [cmd, sub, name] = positionals;
  switch (cmd) {
    case 'serve':
      return serve(cfg, values['admin-password-stdin'] ? (await readStdin()).split(/\r?\n/)[0] : undefined);
    case 'migrate':
      return migrateOnly(cfg);
    case 'demo': {
      if (sub) throw new ConfigError('usage: switchboard demo [--serve] [--robot-sim]');
      const sim = Boolean(values['robot-sim']);
      const then = sim || values.serve ? { serve: true, sim } : undefined;
      const code = await demo(cfg, then);
      return code === 0 && then ? serve(cfg, undefined, sim ? demoRobotsDir(cfg) : undefined) : code;
    }
    case 'user':
      if (sub !== 'create' || !name) throw new ConfigError('usage: switchboard user create <username> [--admin] [--display-name NAME] [--password-stdin]');
      return createUser(cfg, name, Boolean(values.admin), values['display-name'] as string | undefined, Boolean(values['password-stdin']));
    case 'pki':
      if (sub !== 'init' || name) throw new ConfigError('usage: switchboard pki init [--force]');
      return pkiInit(cfg, Boolean(values.force));
    case 'robot': {
      const out = values.out as string | undefined;
      const csr = values.csr as string | undefined;
      if (sub === 'create' && !name) return robotCreate(cfg, values.owner as string | undefined, values.name as string | undefined, out, csr);
      if (sub === 'sign') return robotSign(cfg, name, csr, out);
      if (sub === 'revoke') return robotRevoke(cfg, name);
      if (sub === 'rotate') return robotRotate(cfg, name, out);
      throw new ConfigError(
        'usage: switchboard robot create --owner <username> --name <name> [--csr FILE] [--out DIR] | revoke <robot-id> | rotate <robot-id> [--out DIR] | sign <robot-id> --csr FILE [--out FILE]',
      );
    }
    case 'robot-sim': {
      if (sub) throw new ConfigError(ROBOT_SIM_USAGE);
      const v = values as Record<string, string | undefined>;
      return robotSim(cfg, {
        hub: v.hub,
        ca: v.ca,
        certs: v.certs,
        robots: v.robots,
        rate: v.rate,
        duration: v.duration,
        commandDelay: v['command-delay'],
      });
    }
    default:
      process.stderr.write(HELP);
      return 2;
  }
}

function print(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

/** Runs the hub until a signal; `simCerts`: also run the robots of those certificates (the demo's), in this process. */
async function serve(cfg: Config, adminPassword: string | undefined, simCerts?: string): Promise<number> {
  if (adminPassword !== undefined && !cfg.adminUsername) throw new ConfigError('--admin-password-stdin: set SB_ADMIN_USERNAME too');
  const hub = await startHub(cfg, undefined, adminPassword === undefined ? {} : { adminPassword });
  if (simCerts && hub.robots) {
    const host = cfg.host === '0.0.0.0' || cfg.host === '::' ? '127.0.0.1' : cfg.host;
    robotSim(cfg, { hub: `${host.includes(':') ? `[${host}]` : host}:${hub.robots.port}`, certs: simCerts }).catch((e: unknown) =>
      hub.log.error({ err: e }, 'the demo robot simulator failed'),
    );
  } else if (simCerts) hub.log.warn('the robot endpoint is off (no robot CA or server certificate): the demo robot is not simulated');
  // A safety net, not a control path: every request handler catches its own errors, but a rejected
  // promise nobody awaited must not take down every connection of the node.
  process.on('unhandledRejection', (e) => hub.log.error({ err: e }, 'unhandled promise rejection'));
  let signalled = false;
  const stop = (signal: string) => {
    if (signalled) {
      hub.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    hub.log.info({ signal }, 'signal received');
    hub.close().then(
      () => process.exit(0),
      (e) => {
        hub.log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await hub.closed();
  return 0;
}

async function migrateOnly(cfg: Config): Promise<number> {
  const log = createLogger(cfg.logLevel);
  const store = await Store.open({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, poolSize: 1, log });
  try {
    const applied = await store.migrate();
    log.info({ applied }, applied.length ? 'migrations applied' : 'schema already current');
    return 0;
  } finally {
    await store.close();
  }
}

async function createUser(cfg: Config, username: string, admin: boolean, displayName: string | undefined, fromStdin: boolean): Promise<number> {
  const log = createLogger(cfg.logLevel === 'info' ? 'warn' : cfg.logLevel);
  let password = fromStdin ? (await readStdin()).replace(/\r?\n$/, '') : randomBytes(18).toString('base64url');
  const store = await Store.open({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, poolSize: 1, log });
  try {
    await store.migrate();
    const passwords = new Passwords({ memoryKiB: cfg.argon2MemoryKiB, timeCost: cfg.argon2TimeCost });
    const user = await createAccount(store, passwords, { username, password, displayName }, admin);
    process.stdout.write(`created ${admin ? 'admin ' : ''}user ${user.username} (${user.id})\n`);
    if (!fromStdin) process.stdout.write(`password: ${password}\n`);
    password = '';
    return 0;
  } finally {
    await store.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof CaExistsError) {
      process.stderr.write(`switchboard: ${e.message}\n`);
      process.exitCode = 3;
      return;
    }
    if (e instanceof ConfigError || e instanceof SbError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`switchboard: ${(e as Error).message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`switchboard: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
