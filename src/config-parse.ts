// Parsing configuration values: each parser takes the raw string and the name to blame, and throws
// ConfigError naming the variable and the accepted form. Shared by config.ts and config-limits.ts.

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type Parser<T> = (raw: string, name: string) => T;

export const int =
  (min: number, max: number): Parser<number> =>
  (raw, name) => {
    if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
    const n = Number(raw.trim());
    if (n < min || n > max) throw new ConfigError(`${name}: expected an integer from ${min} to ${max}, got ${n}`);
    return n;
  };

export const bool: Parser<boolean> = (raw, name) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name}: expected true or false, got "${raw}"`);
};

export const str: Parser<string> = (raw, name) => {
  if (raw.trim() === '') throw new ConfigError(`${name}: must not be empty`);
  return raw.trim();
};

export const url =
  (protocols: string[]): Parser<string> =>
  (raw, name) => {
    let u: URL;
    try {
      u = new URL(raw.trim());
    } catch {
      throw new ConfigError(`${name}: expected a URL like ${protocols[0]}//host:port/..., got an unparsable value`);
    }
    if (!protocols.includes(u.protocol)) {
      throw new ConfigError(`${name}: expected a URL with scheme ${protocols.join(' or ')}, got "${u.protocol}"`);
    }
    return raw.trim();
  };

export const oneOf =
  <T extends string>(values: readonly T[]): Parser<T> =>
  (raw, name) => {
    const v = raw.trim() as T;
    if (!values.includes(v)) throw new ConfigError(`${name}: expected one of ${values.join(', ')}, got "${raw}"`);
    return v;
  };

export const origins: Parser<string[]> = (raw, name) => {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const o of list) {
    if (o === '*') continue;
    let u: URL;
    try {
      u = new URL(o);
    } catch {
      throw new ConfigError(`${name}: expected comma-separated origins like https://app.example.com, got "${o}"`);
    }
    if (u.origin !== o) throw new ConfigError(`${name}: "${o}" is not an origin (scheme://host[:port], no path)`);
  }
  return list;
};

/** One setting: its key in Config (dotted for limits), env variable, CLI flag, default, meaning. */
export interface Entry<K extends string = string> {
  key: K;
  env: string;
  flag: string;
  parse: Parser<unknown>;
  /** The default, or undefined for "unset". */
  def: unknown;
  doc: string;
}

/** A comma-separated list of media types (type/subtype, lower case, no parameters). */
export const mediaTypes: Parser<string[]> = (raw, name) => {
  const list = raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (list.length === 0) throw new ConfigError(`${name}: must list at least one media type`);
  for (const t of list) {
    if (!/^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(t)) {
      throw new ConfigError(`${name}: expected comma-separated media types like image/png, got "${t}"`);
    }
  }
  return list;
};
