// The device's side of enrollment: a key pair made where the robot runs and a PKCS#10 certificate
// signing request for it (what `openssl req -new` makes), with @peculiar/x509 over Node's WebCrypto.
// The private key stays with the caller; the hub only ever sees the request.

import 'reflect-metadata';
import { createPrivateKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type KeyKind = 'P-256' | 'P-384' | 'P-521' | 'Ed25519' | 'RSA-1024' | 'RSA-2048';

export interface DeviceCsr {
  /** PKCS#8 PEM: what the robot keeps. */
  keyPem: string;
  csrPem: string;
  csrDer: Buffer;
}

function algorithm(kind: KeyKind): { gen: any; sign: any } {
  if (kind === 'Ed25519') return { gen: { name: 'Ed25519' }, sign: { name: 'Ed25519' } };
  if (kind.startsWith('RSA')) {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: Number(kind.slice(4)) };
    return { gen: alg, sign: alg };
  }
  return { gen: { name: 'ECDSA', namedCurve: kind }, sign: { name: 'ECDSA', hash: kind === 'P-256' ? 'SHA-256' : 'SHA-384' } };
}

/** A new key of `kind` and a request for it, whose subject says whatever `subject` says (the hub ignores it). */
export async function deviceCsr(kind: KeyKind = 'P-256', subject = 'CN=not-the-robot-id, O=Device Maker'): Promise<DeviceCsr> {
  const { gen, sign } = algorithm(kind);
  const keys = (await webcrypto.subtle.generateKey(gen, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys: keys as any,
    signingAlgorithm: sign,
    // Asks for what the hub must not grant: a CA certificate with a server name.
    extensions: [new x509.BasicConstraintsExtension(true, 2, true), new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'evil.example' }])],
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return {
    keyPem: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString(),
    csrPem: csr.toString('pem'),
    csrDer: Buffer.from(csr.rawData),
  };
}

/** PEM armour around DER bytes. */
export const csrPem = (der: Uint8Array): string =>
  `-----BEGIN CERTIFICATE REQUEST-----\n${(
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? []
  ).join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;

/** The same request with one bit of its signature flipped: it no longer verifies. */
export function tamperedSignature(der: Buffer): Buffer {
  const out = Buffer.from(der);
  const i = out.length - 5;
  out[i] = (out[i] as number) ^ 0x01;
  return out;
}
