// The composition root of one node: opens the store (migrating it), loads the signing key, builds
// the services and the HTTP app, and listens. `close()` runs the shutdown in a fixed order under a
// deadline: stop accepting, finish in-flight requests, close the store. It is idempotent.

import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RobotActor, type RobotMsg, type RobotReplies, type RobotReply } from './actors/robot.js';
import { RobotSession } from './actors/robot-session.js';
import { RobotWatch } from './actors/robot-watch.js';
import { RobotsHere } from './actors/robots-here.js';
import { MAX_REPLAY, RoomActor, type RoomMsg, type RoomReplies, type RoomReply } from './actors/room.js';
import { ActorSystem, systemClock } from './actors/runtime.js';
import { Session, type SessionDeps } from './actors/session.js';
import { ApiKeysService } from './auth/api-keys.js';
import { AuthService, ensureAdmin } from './auth/auth-service.js';
import { EmailAuth } from './auth/email-auth.js';
import { loadSigningKey } from './auth/keys.js';
import { SmtpMailer } from './auth/mailer.js';
import { defaultPkiDir, lazyCa, robotCaFiles } from './auth/pki.js';
import { AttachmentsService } from './chat/attachments-service.js';
import { ContactsService } from './chat/contacts-service.js';
import { isStreamFrame, NoticesService } from './chat/notices-service.js';
import { PublishBudget } from './chat/publish-budget.js';
import { type RoomGateway, RoomsService } from './chat/rooms-service.js';
import { ServerService } from './chat/server-service.js';
import { WebhooksService } from './chat/webhooks-service.js';
import { ClusterQuestion, isIdList, onlineOf } from './cluster/ask.js';
import type { Bus } from './cluster/bus.js';
import { MemoryBus } from './cluster/bus-memory.js';
import { NatsBus } from './cluster/bus-nats.js';
import { type JoinStatus, joinCluster } from './cluster/join.js';
import type { Membership } from './cluster/membership.js';
import { MessageNotices } from './cluster/message-notices.js';
import { clusterNames, type NatsLink } from './cluster/nats.js';
import { PeopleNews } from './cluster/people-news.js';
import type { Presence } from './cluster/presence.js';
import { MemoryPresence } from './cluster/presence-memory.js';
import { NatsPresence } from './cluster/presence-nats.js';
import { LocalRobotCluster } from './cluster/robots-local.js';
import type { NatsRobotCluster, RobotChange } from './cluster/robots-nats.js';
import { type Config, ConfigError } from './config.js';
import { ValidationError } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { HubMetrics } from './metrics.js';
import type { ServerFrame } from './protocol/frames.js';
import { isNodeFigures } from './protocol/node-figures.js';
import { readiness } from './readiness.js';
import { type RobotGateway, RobotsService } from './robots/robots-service.js';
import type { Unnumbered } from './store/notices.js';
import { Store } from './store/store.js';
import { HttpRouter } from './transport/http.js';
import { openApiDocument } from './transport/openapi.js';
import { robotAuthenticator } from './transport/robot-auth.js';
import { RobotListener } from './transport/robot-tls.js';
import { adminRoutes } from './transport/routes-admin.js';
import { attachmentRoutes } from './transport/routes-attachments.js';
import { authRoutes } from './transport/routes-auth.js';
import { chatRoutes } from './transport/routes-chat.js';
import { messageRoutes } from './transport/routes-messages.js';
import { moderationRoutes } from './transport/routes-moderation.js';
import { noticeRoutes } from './transport/routes-notices.js';
import { opsRoutes } from './transport/routes-ops.js';
import { peopleRoutes } from './transport/routes-people.js';
import { robotRoutes } from './transport/routes-robots.js';
import { serverRoutes } from './transport/routes-server.js';
import { webhookRoutes } from './transport/routes-webhooks.js';
import { listenStandby, type Standby } from './transport/standby.js';
import { listenExclusive, type us_listen_socket, uWS } from './transport/uws.js';
import { WsServer } from './transport/ws.js';
import { VERSION } from './version.js';

export interface Hub {
  readonly nodeId: string;
  readonly port: number;
  readonly url: string;
  readonly store: Store;
  readonly auth: AuthService;
  readonly log: Logger;
  readonly router: HttpRouter;
  readonly ws: WsServer;
  readonly actors: ActorSystem;
  /** Cluster membership, when NATS_URL is set. */
  readonly membership: Membership | undefined;
  /** The robot mTLS endpoint; undefined while the robot CA or server certificate is missing. */
  readonly robots: RobotListener | undefined;
  /** Idempotent graceful shutdown. */
  close(): Promise<void>;
  /** Resolves once the hub has shut down. */
  closed(): Promise<void>;
}

const PRUNE_EVERY_MS = 3_600_000;
/** Hours an upload no message carries (or one a crash cut short) is kept before the sweep deletes it. */
const UNUSED_UPLOAD_HOURS = 24;

/**
 * The robot endpoint's PEM material: its server certificate and key, and the robot CA certificate.
 * Undefined (the endpoint stays off) when the defaults `pki init` makes are missing; a file named
 * in the configuration must exist.
 */
async function robotTlsMaterial(cfg: Config, log: Logger): Promise<{ cert: string; key: string; ca: string } | undefined> {
  const dir = defaultPkiDir(cfg.dataDir);
  const files = {
    cert: cfg.robotTlsCertFile ?? path.join(dir, 'server.crt'),
    key: cfg.robotTlsKeyFile ?? path.join(dir, 'server.key'),
    ca: robotCaFiles(cfg).certFile,
  };
  const explicit = Boolean(cfg.robotTlsCertFile || cfg.robotCaCertFile);
  try {
    const [cert, key, ca] = await Promise.all([readFile(files.cert, 'utf8'), readFile(files.key, 'utf8'), readFile(files.ca, 'utf8')]);
    return { cert, key, ca };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' && !explicit) {
      log.info({ pkiDir: dir }, 'robot endpoint off: no robot CA or server certificate yet (run `switchboard pki init`, then restart)');
      return undefined;
    }
    throw new ConfigError(`robot endpoint: cannot read ${err.path ?? 'its certificate files'} (${err.code ?? err.message})`);
  }
}

/** uWS reports an unreadable certificate only as "App construction failed": check first, by name. */
function checkReadable(file: string | undefined, name: string): void {
  if (file === undefined) return;
  try {
    accessSync(file, constants.R_OK);
  } catch (e) {
    throw new ConfigError(`${name}: cannot read ${file} (${(e as NodeJS.ErrnoException).code})`);
  }
}

/** The first line of SB_ADMIN_PASSWORD_FILE. */
async function adminPasswordFrom(cfg: Config): Promise<string> {
  if (!cfg.adminPasswordFile) throw new ConfigError('SB_ADMIN_USERNAME: give its password in SB_ADMIN_PASSWORD_FILE or with `serve --admin-password-stdin`');
  try {
    return (await readFile(cfg.adminPasswordFile, 'utf8')).split(/\r?\n/)[0] ?? '';
  } catch (e) {
    throw new ConfigError(`SB_ADMIN_PASSWORD_FILE: cannot read ${cfg.adminPasswordFile} (${(e as NodeJS.ErrnoException).code})`);
  }
}

/** How long a draining node of a cluster waits for its leased robots to reconnect elsewhere. */
const ROBOT_DRAIN_MS = 5_000;

export async function startHub(cfg: Config, log?: Logger, opts: { adminPassword?: string } = {}): Promise<Hub> {
  const nodeId = cfg.nodeId ?? `${os.hostname()}-${process.pid}`;
  const root = (log ?? createLogger(cfg.logLevel)).child({ node: nodeId });
  checkReadable(cfg.tlsCertFile, 'SB_TLS_CERT_FILE');
  checkReadable(cfg.tlsKeyFile, 'SB_TLS_KEY_FILE');
  const store = await Store.open({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, poolSize: cfg.dbPoolSize, log: root });
  let listenSocket: us_listen_socket | undefined;
  let nats: NatsLink | undefined;
  let membership: Membership | undefined;
  /** The stand-in holding the port while the node joins its cluster. */
  let standby: Standby | undefined;
  /** What a start that fails half-way must undo, besides the store (in reverse order). */
  const undo: (() => Promise<unknown>)[] = [];
  try {
    const applied = await store.migrate();
    if (applied.length) root.info({ applied }, 'migrations applied');
    const key = await loadSigningKey({ keyFile: cfg.jwtKeyFile, dataDir: cfg.dataDir });
    if (key.generated) root.info({ kid: key.kid }, 'generated a new JWT signing key in the data dir');
    const auth = new AuthService(store, key, cfg, root.child({ component: 'auth' }));
    if (cfg.adminUsername) {
      const password = async () => opts.adminPassword ?? (await adminPasswordFrom(cfg));
      const made = await ensureAdmin(store, auth.passwords, cfg.adminUsername, password).catch((e: unknown) => {
        throw e instanceof ValidationError ? new ConfigError(`SB_ADMIN_USERNAME (${e.message})`) : e;
      });
      root.info({ username: cfg.adminUsername, made }, made === 'present' ? 'admin account present' : `admin account ${made}`);
    }
    const mailer = cfg.smtpUrl ? new SmtpMailer(cfg.smtpUrl, cfg.mailFrom) : undefined;
    if (mailer) undo.push(async () => mailer.close());
    const emailAuth = new EmailAuth(store, auth, key, mailer, root.child({ component: 'email' }));
    root.info({ email: mailer ? 'on' : 'off (no SB_SMTP_URL)' }, 'email verification and login by code');
    const verify = (t: string) => auth.verifyPrincipal(t);
    const L = cfg.limits;

    // Realtime: room actors sequence and commit to the store, announce through the Bus and fan out
    // through the WebSocket server. With NATS the Bus carries each committed batch, and Presence who
    // is present and typing, to the other nodes of the cluster.
    const names = clusterNames(cfg.clusterName);
    const newApp = () => (cfg.tlsCertFile ? uWS.SSLApp({ cert_file_name: cfg.tlsCertFile, key_file_name: cfg.tlsKeyFile as string }) : uWS.App());
    const portTaken = () => new ConfigError(`PORT: cannot listen on ${cfg.host}:${cfg.port} (in use by another process, or not permitted)`);
    const actors = new ActorSystem(root.child({ component: 'actors' }), { maxActors: L.maxActors });
    const robotChangeMsg = (what: RobotChange): RobotMsg => ({
      type: what === 'access' ? 'accessChanged' : what === 'certificates' ? 'certificatesChanged' : 'deleted',
    });
    let port = cfg.port;
    const scheme = cfg.tlsCertFile ? 'https' : 'http';
    const urlOf = (p: number) => `${scheme}://${cfg.host === '0.0.0.0' ? '127.0.0.1' : cfg.host}:${p}`;
    let robotCluster: NatsRobotCluster | undefined;
    if (cfg.natsUrl) {
      // A node never exits because NATS or JetStream is not ready yet: it holds its port with a
      // stand-in whose /readyz says what it waits for, and keeps trying.
      const joining: JoinStatus = { reason: 'connecting to NATS' };
      standby = await listenStandby(newApp(), cfg.host, cfg.port, () => joining.reason, root);
      if (!standby) throw portTaken();
      port = standby.port;
      root.info({ url: urlOf(port), port }, 'joining the cluster; /readyz says what it waits for');
      const joined = await joinCluster({
        natsUrl: cfg.natsUrl,
        nodeId,
        names,
        url: urlOf(port),
        robots: {
          alive: (node) => node === nodeId || (membership?.alive(node) ?? false),
          // Only a live robot actor holds state to update (a new one reads it at start); this may run
          // while the node is still joining, before the robot actors are registered.
          changed: (id, what) => {
            if (actors.live('robot').includes(id)) actors.ref<RobotMsg>('robot', id).tell(robotChangeMsg(what));
          },
        },
        status: joining,
        log: root,
      });
      ({ nats, robotCluster, membership } = joined);
      undo.push(() => joined.robotCluster.close());
      undo.push(() => joined.membership.leave());
    }
    const natsBus = nats && new NatsBus(nats.nc, names, root.child({ component: 'bus' }), nodeId);
    const presence: Presence = nats ? new NatsPresence(nats.nc, names, root.child({ component: 'presence' }), nodeId) : new MemoryPresence();
    const natsLink = nats;
    const metrics: HubMetrics = new HubMetrics({
      wsConnections: () => ws.connections,
      robotLinks: () => robotListener?.connections ?? 0,
      actors: () => {
        const m = actors.metrics();
        return { actors: m.actors, mailboxMax: m.mailboxDepth.max, mailboxTotal: m.mailboxDepth.total, handled: m.handled, failed: m.failed };
      },
      cluster: () => natsLink && { natsUp: natsLink.up, jetstreamUp: membership?.jetstreamUp ?? false, nodes: membership?.nodes().length ?? 0 },
      commits: () => store.messages.commitStats,
      storeUp: () => store.isUp(),
    });
    // Every batch a node commits is also digested for the live message notices of every node's people.
    const messageNotices = new MessageNotices(
      store,
      (userId, frame) => ws.toUser(userId, frame),
      root.child({ component: 'notices' }),
      nats && { nc: nats.nc, subject: names.notices },
    );
    undo.push(async () => messageNotices.close());
    // Webhook deliveries leave from the outbox every commit writes to: a commit here wakes them.
    const webhooks = new WebhooksService(store, root.child({ component: 'webhooks' }));
    const roomBus: Bus = natsBus ?? new MemoryBus();
    const bus: Bus = {
      announce(roomId, batch) {
        roomBus.announce(roomId, batch);
        messageNotices.announce(roomId, batch);
        webhooks.wake();
      },
      listen: (roomId, listener) => roomBus.listen(roomId, listener),
      deleted: (roomId) => roomBus.deleted(roomId),
      close: () => roomBus.close(),
    };
    undo.push(() => bus.close());
    undo.push(() => presence.close());
    nats?.onReconnect(() => {
      natsBus?.reconnected();
      robotCluster?.reconnected();
      // Grant and certificate changes announced while this node was away were missed: re-read them.
      for (const id of actors.live('robot')) {
        tellRobot(id, { type: 'accessChanged' });
        tellRobot(id, { type: 'certificatesChanged' });
      }
    });
    // One budget per user for REST posts and WebSocket publishes alike (per node: see the module).
    const publishBudget = new PublishBudget(L.wsPublishPerSecond, L.wsPublishBurst);
    undo.push(() => actors.stopAll(1_000));
    const ws = new WsServer({
      log: root.child({ component: 'ws' }),
      nodeId,
      maxFrameBytes: L.wsMaxFrameBytes,
      maxBackpressure: L.wsMaxBackpressureBytes,
      bufferedBudget: L.wsBufferedBytesBudget,
      idleTimeoutS: L.wsIdleTimeoutS,
      corsOrigins: cfg.corsOrigins,
      maxViolations: L.wsMaxViolations,
      violationWindowMs: L.wsViolationWindowMs,
      limits: {
        maxMessageBytes: L.maxMessageBytes,
        maxSubscriptions: L.wsMaxSubscriptions,
        publishPerSecond: L.wsPublishPerSecond,
        publishBurst: L.wsPublishBurst,
        maxConnectionsPerUser: L.wsMaxConnectionsPerUser,
        maxConnectionsPerIp: L.wsMaxConnectionsPerIp,
        requestsPerSecond: L.wsRequestsPerSecond,
        reauthGraceMs: L.reauthGraceMs,
        maxResumeMessages: MAX_REPLAY,
      },
      trustProxy: cfg.trustProxy,
      verifyAccess: verify,
      onDeliveries: (n) => metrics.deliveries.inc(n),
      observe: metrics.ws,
      createSession: (conn, claims) => new Session(conn, claims, sessionDeps),
      watchRobot: (conn, claims, robot) => new RobotWatch(conn, claims, robot, { robot: robotRef, clock: systemClock }),
    });
    const localRobots = new LocalRobotCluster(nodeId);
    const robotsHere = new RobotsHere();
    actors.register<RobotMsg, RobotReply, RobotReplies>(
      'robot',
      (id, ctx) =>
        new RobotActor(id, ctx, {
          store,
          fanout: ws,
          presence: {
            online: (robotId) => {
              robotsHere.presence.online(robotId);
              webhooks.robot(robotId, true);
            },
            offline: (robotId) => {
              robotsHere.presence.offline(robotId);
              webhooks.robot(robotId, false);
            },
          },
          maxPendingCommands: L.robotMaxPendingCommands,
          history: { ms: L.robotHistoryMs, maxSamples: L.robotHistoryMaxSamples },
          cluster: robotCluster ?? localRobots,
          leaseHeld: robotsHere.leaseHeld,
        }),
    );
    const robotRef = (id: string) => actors.ref<RobotMsg, RobotReply, RobotReplies>('robot', id);
    const tellRobot = (id: string, msg: RobotMsg) => {
      if (!robotRef(id).tell(msg)) root.warn({ robot: id, type: msg.type }, 'robot mailbox full; message dropped');
    };
    actors.register<RoomMsg, RoomReply, RoomReplies>(
      'room',
      (id, ctx) => new RoomActor(id, ctx, { store, bus, presence, fanout: ws, observeCommit: metrics.observeCommit }),
    );
    const roomRef = (id: string) => actors.ref<RoomMsg, RoomReply, RoomReplies>('room', id);
    const tell = (id: string, msg: RoomMsg) => {
      if (!roomRef(id).tell(msg)) root.warn({ room: id, type: msg.type }, 'room mailbox full; notification dropped');
    };
    const roomGateway: RoomGateway = {
      async publish(roomId, sender, post) {
        return (await roomRef(roomId).ask({ type: 'publish', sender, ...post })).pending;
      },
      // Every node's actor of the room hears it through the Bus, in seq order with the messages.
      timeline: (event) => bus.announce(event.roomId, [event]),
      tell: (userId, frame) => tellPerson(userId, frame),
      // This node's actor is told in its mailbox, the others' through the Bus (the store, not this
      // notice, is what refuses a publish to a deleted room).
      deleted: (roomId) => {
        tell(roomId, { type: 'deleted' });
        bus.deleted(roomId);
      },
    };
    // Ended sessions close their sockets on every node; contact news reaches a person's sockets
    // wherever they are; a deleted account's rooms and robots hear of it.
    const news = new PeopleNews(
      (item) => {
        if (item.kind === 'ended') ws.endSessions(item);
        else if (item.kind === 'enabled') ws.accountEnabled(item.userId);
        else if (item.kind === 'disconnect') ws.disconnectUser(item.userId);
        else if (item.kind === 'frame') {
          ws.toUser(item.userId, item.frame);
          if (isStreamFrame(item.frame)) messageNotices.personal(item.userId, item.frame);
        } else if (actors.live('room').includes(item.roomId)) tell(item.roomId, { type: 'blocked', blocked: item.blocked });
      },
      root.child({ component: 'people' }),
      nats && { nc: nats.nc, subject: names.people },
    );
    undo.push(async () => news.close());
    // A person's own stream: `read`, `contact` and `notice` frames are numbered and stored first.
    const notices = new NoticesService(
      store,
      { tell: (userId, frame) => news.announce({ kind: 'frame', userId, frame }) },
      root.child({ component: 'notices' }),
    );
    const tellPerson = (userId: string, frame: ServerFrame | Unnumbered): void => {
      if (isStreamFrame(frame as ServerFrame)) void notices.post(userId, frame as Unnumbered);
      else news.announce({ kind: 'frame', userId, frame: frame as ServerFrame });
    };
    const contacts = new ContactsService(
      store,
      {
        tell: (userId, frame) => tellPerson(userId, frame),
        directBlocked: (roomId, blocked) => news.announce({ kind: 'direct', roomId, blocked }),
      },
      store.rateLimits.limiter('contact_requests', L.contactRequestsPerDay, 86_400),
    );
    const attachments = new AttachmentsService(store, {
      maxBytes: L.attachmentMaxBytes,
      quotaBytes: L.attachmentQuotaBytes,
      types: cfg.attachmentTypes,
      maxUploads: L.uploadsMax,
      maxDownloads: L.downloadsMax,
    });
    const rooms = new RoomsService(store, { maxMessageBytes: L.maxMessageBytes, editWindowS: L.editWindowS }, roomGateway, contacts);

    // One for every session: a connection holds only its own state (its id is in each log line).
    const sessionDeps: SessionDeps = {
      rooms,
      notices,
      audience: messageNotices,
      publishBudget,
      room: roomRef,
      robot: robotRef,
      verify,
      limits: {
        maxSubscriptions: L.wsMaxSubscriptions,
        requestsPerSecond: L.wsRequestsPerSecond,
        reauthGraceMs: L.reauthGraceMs,
      },
      log: root.child({ component: 'session' }),
      clock: systemClock,
    };

    // The robot CA is read at the first enrollment, not at start: a node runs without one until then.
    const robotGateway: RobotGateway = {
      isOnline: (id) => robotsHere.isOnline(id) || (robotCluster?.isOnline(id) ?? false),
      status: (id) => robotRef(id).ask({ type: 'live' }),
      changed: (id, what) => {
        tellRobot(id, robotChangeMsg(what));
        robotCluster?.announceChange(id, what);
      },
    };
    const robots = new RobotsService(store, lazyCa(robotCaFiles(cfg)), root.child({ component: 'robots' }), robotGateway);

    auth.events = {
      sessionsEnded: (e) => news.announce({ kind: 'ended', ...e }),
      enabled: (userId) => news.announce({ kind: 'enabled', userId }),
      removed: (user, what) => {
        for (const id of what.roomsDeleted) roomGateway.deleted(id);
        rooms.accountRemoved(user, what).catch((e: unknown) => root.warn({ err: e }, 'could not record a deleted account leaving its rooms'));
        for (const id of what.robotsDeleted) robotGateway.changed(id, 'deleted');
        for (const id of what.grantsLost) robotGateway.changed(id, 'access');
        for (const c of what.contactsLost) tellPerson(c.userId, { t: 'contact', kind: c.kind, user: { id: user.id, username: user.username } });
      },
    };
    const tlsMaterial = await robotTlsMaterial(cfg, root);
    const robotListener =
      tlsMaterial &&
      new RobotListener({
        host: cfg.host,
        port: cfg.robotPort,
        ...tlsMaterial,
        maxFrameBytes: L.robotMaxFrameBytes,
        heartbeatMs: L.robotHeartbeatMs,
        telemetryPerSecond: L.robotTelemetryPerSecond,
        maxWriteBufferBytes: 1_048_576,
        maxViolations: 10,
        handshakeTimeoutMs: L.robotHandshakeTimeoutMs,
        maxPendingPerIp: L.robotMaxPendingPerIp,
        maxPending: L.robotMaxPending,
        log: root.child({ component: 'robot-link' }),
        authenticate: robotAuthenticator(store.robots, (fp) => robots.enroller.used(fp)),
        renew: (link, csr) => robots.enroller.renew(link.robotId, link.fingerprint, csr),
        connect: (conn, channels) => RobotSession.open(conn, channels, robotRef(conn.robotId), root.child({ component: 'robot-session', link: conn.id })),
      });

    const apiKeys = new ApiKeysService(store);
    const ask = (subject: string) => nats && { nc: nats.nc, subject, nodes: () => membership?.nodes().length ?? 1 };
    const online = new ClusterQuestion((ids: string[]) => ws.online(ids), isIdList, isIdList, root.child({ component: 'online' }), ask(names.online));
    let closing = false;
    const ready = readiness({ store, nats, membership: () => membership, clusterName: cfg.clusterName, closing: () => closing, log: root });
    const startedAt = Date.now();
    const nodeStats = new ClusterQuestion(
      async () => ({ node: nodeId, url: urlOf(port), startedAt, version: VERSION, ready: (await ready()).ok, ...(await metrics.figures()) }),
      (q): q is null => q === null,
      isNodeFigures,
      root.child({ component: 'node-stats' }),
      ask(names.nodeStats),
    );
    undo.push(async () => online.close());
    undo.push(async () => nodeStats.close());
    const serverApi = new ServerService(store, rooms, {
      tell: (userId, notice) => notices.append(userId, { t: 'notice', ...notice } as Unnumbered),
      disconnect: (userId) => news.announce({ kind: 'disconnect', userId }),
      online: (ids) => onlineOf(online, ids),
    });
    const router = new HttpRouter({
      log: root.child({ component: 'http' }),
      maxBodyBytes: cfg.limits.maxBodyBytes,
      corsOrigins: cfg.corsOrigins,
      trustProxy: cfg.trustProxy,
      verifyAccess: verify,
      verifyApiKey: (secret) => apiKeys.verify(secret),
      onResponse: (method, route, status, seconds) => metrics.httpResponse(method, route, status, seconds),
    });
    let doc: unknown;
    router.add(
      ...opsRoutes({
        key,
        metrics: async () => ({ contentType: metrics.registry.contentType, data: await metrics.registry.metrics() }),
        openapi: () => {
          doc ??= openApiDocument(router.list(), VERSION);
          return doc;
        },
        ready,
      }),
      ...adminRoutes({ store, nodes: () => nodeStats.ask(null).then(({ answers, partial }) => ({ nodes: answers, partial })) }),
      ...authRoutes(auth, emailAuth, store, cfg),
      ...chatRoutes(rooms, store, publishBudget),
      ...peopleRoutes(contacts),
      ...moderationRoutes(rooms, auth),
      ...messageRoutes(rooms, publishBudget),
      ...noticeRoutes(notices),
      ...attachmentRoutes(attachments, store),
      ...serverRoutes(apiKeys, serverApi, publishBudget),
      ...webhookRoutes(webhooks),
      ...robotRoutes(robots),
    );

    const app = newApp();
    ws.mount(app);
    router.mount(app);
    // The stand-in hands the port over (the same one, when PORT=0 picked it).
    standby?.close();
    standby = undefined;
    listenSocket = (await listenExclusive(app, cfg.host, port, root)) || undefined;
    if (!listenSocket) throw portTaken();
    port = uWS.us_socket_local_port(listenSocket as never);
    const url = urlOf(port);

    membership?.onLeft((node) => {
      presence.nodeLeft(node);
      robotCluster?.nodeLeft(node);
    });
    if (robotListener) {
      try {
        await robotListener.listen();
        undo.push(() => robotListener.close());
      } catch (e) {
        throw new ConfigError(
          `SB_ROBOT_PORT: robot endpoint cannot listen on ${cfg.host}:${cfg.robotPort} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        );
      }
      root.info({ port: robotListener.port }, 'robot endpoint listening (mutual TLS)');
    }

    const prune = setInterval(() => {
      store.refreshTokens.prune().catch((e) => root.warn({ err: e }, 'refresh token pruning failed'));
      store.sessions.prune().catch((e) => root.warn({ err: e }, 'session pruning failed'));
      store.emailCodes.prune().catch((e) => root.warn({ err: e }, 'one-time code pruning failed'));
      store.rateLimits.prune().catch((e) => root.warn({ err: e }, 'rate-limit pruning failed'));
      store.notices.prune(L.noticeRetentionDays).catch((e) => root.warn({ err: e }, 'notice pruning failed'));
      store.blobs.sweep(UNUSED_UPLOAD_HOURS).catch((e) => root.warn({ err: e }, 'attachment sweep failed'));
      robots.enroller.pruneCertificates().catch((e) => root.warn({ err: e }, 'robot certificate pruning failed'));
      store.robotTelemetry.pruneExpired(new Date(Date.now() - L.robotHistoryMs)).catch((e) => root.warn({ err: e }, 'robot history pruning failed'));
      webhooks.prune();
    }, PRUNE_EVERY_MS);
    prune.unref();
    webhooks.start();

    let done: Promise<void> | undefined;
    let markClosed!: () => void;
    const closedP = new Promise<void>((r) => {
      markClosed = r;
    });
    const close = () => {
      done ??= (async () => {
        closing = true;
        clearInterval(prune);
        root.info({ inFlight: router.inFlight }, 'shutting down: no new connections');
        if (listenSocket) uWS.us_listen_socket_close(listenSocket);
        ws.shutdown(1_000);
        const connected = robotsHere.connected();
        await robotListener?.close();
        // The robots were told to reconnect elsewhere; each that does in time takes its lease along
        // (the new node asks this one for it), so a rolling restart does not end leases.
        if (robotCluster) {
          const stayed = await robotsHere.leasesMoved(connected, Math.min(ROBOT_DRAIN_MS, cfg.shutdownTimeoutMs));
          if (stayed > 0) root.info({ robots: stayed }, 'leases not handed over: their robots did not reconnect elsewhere in time');
        }
        const deadline = new Promise<'timeout'>((r) => setTimeout(r, cfg.shutdownTimeoutMs, 'timeout').unref());
        if ((await Promise.race([router.drain(), deadline])) === 'timeout') {
          root.warn({ inFlight: router.inFlight }, 'shutdown deadline passed with requests in flight');
        }
        // Room actors finish their group commits before the store goes away.
        await actors.stopAll(cfg.shutdownTimeoutMs);
        await webhooks.stop();
        await membership?.leave();
        await robotCluster?.close();
        await bus.close();
        await presence.close();
        news.close();
        mailer?.close();
        await nats?.nc.drain().catch((e) => root.warn({ err: e }, 'NATS drain failed'));
        await store.close();
        root.info('shut down');
        markClosed();
      })();
      return done;
    };
    root.info({ url, version: VERSION, store: store.db.kind, port }, 'listening');
    return { nodeId, port, url, store, auth, log: root, router, ws, actors, robots: robotListener, membership, close, closed: () => closedP };
  } catch (e) {
    standby?.close();
    if (listenSocket) uWS.us_listen_socket_close(listenSocket);
    for (const u of undo.reverse()) await u().catch((err) => root.warn({ err }, 'cleanup after a failed start failed'));
    await nats?.nc.close();
    await store.close();
    throw e;
  }
}
