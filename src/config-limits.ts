// The limits: every size, rate, count and queue a node bounds, with their settings (spec entries
// whose key starts with "limits."). config.ts resolves them with the rest.

import { type Entry, int } from './config-parse.js';

export interface Limits {
  /** Largest HTTP request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Largest chat message body, in bytes of UTF-8. */
  maxMessageBytes: number;
  /** How long after posting a sender may still edit or delete their message, s. */
  editWindowS: number;
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
  /** One-time codes mailed to one address per hour. */
  codesPerAddressPerHour: number;
  /** One-time codes asked for from one client IP per hour. */
  codesPerIpPerHour: number;
  /** Contact requests one person may send per day. */
  contactRequestsPerDay: number;
  /** How long each person's notices are kept for their devices to catch up, days. */
  noticeRetentionDays: number;
  /** Largest file one upload may hold, bytes. */
  attachmentMaxBytes: number;
  /** Bytes of files one person may store in all. */
  attachmentQuotaBytes: number;
  /** Uploads in progress on a node at once. */
  uploadsMax: number;
  /** File downloads in progress on a node at once. */
  downloadsMax: number;
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
  /** How long samples of robots' reliable channels are kept, ms. */
  robotHistoryMs: number;
  /** Samples kept per reliable channel of a robot at most. */
  robotHistoryMaxSamples: number;
  /** From accept to the end of the TLS handshake, and again to HELLO, ms. */
  robotHandshakeTimeoutMs: number;
  /** Robot connections not yet welcomed, per client IP. */
  robotMaxPendingPerIp: number;
  /** Robot connections not yet welcomed, in all. */
  robotMaxPending: number;
  /** Live room and robot actors per node. */
  maxActors: number;
}

export const limitSpec: Entry<`limits.${keyof Limits}`>[] = [
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
    key: 'limits.editWindowS',
    env: 'SB_EDIT_WINDOW_S',
    flag: 'edit-window-s',
    parse: int(1, 315_360_000),
    def: 86_400,
    doc: 'How long after posting a sender may edit or delete their own message, s (moderators delete at any time)',
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
    key: 'limits.codesPerAddressPerHour',
    env: 'SB_CODES_PER_ADDRESS_PER_HOUR',
    flag: 'codes-per-address-per-hour',
    parse: int(1, 1_000),
    def: 5,
    doc: 'One-time codes mailed to one address per hour (login codes and verifications together; then 429). Shared by the cluster through the database',
  },
  {
    key: 'limits.codesPerIpPerHour',
    env: 'SB_CODES_PER_IP_PER_HOUR',
    flag: 'codes-per-ip-per-hour',
    parse: int(1, 100_000),
    def: 20,
    doc: 'One-time codes asked for from one client IP per hour, whatever the address (then 429)',
  },
  {
    key: 'limits.contactRequestsPerDay',
    env: 'SB_CONTACT_REQUESTS_PER_DAY',
    flag: 'contact-requests-per-day',
    parse: int(1, 100_000),
    def: 100,
    doc: 'Contact requests one person may send per day, accepted or not (then 429). Shared by the cluster through the database',
  },
  {
    key: 'limits.noticeRetentionDays',
    env: 'SB_NOTICE_RETENTION_DAYS',
    flag: 'notice-retention-days',
    parse: int(1, 3_650),
    def: 30,
    doc: "How long each person's notices are kept for their devices to catch up (`feed`), days; a device further behind gets `reset`",
  },
  {
    key: 'limits.attachmentMaxBytes',
    env: 'SB_ATTACHMENT_MAX_BYTES',
    flag: 'attachment-max-bytes',
    parse: int(1, 2 ** 40),
    def: 25 * 1024 * 1024,
    doc: 'Largest file one upload (an attachment or an avatar) may hold, bytes (then 413). Stored in 256 KiB chunks: no upload or download holds a whole file in memory',
  },
  {
    key: 'limits.attachmentQuotaBytes',
    env: 'SB_ATTACHMENT_QUOTA_BYTES',
    flag: 'attachment-quota-bytes',
    parse: int(0, 2 ** 50),
    def: 1024 * 1024 * 1024,
    doc: 'Bytes of files one person may store in all, uploads in progress included (then 413 QUOTA_EXCEEDED); files go when the last message carrying them is deleted',
  },
  {
    key: 'limits.uploadsMax',
    env: 'SB_UPLOADS_MAX',
    flag: 'uploads-max',
    parse: int(1, 10_000),
    def: 32,
    doc: `Uploads in progress on a node at once (then 503 OVERLOADED); each holds at most about 512 KiB of its file in memory. One person may have 4 at once (then 429)`,
  },
  {
    key: 'limits.downloadsMax',
    env: 'SB_DOWNLOADS_MAX',
    flag: 'downloads-max',
    parse: int(1, 100_000),
    def: 128,
    doc: 'File downloads in progress on a node at once (then 503 OVERLOADED); each holds about a chunk (256 KiB) and what the socket buffers. One person may have 8 at once (then 429)',
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
    key: 'limits.robotHistoryMs',
    env: 'SB_ROBOT_HISTORY_MS',
    flag: 'robot-history-ms',
    parse: int(1_000, 31_536_000_000),
    def: 86_400_000,
    doc: "How long the numbered samples of robots' reliable channels are kept (readable over REST and replayed to a watch with `since`), ms",
  },
  {
    key: 'limits.robotHistoryMaxSamples',
    env: 'SB_ROBOT_HISTORY_MAX_SAMPLES',
    flag: 'robot-history-max-samples',
    parse: int(1, 100_000_000),
    def: 100_000,
    doc: 'Numbered samples kept per reliable channel of a robot at most; older ones go first',
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
