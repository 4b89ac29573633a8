// The Ed25519 key that signs access tokens. Loaded from a configured PKCS#8 PEM file, or generated
// on first start into the data dir (mode 0600) and reused after. The public half is served as a
// JWKS; `kid` is the key's RFC 7638 thumbprint, so it changes exactly when the key does.

import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { ConfigError } from '../config.js';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  kid: string;
  jwks: { keys: JWK[] };
}

export async function loadSigningKey(opts: { keyFile: string | undefined; dataDir: string }): Promise<SigningKey & { generated: boolean }> {
  const file = opts.keyFile ?? path.join(opts.dataDir, 'jwt-ed25519.pem');
  let pem: string | undefined;
  try {
    pem = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || opts.keyFile) {
      throw new ConfigError(`SB_JWT_KEY_FILE: cannot read ${file}: ${(e as Error).message}`);
    }
  }
  let generated = false;
  if (pem === undefined) {
    const { privateKey } = generateKeyPairSync('ed25519');
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    // 'wx' fails if another process created the file meanwhile; then use theirs.
    try {
      await writeFile(file, pem, { mode: 0o600, flag: 'wx' });
      generated = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      pem = await readFile(file, 'utf8');
    }
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new ConfigError(`SB_JWT_KEY_FILE: ${file} is not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(`SB_JWT_KEY_FILE: ${file} holds a ${privateKey.asymmetricKeyType} key; expected Ed25519 (PKCS#8 PEM)`);
  }
  const publicKey = createPublicKey(privateKey);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, publicKey, kid, generated, jwks: { keys: [{ ...jwk, kid, alg: 'EdDSA', use: 'sig' }] } };
}
