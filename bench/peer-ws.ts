// A peer for the `peers` scenario: the `ws` library's server doing what bare-uWS pub/sub does (the
// same `sub`/`pub` msgpack frames, no auth, no persistence): a pub is acked at once and its delivery
// encoded once and sent to every socket subscribed to the room, the usual `ws` broadcast loop.

import { Packr } from 'msgpackr';
import { type WebSocket, WebSocketServer } from 'ws';

const packr = new Packr({ useRecords: false });
const rooms = new Map<string, Set<WebSocket>>();
const seqs = new Map<string, number>();

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws', maxPayload: 65_536, perMessageDeflate: false });
wss.on('connection', (ws) => {
  const joined = new Set<string>();
  ws.send(packr.pack({ t: 'hello' }));
  ws.on('message', (data: Buffer) => {
    const f = packr.unpack(data);
    if (f.t === 'sub') {
      const members = rooms.get(f.room) ?? new Set<WebSocket>();
      rooms.set(f.room, members);
      members.add(ws);
      joined.add(f.room);
      ws.send(packr.pack({ t: 'subscribed', id: f.id, room: f.room, seq: seqs.get(f.room) ?? 0 }));
    } else if (f.t === 'pub') {
      const seq = (seqs.get(f.room) ?? 0) + 1;
      seqs.set(f.room, seq);
      const ts = Date.now();
      ws.send(packr.pack({ t: 'ack', id: f.id, cid: f.cid, seq, mid: f.cid, ts }));
      const frame = packr.pack({ t: 'msg', room: f.room, seq, mid: f.cid, from: null, cid: f.cid, ts, body: f.body });
      for (const member of rooms.get(f.room) ?? []) member.send(frame);
    }
  });
  ws.on('close', () => {
    for (const room of joined) rooms.get(room)?.delete(ws);
  });
});
wss.on('listening', () => {
  const { port } = wss.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${port}` })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
