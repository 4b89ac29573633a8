// The ceiling for the fanout scenario: bare uWebSockets.js pub/sub speaking the same frames the
// bench sends (sub, pub) with no auth, no validation and no persistence. A pub is acked at once and
// its delivery published to the room's topic, encoded once, exactly as the hub does.

import uWS from 'uWebSockets.js';
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false });
const seqs = new Map<string, number>();

const app = uWS.App();
app
  .ws('/ws', {
    maxPayloadLength: 65_536,
    maxBackpressure: 1_048_576,
    open: (ws) => {
      ws.send(packr.pack({ t: 'hello' }), true);
    },
    message: (ws, data) => {
      const f = packr.unpack(new Uint8Array(data));
      if (f.t === 'sub') {
        ws.subscribe(`room:${f.room}`);
        ws.send(packr.pack({ t: 'subscribed', id: f.id, room: f.room, seq: seqs.get(f.room) ?? 0 }), true);
      } else if (f.t === 'pub') {
        const seq = (seqs.get(f.room) ?? 0) + 1;
        seqs.set(f.room, seq);
        const ts = Date.now();
        ws.send(packr.pack({ t: 'ack', id: f.id, cid: f.cid, seq, mid: f.cid, ts }), true);
        app.publish(`room:${f.room}`, packr.pack({ t: 'msg', room: f.room, seq, mid: f.cid, from: null, cid: f.cid, ts, body: f.body }), true);
      }
    },
  })
  .listen('127.0.0.1', 0, (s) => {
    if (!s) process.exit(1);
    process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${uWS.us_socket_local_port(s)}` })}\n`);
  });
process.on('SIGTERM', () => process.exit(0));
