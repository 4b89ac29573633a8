// Certificate signing requests (PKCS#10) from robots that made their own key: the hub checks the
// request and signs a certificate for its public key, so the private key never leaves the device.
// Only the key is taken from a request: its subject and any extensions it asks for are ignored (the
// hub sets CN = robot id, clientAuth only). Bounded: a request is at most MAX_CSR_BYTES of DER, and
// only keys worth trusting are signed (EC P-256/P-384, Ed25519, RSA 2048–8192 bits).

// @peculiar/x509 needs the Reflect polyfill loaded before it is (pki.ts also sets its WebCrypto).
import 'reflect-metadata';
import { createPublicKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SbError } from '../errors.js';
import { MAX_CSR_BYTES, MAX_CSR_PEM_CHARS } from '../protocol/csr-limits.js';
import './pki.js';

export { MAX_CSR_BYTES, MAX_CSR_PEM_CHARS };

const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 8192;
const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384' };

/** A request whose signature checked out: the key to certify, and what it is (for logs and answers). */
export interface CheckedCsr {
  /** SubjectPublicKeyInfo, DER. */
  spki: ArrayBuffer;
  /** e.g. `EC P-256`, `RSA 2048`, `Ed25519`. */
  keyType: string;
}

const malformed = (why: string) => new SbError('CSR_MALFORMED', `csr: ${why}`, { field: 'csr' });

/** Reads a PEM request (`-----BEGIN CERTIFICATE REQUEST-----`) into its DER bytes. */
export function csrDerFromPem(pem: string): Buffer {
  if (pem.length > MAX_CSR_PEM_CHARS) throw malformed(`at most ${MAX_CSR_PEM_CHARS} characters of PEM`);
  const m = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(pem);
  if (!m) throw malformed('expected a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----), e.g. from `openssl req -new`');
  return Buffer.from((m[2] as string).replace(/\s+/g, ''), 'base64');
}

/**
 * Parses a DER request, checks that it is signed by the key it carries (proof that the requester
 * holds the private key) and that the key is of a kind we sign. Throws CSR_MALFORMED,
 * CSR_SIGNATURE_INVALID or CSR_KEY_UNSUPPORTED.
 */
export async function checkCsr(der: Uint8Array): Promise<CheckedCsr> {
  if (der.length === 0) throw malformed('empty');
  if (der.length > MAX_CSR_BYTES) throw malformed(`at most ${MAX_CSR_BYTES} bytes of DER`);
  let csr: x509.Pkcs10CertificateRequest;
  let spki: ArrayBuffer;
  try {
    csr = new x509.Pkcs10CertificateRequest(Uint8Array.from(der).buffer);
    spki = csr.publicKey.rawData;
  } catch {
    throw malformed('not a PKCS#10 certificate signing request');
  }
  const keyType = keyTypeOf(spki);
  let verified = false;
  try {
    verified = await csr.verify();
  } catch {
    verified = false; // an algorithm WebCrypto cannot check (e.g. RSA-PSS parameters): not proven
  }
  if (!verified) throw new SbError('CSR_SIGNATURE_INVALID', 'csr: its signature does not verify with the key it carries', { field: 'csr' });
  return { spki, keyType };
}

function keyTypeOf(spki: ArrayBuffer): string {
  let key: ReturnType<typeof createPublicKey>;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    throw unsupported('its public key is of a kind this hub cannot read');
  }
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (!curve) throw unsupported(`EC keys must be on P-256 or P-384, not ${key.asymmetricKeyDetails?.namedCurve ?? 'an unnamed curve'}`);
      return `EC ${curve}`;
    }
    case 'ed25519':
      return 'Ed25519';
    case 'rsa': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) throw unsupported(`RSA keys must have ${RSA_MIN_BITS} to ${RSA_MAX_BITS} bits, not ${bits}`);
      return `RSA ${bits}`;
    }
    default:
      throw unsupported(`${key.asymmetricKeyType} keys are not signed; use EC P-256/P-384, Ed25519 or RSA ≥ ${RSA_MIN_BITS}`);
  }
}

const unsupported = (why: string) => new SbError('CSR_KEY_UNSUPPORTED', `csr: ${why}`, { field: 'csr' });
