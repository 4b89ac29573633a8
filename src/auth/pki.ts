// The robot CA: a robot proves who it is with a client certificate whose subject CN is its id, signed
// by this CA. `initCa` makes an ECDSA P-256 CA (or the operator brings one: PEM cert + key, EC P-256/
// P-384 or RSA); private keys are written 0600 and never overwritten silently.

// @peculiar/x509 resolves its services through tsyringe, which needs a Reflect metadata polyfill
// loaded before the library itself.
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { type Config, ConfigError } from '../config.js';

type CryptoKey = webcrypto.CryptoKey;
// The library types itself against the DOM's WebCrypto; Node's is the same API under other names.
type SelfSignedParams = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0];
type SignedParams = Parameters<typeof x509.X509CertificateGenerator.create>[0];

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const DAY_MS = 86_400_000;
/** Certificates start a little in the past so a robot whose clock lags accepts them at once. */
const BACKDATE_MS = 5 * 60_000;

export interface CaFiles {
  certFile: string;
  keyFile: string;
}

/** A loaded CA: what signs robot and server certificates. */
export interface Ca {
  files: CaFiles;
  certPem: string;
  cert: X509Certificate;
  /** The same certificate as @peculiar/x509 sees it (its subject is copied into issued certs). */
  x509: x509.X509Certificate;
  signingKey: CryptoKey;
  signingAlgorithm: { name: string; hash: string };
}

export interface IssuedCert {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the certificate's DER encoding: how the store finds the certificate again. */
  fingerprint: Buffer;
  /** Hex serial number, as the certificate carries it. */
  serial: string;
  notAfter: Date;
}

/** Where `pki init` puts things by default: `<data dir>/pki/`. */
export const defaultPkiDir = (dataDir: string): string => path.join(dataDir, 'pki');
export const defaultCaFiles = (dataDir: string): CaFiles => ({
  certFile: path.join(defaultPkiDir(dataDir), 'robot-ca.crt'),
  keyFile: path.join(defaultPkiDir(dataDir), 'robot-ca.key'),
});

/** The configured robot CA files (bring your own), else the ones `pki init` makes in the data dir. */
export const robotCaFiles = (cfg: Pick<Config, 'robotCaCertFile' | 'robotCaKeyFile' | 'dataDir'>): CaFiles =>
  cfg.robotCaCertFile && cfg.robotCaKeyFile ? { certFile: cfg.robotCaCertFile, keyFile: cfg.robotCaKeyFile } : defaultCaFiles(cfg.dataDir);

/** The CA's certificate or key file does not exist: nobody has run `switchboard pki init` yet. */
export class CaMissingError extends ConfigError {
  override name = 'CaMissingError';
}

/**
 * Loads the CA at the first call and keeps it. A failure is not kept: the next call tries again, so
 * an operator who runs `pki init` after start does not have to restart the node.
 */
export function lazyCa(files: CaFiles): () => Promise<Ca> {
  let loading: Promise<Ca> | undefined;
  return () => {
    loading ??= loadCa(files).catch((e: unknown) => {
      loading = undefined;
      throw e;
    });
    return loading;
  };
}

/** `AB:CD:...`, the form `X509Certificate.fingerprint256` and `openssl x509 -fingerprint` print. */
export const formatFingerprint = (fp: Buffer): string => (fp.toString('hex').match(/../g) ?? []).join(':').toUpperCase();

/** `pki init` without --force found a robot CA: nothing was changed (the CLI exits with status 3). */
export class CaExistsError extends Error {
  override name = 'CaExistsError';
}

/**
 * Creates a self-signed robot CA (ECDSA P-256, 10 years). Refuses to replace an existing CA unless
 * `force`: every certificate the old CA issued stops being trusted.
 */
export async function initCa(files: CaFiles, opts: { force?: boolean; commonName?: string; validDays?: number } = {}): Promise<Ca> {
  if (!opts.force) {
    for (const f of [files.certFile, files.keyFile]) {
      if (await exists(f)) {
        throw new CaExistsError(`${f} already exists; pass --force to replace the robot CA (certificates it issued stop working)`);
      }
    }
  }
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    name: [{ CN: [opts.commonName ?? 'Switchboard robot CA'] }],
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + (opts.validDays ?? 3650) * DAY_MS),
    keys: keys as unknown as SelfSignedParams['keys'],
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as SelfSignedParams['signingAlgorithm'],
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as CryptoKey),
    ],
  });
  await writePemPair(files, cert.toString('pem'), await exportKeyPem(keys.privateKey));
  return loadCa(files);
}

/** Loads a CA from PEM files (made by `initCa` or brought by the operator) and checks it can sign. */
export async function loadCa(files: CaFiles): Promise<Ca> {
  const [certPem, keyPem] = await Promise.all([readPem(files.certFile, 'certificate'), readPem(files.keyFile, 'private key')]);
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new ConfigError(`SB_ROBOT_CA_CERT_FILE: ${files.certFile} is not a PEM certificate`);
  }
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new ConfigError(`SB_ROBOT_CA_KEY_FILE: ${files.keyFile} is not a PEM private key (or it is encrypted)`);
  }
  if (!cert.ca) throw new ConfigError(`SB_ROBOT_CA_CERT_FILE: ${files.certFile} is not a CA certificate (basicConstraints CA:TRUE)`);
  if (!cert.checkPrivateKey(key)) throw new ConfigError(`SB_ROBOT_CA_KEY_FILE: ${files.keyFile} does not match ${files.certFile}`);
  const { importAlg, signingAlgorithm } = algorithmFor(key, files.keyFile);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, importAlg, false, ['sign']);
  return { files, certPem, cert, x509: new x509.X509Certificate(certPem), signingKey, signingAlgorithm };
}

/**
 * A client certificate for one robot: CN = its id, clientAuth only, with a fresh P-256 key. Valid
 * from a few minutes ago for `validDays`; given `notBefore` (tests: an already expired certificate),
 * valid from then for `validDays`.
 */
export function issueRobotCert(ca: Ca, robotId: string, opts: { validDays?: number; notBefore?: Date } = {}): Promise<IssuedCert> {
  return issue(ca, {
    commonName: robotId,
    validDays: opts.validDays ?? 365,
    usage: x509.ExtendedKeyUsage.clientAuth,
    altNames: [],
    notBefore: opts.notBefore,
  });
}

/** A development server certificate for localhost, 127.0.0.1 and ::1, signed by the CA. */
export function issueServerCert(ca: Ca, opts: { validDays?: number; hostnames?: string[] } = {}): Promise<IssuedCert> {
  const hosts = opts.hostnames ?? ['localhost', '127.0.0.1', '::1'];
  return issue(ca, {
    commonName: hosts[0] ?? 'localhost',
    validDays: opts.validDays ?? 365,
    usage: x509.ExtendedKeyUsage.serverAuth,
    altNames: hosts.map((h) => ({ type: /^[\d.]+$|:/.test(h) ? 'ip' : 'dns', value: h })),
  });
}

/**
 * A client certificate for a key the robot made itself (the SubjectPublicKeyInfo of its checked
 * CSR, see csr.ts): what issueRobotCert issues, without a private key, which the hub never sees.
 */
export function issueRobotCertForKey(
  ca: Ca,
  robotId: string,
  spki: ArrayBuffer,
  opts: { validDays?: number; notBefore?: Date } = {},
): Promise<Omit<IssuedCert, 'keyPem'>> {
  return sign(ca, spki, {
    commonName: robotId,
    validDays: opts.validDays ?? 365,
    usage: x509.ExtendedKeyUsage.clientAuth,
    altNames: [],
    notBefore: opts.notBefore,
  });
}

interface IssueParams {
  commonName: string;
  validDays: number;
  usage: x509.ExtendedKeyUsage;
  altNames: { type: 'ip' | 'dns'; value: string }[];
  notBefore?: Date;
}

/** A certificate with a fresh P-256 key. */
async function issue(ca: Ca, p: IssueParams): Promise<IssuedCert> {
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await sign(ca, keys.publicKey as unknown as CryptoKey, p);
  return { ...cert, keyPem: await exportKeyPem(keys.privateKey) };
}

/** Signs a certificate for `publicKey` (a CryptoKey, or SubjectPublicKeyInfo DER) with the CA. */
async function sign(ca: Ca, publicKey: CryptoKey | ArrayBuffer, p: IssueParams): Promise<Omit<IssuedCert, 'keyPem'>> {
  const now = Date.now();
  const notBefore = p.notBefore ?? new Date(now - BACKDATE_MS);
  const start = p.notBefore?.getTime() ?? now;
  // Never past the CA's own expiry: a chain is only as valid as its shortest link.
  const notAfter = new Date(Math.min(start + p.validDays * DAY_MS, ca.x509.notAfter.getTime()));
  notAfter.setUTCMilliseconds(0); // X.509 times have whole seconds; keep the returned value exact
  const serial = newSerial();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([p.usage]),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.x509.publicKey),
  ];
  if (p.altNames.length) extensions.push(new x509.SubjectAlternativeNameExtension(p.altNames));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: [{ CN: [p.commonName] }],
    issuer: ca.x509.subjectName,
    notBefore,
    notAfter,
    publicKey,
    signingKey: ca.signingKey as unknown as CryptoKey,
    signingAlgorithm: ca.signingAlgorithm as SignedParams['signingAlgorithm'],
    extensions,
  });
  const der = Buffer.from(cert.rawData);
  return {
    certPem: cert.toString('pem'),
    fingerprint: Buffer.from(await webcrypto.subtle.digest('SHA-256', der)),
    serial: cert.serialNumber.toLowerCase(),
    notAfter,
  };
}

/**
 * Writes a certificate and its key: the key 0600, each through a temp file and a rename so a
 * reader never sees half a file and a rotated pair replaces the old one whole.
 */
export async function writePemPair(files: CaFiles, certPem: string, keyPem: string): Promise<void> {
  await mkdir(path.dirname(files.keyFile), { recursive: true, mode: 0o700 });
  await mkdir(path.dirname(files.certFile), { recursive: true, mode: 0o700 });
  await replaceFile(files.keyFile, keyPem, 0o600);
  await replaceFile(files.certFile, certPem, 0o644);
}

/** Writes a file through a temp file and a rename: a reader sees the old content or the new, never part. */
export async function replaceFile(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** 16 random bytes, high bit clear (a positive DER integer) and never a leading zero byte. */
function newSerial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 1) & 0x7f) | 0x01;
  return b.toString('hex');
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key)), format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

function algorithmFor(
  key: KeyObject,
  file: string,
): { importAlg: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams; signingAlgorithm: { name: string; hash: string } } {
  if (key.asymmetricKeyType === 'ec') {
    const curve = { prime256v1: 'P-256', secp384r1: 'P-384' }[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!curve) throw new ConfigError(`SB_ROBOT_CA_KEY_FILE: ${file}: EC keys must be on P-256 or P-384`);
    const hash = curve === 'P-384' ? 'SHA-384' : 'SHA-256';
    return { importAlg: { name: 'ECDSA', namedCurve: curve }, signingAlgorithm: { name: 'ECDSA', hash } };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { importAlg: alg, signingAlgorithm: alg };
  }
  throw new ConfigError(`SB_ROBOT_CA_KEY_FILE: ${file} holds a ${key.asymmetricKeyType} key; expected EC (P-256/P-384) or RSA`);
}

async function readPem(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CaMissingError(`no robot CA ${what} at ${file}: run \`switchboard pki init\` (or set SB_ROBOT_CA_CERT_FILE and SB_ROBOT_CA_KEY_FILE)`);
    }
    throw new ConfigError(`cannot read robot CA ${what} ${file}: ${(e as Error).message}`);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** The public half of a loaded CA key, for checks (e.g. `X509Certificate.verify`). */
export const caPublicKey = (ca: Ca): KeyObject => createPublicKey(ca.certPem);
