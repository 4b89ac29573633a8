// The `peers` scenario: one fan-out load against bare uWebSockets.js, `ws`, Socket.IO and the hub
// (embedded, and on PostgreSQL) in the same run, each through the same load client — the hub's own
// `sb.v1.msgpack` frames for all but Socket.IO, which gets its own client (socket.io-client, the
// WebSocket transport only) since it speaks nothing else. Every server process runs with the GC
// probe so its memory per connection is read after a full collection.

import postgres from 'postgres';
import { io } from 'socket.io-client';
import { pgCpuMeter, type Server, spawnBaseline, startHub } from './lib.js';
import { type Dialect, type FanoutOptions, type FanoutResult, fanoutOnce, hubLimits } from './realtime.js';

export const PEERS = ['bare uWS', 'ws', 'Socket.IO', 'hub (embedded)', 'hub (PostgreSQL)'] as const;
export type Peer = (typeof PEERS)[number];

interface SocketIoPub {
  room: string;
  cid: string;
  body: string;
}

/** Socket.IO's own client, over the WebSocket transport only, speaking bench/peer-socketio.ts's events. */
export const socketIo: Dialect = (url) =>
  new Promise((resolve, reject) => {
    const s = io(url, { path: '/socket.io', transports: ['websocket'], forceNew: true, reconnection: false });
    const acks: (() => void)[] = [];
    const onAck = () => {
      for (const fn of acks) fn();
    };
    s.once('connect_error', reject);
    s.once('connect', () =>
      resolve({
        subscribe: (room) => new Promise<void>((done) => s.emit('sub', room, () => done())),
        onDelivery: (fn) => s.on('msg', (m: SocketIoPub) => fn(m.body)),
        onAck: (fn) => acks.push(fn),
        publish: (_id, room, cid, body) => s.emit('pub', { room, cid, body } satisfies SocketIoPub, onAck),
        close: () => s.disconnect(),
      }),
    );
  });

/** One run of the fan-out load against `peer`; the PostgreSQL hub uses DATABASE_URL. */
export async function peerOnce(peer: Peer, o: FanoutOptions): Promise<FanoutResult> {
  let server: Server;
  let sql: postgres.Sql | undefined;
  if (peer === 'bare uWS') server = await spawnBaseline('baseline-uws-pubsub.ts');
  else if (peer === 'ws') server = await spawnBaseline('peer-ws.ts');
  else if (peer === 'Socket.IO') server = await spawnBaseline('peer-socketio.ts');
  else {
    const store = peer === 'hub (embedded)' ? 'embedded' : 'postgres';
    server = await startHub(store, hubLimits, { gcProbe: true });
    if (store === 'postgres') sql = postgres(process.env.DATABASE_URL as string, { max: 1, onnotice: () => {} });
  }
  try {
    return await fanoutOnce([server], o, {
      hub: peer.startsWith('hub'),
      dialect: peer === 'Socket.IO' ? socketIo : undefined,
      dbCpu: sql && (() => pgCpuMeter(sql)),
      memory: true,
    });
  } finally {
    await sql?.end();
    await server.stop();
  }
}
