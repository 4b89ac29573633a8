// The enrollment commands of the CLI: `pki init`, `robot create | revoke | rotate`. Certificates are
// issued in memory, recorded in the store (robot + fingerprint in one transaction), then written as
// PEM files, the key 0600; a failure after the store commit says how to recover (rotate).

import { randomUUID } from 'node:crypto';
import path from 'node:path';
import {
  type Ca,
  type CaFiles,
  defaultPkiDir,
  formatFingerprint,
  type IssuedCert,
  initCa,
  issueRobotCert,
  issueServerCert,
  loadCa,
  robotCaFiles,
  writePemPair,
} from './auth/pki.js';
import { type Config, ConfigError } from './config.js';
import { createLogger } from './log.js';
import { Store } from './store/store.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Creates the robot CA and the robot endpoint's development server certificate in the data dir. */
export async function makePki(cfg: Config, force: boolean): Promise<{ ca: Ca; files: CaFiles; server: CaFiles }> {
  const files = robotCaFiles(cfg);
  const ca = await initCa(files, { force });
  const dir = defaultPkiDir(cfg.dataDir);
  const server = { certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key') };
  const issued = await issueServerCert(ca);
  await writePemPair(server, issued.certPem, issued.keyPem);
  return { ca, files, server };
}

export async function pkiInit(cfg: Config, force: boolean): Promise<number> {
  const { files, server } = await makePki(cfg, force);
  out(
    `robot CA certificate: ${files.certFile}`,
    `robot CA key:         ${files.keyFile} (mode 0600)`,
    `server certificate:   ${server.certFile} (development: localhost, 127.0.0.1, ::1)`,
    `server key:           ${server.keyFile} (mode 0600)`,
    `(re)start the hub to open the robot endpoint on port ${cfg.robotPort}`,
  );
  return 0;
}

export async function robotCreate(cfg: Config, owner: string | undefined, name: string | undefined, outDir: string | undefined): Promise<number> {
  if (!owner || name === undefined) throw new ConfigError('usage: switchboard robot create --owner <username> --name <name> [--out DIR]');
  const length = [...name].length;
  if (length < 1 || length > 64) throw new ConfigError('--name: 1 to 64 characters');
  const ca = await loadCa(robotCaFiles(cfg));
  return withStore(cfg, async (store) => {
    const user = await store.users.byUsername(owner);
    if (!user) throw new ConfigError(`--owner: no user named ${owner}`);
    const id = randomUUID();
    const issued = await issueRobotCert(ca, id);
    const robot = await store.robots.create({ id, name, ownerId: user.id }, issued);
    if (!robot) throw new ConfigError(`--name: ${user.username} already has a robot named ${name}`);
    const files = await writeRobotFiles(outDir, id, issued);
    out(`created robot ${robot.name} (${id}) owned by ${user.username}`, ...describe(issued, files));
    return 0;
  });
}

export async function robotRevoke(cfg: Config, robotId: string | undefined): Promise<number> {
  const id = robotIdArg(robotId, 'usage: switchboard robot revoke <robot-id>');
  return withStore(cfg, async (store) => {
    const robot = await store.robots.byId(id);
    if (!robot) throw new ConfigError(`no robot with id ${id}`);
    const n = await store.robots.revokeCertificates(id);
    out(`revoked ${n} certificate${n === 1 ? '' : 's'} of robot ${robot.name} (${id})`);
    return 0;
  });
}

export async function robotRotate(cfg: Config, robotId: string | undefined, outDir: string | undefined): Promise<number> {
  const id = robotIdArg(robotId, 'usage: switchboard robot rotate <robot-id> [--out DIR]');
  const ca = await loadCa(robotCaFiles(cfg));
  return withStore(cfg, async (store) => {
    const robot = await store.robots.byId(id);
    if (!robot) throw new ConfigError(`no robot with id ${id}`);
    const issued = await issueRobotCert(ca, id);
    const revoked = await store.robots.rotateCertificate(id, issued);
    const files = await writeRobotFiles(outDir, id, issued);
    out(`rotated robot ${robot.name} (${id}): ${revoked} old certificate${revoked === 1 ? '' : 's'} revoked`, ...describe(issued, files));
    return 0;
  });
}

function robotIdArg(raw: string | undefined, usage: string): string {
  if (!raw) throw new ConfigError(usage);
  if (!UUID.test(raw)) throw new ConfigError(`robot id: expected a UUID, got "${raw}"`);
  return raw.toLowerCase();
}

export async function writeRobotFiles(outDir: string | undefined, id: string, issued: IssuedCert): Promise<CaFiles> {
  const dir = path.resolve(outDir ?? '.');
  const files = { certFile: path.join(dir, `${id}.crt`), keyFile: path.join(dir, `${id}.key`) };
  try {
    await writePemPair(files, issued.certPem, issued.keyPem);
  } catch (e) {
    // The store already holds the certificate; only its key is lost. A rotation issues a new pair.
    throw new ConfigError(
      `robot ${id} is registered, but its files could not be written to ${dir} (${(e as Error).message}); run \`switchboard robot rotate ${id} --out DIR\``,
    );
  }
  return files;
}

function describe(issued: IssuedCert, files: CaFiles): string[] {
  return [
    `fingerprint: SHA256 ${formatFingerprint(issued.fingerprint)}`,
    `serial: ${issued.serial}`,
    `valid until: ${issued.notAfter.toISOString()}`,
    `certificate: ${files.certFile}`,
    `key: ${files.keyFile} (mode 0600)`,
  ];
}

export async function withStore<T>(cfg: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  const log = createLogger(cfg.logLevel === 'info' ? 'warn' : cfg.logLevel);
  const store = await Store.open({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, poolSize: 1, log });
  try {
    await store.migrate();
    return await fn(store);
  } finally {
    await store.close();
  }
}

function out(...lines: string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}
