// Configuration is resolved once, here: CLI flag > environment variable > default. Every field is
// validated at start; a bad value stops the process with a message that names the variable and the
// accepted form. The README's configuration table lists exactly the entries of `spec` (a test
// keeps the two in step).

import path from 'node:path';

import { type Limits, limitSpec } from './config-limits.js';
import { bool, ConfigError, type Entry, int, mediaTypes, oneOf, origins, str, url } from './config-parse.js';

export type { Limits } from './config-limits.js';
export { ConfigError } from './config-parse.js';

export interface Config {
  host: string;
  port: number;
  databaseUrl: string | undefined;
  dataDir: string;
  dbPoolSize: number;
  natsUrl: string | undefined;
  clusterName: string;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  corsOrigins: string[];
  /** Media types an attachment may have. */
  attachmentTypes: string[];
  jwtKeyFile: string | undefined;
  robotCaCertFile: string | undefined;
  robotCaKeyFile: string | undefined;
  robotPort: number;
  robotTlsCertFile: string | undefined;
  robotTlsKeyFile: string | undefined;
  accessTokenTtlS: number;
  refreshTokenTtlS: number;
  cookieSecure: boolean;
  trustProxy: boolean;
  argon2MemoryKiB: number;
  argon2TimeCost: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  shutdownTimeoutMs: number;
  nodeId: string | undefined;
  smtpUrl: string | undefined;
  mailFrom: string;
  adminUsername: string | undefined;
  adminPasswordFile: string | undefined;
  limits: Limits;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every setting: its key in Config (dotted for limits), env variable, CLI flag, default, meaning. */
export const spec: Entry<Exclude<keyof Config, 'limits'> | `limits.${keyof Limits}`>[] = [
  { key: 'host', env: 'HOST', flag: 'host', parse: str, def: '0.0.0.0', doc: 'Interface to listen on' },
  { key: 'port', env: 'PORT', flag: 'port', parse: int(0, 65535), def: 8080, doc: 'HTTP + WebSocket port (0 picks a free one)' },
  {
    key: 'databaseUrl',
    env: 'DATABASE_URL',
    flag: 'database-url',
    parse: url(['postgres:', 'postgresql:']),
    def: undefined,
    doc: 'PostgreSQL URL; unset uses the embedded PGlite store in the data dir',
  },
  { key: 'dataDir', env: 'SB_DATA_DIR', flag: 'data-dir', parse: str, def: './data', doc: 'Directory for the embedded store and generated keys' },
  {
    key: 'dbPoolSize',
    env: 'SB_DB_POOL_SIZE',
    flag: 'db-pool-size',
    parse: int(1, 200),
    def: 10,
    doc: 'PostgreSQL connections per node (the embedded store always uses 1)',
  },
  {
    key: 'natsUrl',
    env: 'NATS_URL',
    flag: 'nats-url',
    parse: (raw, name) => {
      const one = url(['nats:', 'tls:']);
      return raw
        .split(',')
        .map((u) => one(u.trim(), name))
        .join(',');
    },
    def: undefined,
    doc: 'NATS server URL(s), comma-separated, for clustering; unset runs a single node with the in-process bus',
  },
  {
    key: 'clusterName',
    env: 'SB_CLUSTER_NAME',
    flag: 'cluster-name',
    parse: (v, name) => {
      if (!/^[a-z0-9_-]{1,32}$/.test(v)) throw new ConfigError(`${name}: 1 to 32 characters of a-z, 0-9, _ and -`);
      return v;
    },
    def: 'switchboard',
    doc: 'Name of the cluster: nodes with the same NATS and name form one hub (it prefixes every NATS subject and bucket)',
  },
  {
    key: 'tlsCertFile',
    env: 'SB_TLS_CERT_FILE',
    flag: 'tls-cert-file',
    parse: str,
    def: undefined,
    doc: 'PEM certificate chain; with SB_TLS_KEY_FILE serves HTTPS/WSS',
  },
  { key: 'tlsKeyFile', env: 'SB_TLS_KEY_FILE', flag: 'tls-key-file', parse: str, def: undefined, doc: 'PEM private key for SB_TLS_CERT_FILE' },
  {
    key: 'corsOrigins',
    env: 'SB_CORS_ORIGINS',
    flag: 'cors-origins',
    parse: origins,
    def: [],
    doc: 'Comma-separated browser origins allowed by CORS (`*` for any, without credentials)',
  },
  {
    key: 'attachmentTypes',
    env: 'SB_ATTACHMENT_TYPES',
    flag: 'attachment-types',
    parse: mediaTypes,
    def: ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain', 'text/csv', 'application/zip', 'audio/mpeg', 'video/mp4'],
    doc: 'Comma-separated media types an attachment may have (then 415). PNG, JPEG, GIF and WebP must be pictures of that type and are shown inline; anything else downloads as a file',
  },
  {
    key: 'jwtKeyFile',
    env: 'SB_JWT_KEY_FILE',
    flag: 'jwt-key-file',
    parse: str,
    def: undefined,
    doc: 'Ed25519 private key (PKCS#8 PEM) that signs access tokens; unset generates `<data dir>/jwt-ed25519.pem` on first start',
  },
  {
    key: 'robotCaCertFile',
    env: 'SB_ROBOT_CA_CERT_FILE',
    flag: 'robot-ca-cert-file',
    parse: str,
    def: undefined,
    doc: 'PEM certificate of the CA that signs robot client certificates; unset uses `<data dir>/pki/robot-ca.crt` (made by `switchboard pki init`)',
  },
  {
    key: 'robotCaKeyFile',
    env: 'SB_ROBOT_CA_KEY_FILE',
    flag: 'robot-ca-key-file',
    parse: str,
    def: undefined,
    doc: 'PEM private key of SB_ROBOT_CA_CERT_FILE (EC P-256/P-384 or RSA); unset uses `<data dir>/pki/robot-ca.key`',
  },
  {
    key: 'robotPort',
    env: 'SB_ROBOT_PORT',
    flag: 'robot-port',
    parse: int(0, 65535),
    def: 8443,
    doc: 'Port of the robot mutual-TLS endpoint (0 picks a free one); it listens once the robot CA and the server certificate exist',
  },
  {
    key: 'robotTlsCertFile',
    env: 'SB_ROBOT_TLS_CERT_FILE',
    flag: 'robot-tls-cert-file',
    parse: str,
    def: undefined,
    doc: 'PEM certificate chain the robot endpoint presents; unset uses `<data dir>/pki/server.crt` (made by `switchboard pki init`)',
  },
  {
    key: 'robotTlsKeyFile',
    env: 'SB_ROBOT_TLS_KEY_FILE',
    flag: 'robot-tls-key-file',
    parse: str,
    def: undefined,
    doc: 'PEM private key of SB_ROBOT_TLS_CERT_FILE; unset uses `<data dir>/pki/server.key`',
  },
  { key: 'accessTokenTtlS', env: 'SB_ACCESS_TOKEN_TTL_S', flag: 'access-token-ttl-s', parse: int(5, 86_400), def: 900, doc: 'Access token lifetime, seconds' },
  {
    key: 'refreshTokenTtlS',
    env: 'SB_REFRESH_TOKEN_TTL_S',
    flag: 'refresh-token-ttl-s',
    parse: int(60, 31_536_000),
    def: 2_592_000,
    doc: 'Refresh token lifetime, seconds (rotated on every use)',
  },
  {
    key: 'cookieSecure',
    env: 'SB_COOKIE_SECURE',
    flag: 'cookie-secure',
    parse: bool,
    def: true,
    doc: 'Mark auth cookies `Secure` (turn off only for plain-HTTP development on a non-localhost name)',
  },
  {
    key: 'trustProxy',
    env: 'SB_TRUST_PROXY',
    flag: 'trust-proxy',
    parse: bool,
    def: false,
    doc: 'Take the client IP from the last X-Forwarded-For entry (only behind your own reverse proxy)',
  },
  {
    key: 'argon2MemoryKiB',
    env: 'SB_ARGON2_MEMORY_KIB',
    flag: 'argon2-memory-kib',
    parse: int(8_192, 1_048_576),
    def: 19_456,
    doc: 'argon2id memory cost, KiB',
  },
  { key: 'argon2TimeCost', env: 'SB_ARGON2_TIME_COST', flag: 'argon2-time-cost', parse: int(1, 20), def: 2, doc: 'argon2id iterations' },
  { key: 'logLevel', env: 'LOG_LEVEL', flag: 'log-level', parse: oneOf(LOG_LEVELS), def: 'info', doc: `Log level: ${LOG_LEVELS.join(', ')}` },
  {
    key: 'shutdownTimeoutMs',
    env: 'SB_SHUTDOWN_TIMEOUT_MS',
    flag: 'shutdown-timeout-ms',
    parse: int(0, 600_000),
    def: 10_000,
    doc: 'How long SIGTERM waits for in-flight work before closing anyway, ms',
  },
  {
    key: 'nodeId',
    env: 'SB_NODE_ID',
    flag: 'node-id',
    parse: str,
    def: undefined,
    doc: 'Name of this node in logs and in the cluster (unique per node); unset derives one from host name and pid',
  },
  {
    key: 'adminUsername',
    env: 'SB_ADMIN_USERNAME',
    flag: 'admin-username',
    parse: str,
    def: undefined,
    doc: 'An admin account every start makes sure exists (created with the password from SB_ADMIN_PASSWORD_FILE or `serve --admin-password-stdin`; an existing account keeps its password and is made an admin). Safe when several nodes start at once',
  },
  {
    key: 'adminPasswordFile',
    env: 'SB_ADMIN_PASSWORD_FILE',
    flag: 'admin-password-file',
    parse: str,
    def: undefined,
    doc: 'File holding the password of SB_ADMIN_USERNAME (its first line), readable by the hub only',
  },
  {
    key: 'smtpUrl',
    env: 'SB_SMTP_URL',
    flag: 'smtp-url',
    parse: url(['smtp:', 'smtps:']),
    def: undefined,
    doc: 'SMTP server for one-time codes (email verification, login by code): smtp://[user:password@]host:port (STARTTLS when offered) or smtps://. Unset: email is off. Holds a credential: keep it out of shell history and logs',
  },
  {
    key: 'mailFrom',
    env: 'SB_MAIL_FROM',
    flag: 'mail-from',
    parse: str,
    def: 'Switchboard <switchboard@localhost>',
    doc: 'The From of the mail the hub sends',
  },
  ...limitSpec,
];

export const flagNames = spec.map((e) => e.flag);

/**
 * Resolve the configuration from explicit flags (already parsed, keyed by flag name), the
 * environment and the defaults. Throws ConfigError naming the first bad variable.
 */
export function resolveConfig(flags: Record<string, string | undefined> = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = { limits: {} };
  for (const e of spec) {
    const fromFlag = flags[e.flag];
    const fromEnv = env[e.env];
    let value = e.def;
    if (fromFlag !== undefined) value = e.parse(fromFlag, `--${e.flag}`);
    else if (fromEnv !== undefined && fromEnv !== '') value = e.parse(fromEnv, e.env);
    const [head, tail] = e.key.split('.') as [string, string | undefined];
    if (tail) (out[head] as Record<string, unknown>)[tail] = value;
    else out[head] = value;
  }
  const cfg = out as unknown as Config;
  if (Boolean(cfg.tlsCertFile) !== Boolean(cfg.tlsKeyFile)) {
    throw new ConfigError('SB_TLS_CERT_FILE and SB_TLS_KEY_FILE: set both to serve TLS, or neither');
  }
  if (Boolean(cfg.robotCaCertFile) !== Boolean(cfg.robotCaKeyFile)) {
    throw new ConfigError('SB_ROBOT_CA_CERT_FILE and SB_ROBOT_CA_KEY_FILE: set both to bring your own robot CA, or neither');
  }
  if (Boolean(cfg.robotTlsCertFile) !== Boolean(cfg.robotTlsKeyFile)) {
    throw new ConfigError('SB_ROBOT_TLS_CERT_FILE and SB_ROBOT_TLS_KEY_FILE: set both, or neither');
  }
  if (cfg.adminPasswordFile && !cfg.adminUsername) throw new ConfigError('SB_ADMIN_PASSWORD_FILE: set SB_ADMIN_USERNAME too, or neither');
  cfg.dataDir = path.resolve(cfg.dataDir);
  return cfg;
}
