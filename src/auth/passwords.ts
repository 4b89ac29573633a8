// Password hashing with argon2id. Verification of an unknown username still runs a full argon2
// verify against a dummy hash made with the same parameters, so a login's duration does not tell
// whether the account exists.

import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';

export interface Argon2Params {
  memoryKiB: number;
  timeCost: number;
}

export class Passwords {
  private dummy: Promise<string>;
  private readonly options: { type: typeof argon2.argon2id; memoryCost: number; timeCost: number; parallelism: number };

  constructor(params: Argon2Params) {
    this.options = { type: argon2.argon2id, memoryCost: params.memoryKiB, timeCost: params.timeCost, parallelism: 1 };
    this.dummy = this.hash(randomBytes(24).toString('base64'));
  }

  hash(password: string): Promise<string> {
    return argon2.hash(password, this.options);
  }

  /** Verifies against `hash`, or against the dummy hash when the user is unknown (always false). */
  async verify(hash: string | undefined, password: string): Promise<boolean> {
    if (hash === undefined) {
      await argon2.verify(await this.dummy, password);
      return false;
    }
    return argon2.verify(hash, password);
  }

  /** True when a stored hash was made with other parameters and should be replaced on login. */
  needsRehash(hash: string): boolean {
    return argon2.needsRehash(hash, this.options);
  }
}
