// The enrollment commands of the CLI: `pki init`, `robot create | revoke | rotate | sign`. They use
// the CA files and the store directly (an operator on the hub's machine); an owner elsewhere uses
// the REST API. Certificates are issued in memory, recorded in the store (robot + fingerprint in one
// transaction), then written as PEM files, the key 0600; a failure after the store commit says how
// to recover (rotate). With --csr the certificate is for the key of the robot's own request, and
// no key is made or written.

import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type CheckedCsr, checkCsr, csrDerFromPem } from './auth/csr.js';
import {
  type Ca,
  type CaFiles,
  defaultPkiDir,
  formatFingerprint,
  type IssuedCert,
  initCa,
  issueRobotCert,
  issueRobotCertForKey,
  issueServerCert,
  loadCa,
  replaceFile,
  robotCaFiles,
  writePemPair,
} from './auth/pki.js';
import { type Config, ConfigError } from './config.js';
import { SbError } from './errors.js';
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

export async function robotCreate(
  cfg: Config,
  owner: string | undefined,
  name: string | undefined,
  outDir: string | undefined,
  csrFile?: string,
): Promise<number> {
  if (!owner || name === undefined) throw new ConfigError('usage: switchboard robot create --owner <username> --name <name> [--csr FILE] [--out DIR]');
  const length = [...name].length;
  if (length < 1 || length > 64) throw new ConfigError('--name: 1 to 64 characters');
  const csr = csrFile === undefined ? undefined : await readCsr(csrFile);
  const ca = await loadCa(robotCaFiles(cfg));
  return withStore(cfg, async (store) => {
    const user = await store.users.byUsername(owner);
    if (!user) throw new ConfigError(`--owner: no user named ${owner}`);
    const id = randomUUID();
    if (csr) {
      const issued = await issueRobotCertForKey(ca, id, csr.spki);
      const robot = await store.robots.create({ id, name, ownerId: user.id }, issued);
      if (!robot) throw new ConfigError(`--name: ${user.username} already has a robot named ${name}`);
      const certFile = await writeCertFile(path.join(path.resolve(outDir ?? '.'), `${id}.crt`), id, issued.certPem);
      out(`created robot ${robot.name} (${id}) owned by ${user.username}, for its own ${csr.keyType} key`, ...describeCert(issued, certFile));
      return 0;
    }
    const issued = await issueRobotCert(ca, id);
    const robot = await store.robots.create({ id, name, ownerId: user.id }, issued);
    if (!robot) throw new ConfigError(`--name: ${user.username} already has a robot named ${name}`);
    const files = await writeRobotFiles(outDir, id, issued);
    out(`created robot ${robot.name} (${id}) owned by ${user.username}`, ...describe(issued, files));
    return 0;
  });
}

/**
 * `robot sign <id> --csr FILE [--out FILE]`: a certificate for the key of the robot's own request,
 * revoking every other certificate of the robot (a rotation in which the hub never sees the key).
 */
export async function robotSign(cfg: Config, robotId: string | undefined, csrFile: string | undefined, outFile: string | undefined): Promise<number> {
  const usage = 'usage: switchboard robot sign <robot-id> --csr FILE [--out FILE]';
  const id = robotIdArg(robotId, usage);
  if (!csrFile) throw new ConfigError(usage);
  const csr = await readCsr(csrFile);
  const ca = await loadCa(robotCaFiles(cfg));
  return withStore(cfg, async (store) => {
    const robot = await store.robots.byId(id);
    if (!robot) throw new ConfigError(`no robot with id ${id}`);
    const issued = await issueRobotCertForKey(ca, id, csr.spki);
    const revoked = await store.robots.rotateCertificate(id, issued);
    const certFile = await writeCertFile(path.resolve(outFile ?? `${id}.crt`), id, issued.certPem);
    out(
      `signed robot ${robot.name} (${id})'s ${csr.keyType} key: ${revoked} old certificate${revoked === 1 ? '' : 's'} revoked`,
      ...describeCert(issued, certFile),
      `CA certificate (for the robot to trust): ${robotCaFiles(cfg).certFile}`,
    );
    return 0;
  });
}

/** Reads and checks a PEM request; what is wrong with it is a usage error naming --csr. */
async function readCsr(file: string): Promise<CheckedCsr> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`--csr: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return await checkCsr(csrDerFromPem(pem));
  } catch (e) {
    if (e instanceof SbError) throw new ConfigError(`--csr: ${file}: ${e.message.replace(/^csr: /, '')} (${e.code})`);
    throw e;
  }
}

/** Writes a certificate (public: 0644) through a temp file and a rename. */
async function writeCertFile(file: string, id: string, certPem: string): Promise<string> {
  try {
    await replaceFile(file, certPem, 0o644);
  } catch (e) {
    // The store already holds the certificate: signing the same request again replaces it.
    throw new ConfigError(
      `robot ${id}'s certificate is recorded, but ${file} could not be written (${(e as Error).message}); run \`switchboard robot sign ${id} --csr FILE --out FILE\` again`,
    );
  }
  return file;
}

function describeCert(issued: Omit<IssuedCert, 'keyPem'>, certFile: string): string[] {
  return [
    `fingerprint: SHA256 ${formatFingerprint(issued.fingerprint)}`,
    `serial: ${issued.serial}`,
    `valid until: ${issued.notAfter.toISOString()}`,
    `certificate: ${certFile}`,
  ];
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
  return [...describeCert(issued, files.certFile), `key: ${files.keyFile} (mode 0600)`];
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
