// A peer for the `peers` scenario: Socket.IO as its users run it — its default parser (JSON text
// frames), rooms, and acknowledgement callbacks — doing what bare-uWS pub/sub does: `sub` joins a
// room and is acked; `pub` is acked at once and emitted to the room. Only the WebSocket transport
// is offered, so no client spends time in HTTP long-polling first.

import { createServer } from 'node:http';
import { Server } from 'socket.io';

interface Pub {
  room: string;
  cid: string;
  body: string;
}

const http = createServer();
const io = new Server(http, { path: '/socket.io', transports: ['websocket'], serveClient: false, perMessageDeflate: false, maxHttpBufferSize: 65_536 });
const seqs = new Map<string, number>();

io.on('connection', (socket) => {
  socket.on('sub', (room: string, ack: (seq: number) => void) => {
    socket.join(room);
    ack(seqs.get(room) ?? 0);
  });
  socket.on('pub', (f: Pub, ack: (r: { seq: number; ts: number }) => void) => {
    const seq = (seqs.get(f.room) ?? 0) + 1;
    seqs.set(f.room, seq);
    const ts = Date.now();
    ack({ seq, ts });
    io.to(f.room).emit('msg', { room: f.room, seq, mid: f.cid, from: null, cid: f.cid, ts, body: f.body });
  });
});
http.listen(0, '127.0.0.1', () => {
  const { port } = http.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${port}` })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
