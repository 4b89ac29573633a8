// Configuration is resolved once, here: CLI flag > environment variable > default. Every field is
// validated at start; a bad value stops the process with a message that names the variable and the
// accepted form. The README's configuration table lists exactly the entries of `spec` (a test
// keeps the two in step).

import path from 'node:path';

export interface Limits {
  /** Largest HTTP request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Largest chat message body, in bytes of UTF-8. */
  maxMessageBytes: number;
  /** Login attempts per client IP per minute. */
  loginPerIpPerMinute: number;
  /** Consecutive failed logins for one username from one client IP before the pair is blocked. */
  loginFailsPerUserAndIp: number;
  /** How long a username + IP pair stays blocked, seconds. */
  loginBlockS: number;
  /** Failed logins per client IP per day, whatever the username. */
  loginFailsPerIpPerDay: number;
  /** Registrations per client IP per hour. */
  registerPerIpPerHour: number;
  /** Largest WebSocket frame a client may send, bytes. */
  wsMaxFrameBytes: number;
  /** Bytes queued for one WebSocket before it is closed as a slow consumer. */
  wsMaxBackpressureBytes: number;
  /** Bytes queued across every WebSocket of the node before the furthest behind are closed. */
  wsBufferedBytesBudget: number;
  /** WebSockets one user may hold open on a node. */
  wsMaxConnectionsPerUser: number;
  /** WebSockets one client IP may hold open on a node. */
  wsMaxConnectionsPerIp: number;
  /** Rooms one WebSocket may subscribe to. */
  wsMaxSubscriptions: number;
  /** Sustained publishes per second per user on a node (REST posts and WebSocket `pub` together). */
  wsPublishPerSecond: number;
  /** Publishes a user may send at once before the rate applies. */
  wsPublishBurst: number;
  /** Sustained requests per second per WebSocket other than publishes and emergency stops. */
  wsRequestsPerSecond: number;
  /** Seconds a WebSocket may stay silent (pings count) before it is closed. */
  wsIdleTimeoutS: number;
  /** Bad frames one WebSocket may send at once before it is closed with 4101 (the budget refills). */
  wsMaxViolations: number;
  /** Time over which a spent violation budget refills completely, ms. */
  wsViolationWindowMs: number;
  /** How long a client has to send a fresh token after `reauth`, ms. */
  reauthGraceMs: number;
  /** Largest frame a robot may send, bytes. */
  robotMaxFrameBytes: number;
  /** Sustained telemetry frames per second per robot. */
  robotTelemetryPerSecond: number;
  /** Heartbeat interval of robot links, ms (3× without traffic closes the link). */
  robotHeartbeatMs: number;
  /** Commands in flight per robot. */
  robotMaxPendingCommands: number;
  /** From accept to the end of the TLS handshake, and again to HELLO, ms. */
  robotHandshakeTimeoutMs: number;
  /** Robot connections not yet welcomed, per client IP. */
  robotMaxPendingPerIp: number;
  /** Robot connections not yet welcomed, in all. */
  robotMaxPending: number;
  /** Live room and robot actors per node. */
  maxActors: number;
}

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
  limits: Limits;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Parser<T> = (raw: string, name: string) => T;

const int =
  (min: number, max: number): Parser<number> =>
  (raw, name) => {
    if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
    const n = Number(raw.trim());
    if (n < min || n > max) throw new ConfigError(`${name}: expected an integer from ${min} to ${max}, got ${n}`);
    return n;
  };

const bool: Parser<boolean> = (raw, name) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name}: expected true or false, got "${raw}"`);
};

const str: Parser<string> = (raw, name) => {
  if (raw.trim() === '') throw new ConfigError(`${name}: must not be empty`);
  return raw.trim();
};

const url =
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

const oneOf =
  <T extends string>(values: readonly T[]): Parser<T> =>
  (raw, name) => {
    const v = raw.trim() as T;
    if (!values.includes(v)) throw new ConfigError(`${name}: expected one of ${values.join(', ')}, got "${raw}"`);
    return v;
  };

const origins: Parser<string[]> = (raw, name) => {
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

type LimitKey = `limits.${keyof Limits}`;

interface Entry {
  key: Exclude<keyof Config, 'limits'> | LimitKey;
  env: string;
  flag: string;
  parse: Parser<unknown>;
  /** The default, or undefined for "unset". */
  def: unknown;
  doc: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every setting: its key in Config (dotted for limits), env variable, CLI flag, default, meaning. */
export const spec: Entry[] = [
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
    key: 'limits.maxBodyBytes',
    env: 'SB_MAX_BODY_BYTES',
    flag: 'max-body-bytes',
    parse: int(1_024, 16_777_216),
    def: 65_536,
    doc: 'Largest HTTP request body, bytes',
  },
  {
    key: 'limits.maxMessageBytes',
    env: 'SB_MAX_MESSAGE_BYTES',
    flag: 'max-message-bytes',
    parse: int(16, 1_048_576),
    def: 16_384,
    doc: 'Largest chat message body, bytes of UTF-8',
  },
  {
    key: 'limits.loginPerIpPerMinute',
    env: 'SB_LOGIN_PER_IP_PER_MINUTE',
    flag: 'login-per-ip-per-minute',
    parse: int(1, 100_000),
    def: 30,
    doc: 'Login attempts per client IP per minute',
  },
  {
    key: 'limits.loginFailsPerUserAndIp',
    env: 'SB_LOGIN_FAILS_PER_USER_IP',
    flag: 'login-fails-per-user-ip',
    parse: int(1, 100_000),
    def: 10,
    doc: 'Consecutive failed logins for one username from one client IP before that pair is blocked for SB_LOGIN_BLOCK_S (a success resets the count; other IPs are unaffected). Shared by the cluster through the database',
  },
  {
    key: 'limits.loginBlockS',
    env: 'SB_LOGIN_BLOCK_S',
    flag: 'login-block-s',
    parse: int(1, 86_400),
    def: 900,
    doc: 'How long a username + IP pair is blocked after SB_LOGIN_FAILS_PER_USER_IP failures, seconds',
  },
  {
    key: 'limits.loginFailsPerIpPerDay',
    env: 'SB_LOGIN_FAILS_PER_IP_PER_DAY',
    flag: 'login-fails-per-ip-per-day',
    parse: int(1, 1_000_000),
    def: 100,
    doc: 'Failed logins per client IP per day, whatever the username (then that IP may not log in until the day window ends). Shared by the cluster through the database',
  },
  {
    key: 'limits.wsMaxFrameBytes',
    env: 'SB_WS_MAX_FRAME_BYTES',
    flag: 'ws-max-frame-bytes',
    parse: int(1_024, 16_777_216),
    def: 65_536,
    doc: 'Largest WebSocket frame a client may send, bytes (larger: the socket is closed)',
  },
  {
    key: 'limits.wsMaxBackpressureBytes',
    env: 'SB_WS_MAX_BACKPRESSURE_BYTES',
    flag: 'ws-max-backpressure-bytes',
    parse: int(65_536, 268_435_456),
    def: 1_048_576,
    doc: 'Bytes queued for one WebSocket before it is closed as a slow consumer (it resumes on reconnect)',
  },
  {
    key: 'limits.wsBufferedBytesBudget',
    env: 'SB_WS_BUFFERED_BYTES_BUDGET',
    flag: 'ws-buffered-bytes-budget',
    parse: int(1_048_576, 68_719_476_736),
    def: 268_435_456,
    doc: 'Bytes queued across all WebSockets of a node; above it the sockets furthest behind are closed as slow consumers until it is back under',
  },
  {
    key: 'limits.wsMaxConnectionsPerUser',
    env: 'SB_WS_MAX_CONNECTIONS_PER_USER',
    flag: 'ws-max-connections-per-user',
    parse: int(1, 1_000_000),
    def: 32,
    doc: 'WebSockets one user may hold open on a node (more: the upgrade is refused with 429)',
  },
  {
    key: 'limits.wsMaxConnectionsPerIp',
    env: 'SB_WS_MAX_CONNECTIONS_PER_IP',
    flag: 'ws-max-connections-per-ip',
    parse: int(1, 1_000_000),
    def: 256,
    doc: 'WebSockets one client IP (per SB_TRUST_PROXY) may hold open on a node (more: the upgrade is refused with 429)',
  },
  {
    key: 'limits.wsMaxSubscriptions',
    env: 'SB_WS_MAX_SUBSCRIPTIONS',
    flag: 'ws-max-subscriptions',
    parse: int(1, 100_000),
    def: 200,
    doc: 'Rooms one WebSocket may subscribe to',
  },
  {
    key: 'limits.wsPublishPerSecond',
    env: 'SB_WS_PUBLISH_PER_SECOND',
    flag: 'ws-publish-per-second',
    parse: int(1, 1_000_000),
    def: 50,
    doc: 'Sustained publishes per second per user and node: REST posts and WebSocket `pub` on all of the user’s sockets share one token bucket (excess: a RATE_LIMITED nack, or 429 over REST). Per node, so a user spread over N nodes gets at most N times this',
  },
  {
    key: 'limits.wsPublishBurst',
    env: 'SB_WS_PUBLISH_BURST',
    flag: 'ws-publish-burst',
    parse: int(1, 1_000_000),
    def: 100,
    doc: 'Publishes a user may send at once (REST and WebSocket together) before the rate applies',
  },
  {
    key: 'limits.wsRequestsPerSecond',
    env: 'SB_WS_REQUESTS_PER_SECOND',
    flag: 'ws-requests-per-second',
    parse: int(1, 1_000_000),
    def: 50,
    doc: 'Sustained requests per second per WebSocket other than `pub` (its own limit) and `estop` (never refused for rate); the burst is this twice, or the subscription limit plus 10 if larger, so a reconnect can resubscribe everything',
  },
  {
    key: 'limits.wsIdleTimeoutS',
    env: 'SB_WS_IDLE_TIMEOUT_S',
    flag: 'ws-idle-timeout-s',
    parse: int(8, 3_600),
    def: 120,
    doc: 'Seconds without traffic before a WebSocket is closed (the server pings automatically)',
  },
  {
    key: 'limits.wsMaxViolations',
    env: 'SB_WS_MAX_VIOLATIONS',
    flag: 'ws-max-violations',
    parse: int(1, 10_000),
    def: 10,
    doc: 'Bad frames (error replies for unreadable, unknown or invalid frames) one WebSocket may send at once; one more closes it with 4101. The budget refills evenly over SB_WS_VIOLATION_WINDOW_MS',
  },
  {
    key: 'limits.wsViolationWindowMs',
    env: 'SB_WS_VIOLATION_WINDOW_MS',
    flag: 'ws-violation-window-ms',
    parse: int(100, 86_400_000),
    def: 60_000,
    doc: 'Time over which a spent violation budget refills completely, ms (the default: 10 bad frames a minute are tolerated indefinitely)',
  },
  {
    key: 'limits.reauthGraceMs',
    env: 'SB_REAUTH_GRACE_MS',
    flag: 'reauth-grace-ms',
    parse: int(1_000, 3_600_000),
    def: 30_000,
    doc: 'After `reauth`, how long a client has to send a fresh token before the socket closes, ms',
  },
  {
    key: 'limits.registerPerIpPerHour',
    env: 'SB_REGISTER_PER_IP_PER_HOUR',
    flag: 'register-per-ip-per-hour',
    parse: int(1, 100_000),
    def: 20,
    doc: 'Registrations per client IP per hour',
  },
  {
    key: 'limits.robotMaxFrameBytes',
    env: 'SB_ROBOT_MAX_FRAME_BYTES',
    flag: 'robot-max-frame-bytes',
    parse: int(1_024, 16_777_216),
    def: 65_536,
    doc: 'Largest frame a robot may send, bytes (larger: the link is closed)',
  },
  {
    key: 'limits.robotTelemetryPerSecond',
    env: 'SB_ROBOT_TELEMETRY_PER_SECOND',
    flag: 'robot-telemetry-per-second',
    parse: int(1, 1_000_000),
    def: 1_000,
    doc: 'Sustained telemetry frames per second per robot (burst: one second of it); excess frames are dropped with a RATE_LIMITED error frame',
  },
  {
    key: 'limits.robotHeartbeatMs',
    env: 'SB_ROBOT_HEARTBEAT_MS',
    flag: 'robot-heartbeat-ms',
    parse: int(100, 600_000),
    def: 5_000,
    doc: 'Robot link heartbeat interval, ms; a link silent for 3× this is closed',
  },
  {
    key: 'limits.robotMaxPendingCommands',
    env: 'SB_ROBOT_MAX_PENDING_COMMANDS',
    flag: 'robot-max-pending-commands',
    parse: int(1, 10_000),
    def: 64,
    doc: 'Commands in flight per robot (more get RATE_LIMITED)',
  },
  {
    key: 'limits.robotHandshakeTimeoutMs',
    env: 'SB_ROBOT_HANDSHAKE_TIMEOUT_MS',
    flag: 'robot-handshake-timeout-ms',
    parse: int(100, 600_000),
    def: 10_000,
    doc: 'Time a robot connection has for its TLS handshake, and then again for its HELLO, ms; past it the connection is closed',
  },
  {
    key: 'limits.robotMaxPendingPerIp',
    env: 'SB_ROBOT_MAX_PENDING_PER_IP',
    flag: 'robot-max-pending-per-ip',
    parse: int(1, 1_000_000),
    def: 64,
    doc: 'Robot connections from one client IP not yet welcomed (handshake, certificate check, HELLO); more are closed at accept',
  },
  {
    key: 'limits.robotMaxPending',
    env: 'SB_ROBOT_MAX_PENDING',
    flag: 'robot-max-pending',
    parse: int(1, 1_000_000),
    def: 1_024,
    doc: 'Robot connections not yet welcomed, from all clients together; more are closed at accept',
  },
  {
    key: 'limits.maxActors',
    env: 'SB_MAX_ACTORS',
    flag: 'max-actors',
    parse: int(100, 10_000_000),
    def: 100_000,
    doc: 'Live room and robot actors per node (a request that would start one more gets OVERLOADED; idle actors stop after 60 s)',
  },
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
  cfg.dataDir = path.resolve(cfg.dataDir);
  return cfg;
}
