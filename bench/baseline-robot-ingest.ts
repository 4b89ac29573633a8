// The baselines of the telemetry scenario: two bare robot-ingest servers doing the same work per
// frame, so the bench can price the hub's Node TLS robot listener against a uWS listener under the
// same load, in the same run. Nothing else: no authentication lookup, no actors, no fan-out.
//   tls  Node `tls` with requestCert (mutual TLS, as the hub's robot endpoint): a length-prefixed
//        MessagePack stream split by FrameReader and decoded by parseRobotFrame.
//   uws  uWS SSLApp WebSocket (server-side TLS only: this uWS build cannot request client
//        certificates): each binary message is one MessagePack body, decoded by parseRobotFrame.
// Both answer HELLO with WELCOME and time each pose sample against the `mono` it carries (µs of
// CLOCK_MONOTONIC, shared by every process on the machine). On SIGTERM they print
// {"msg":"stats", frames, p50, p99, p999} (ms) and exit. Usage: <tls|uws> <cert> <key> <ca>.

import uWS from 'uWebSockets.js';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createHistogram } from 'node:perf_hooks';
import tls from 'node:tls';
import { encodeHubFrame, FrameReader, parseRobotFrame, Tag } from '../src/protocol/robot.js';

const [mode, certFile, keyFile, caFile] = process.argv.slice(2) as [string, string, string, string];
const latency = createHistogram();
let frames = 0;
let connections = 0;
const welcome = encodeHubFrame({ tag: Tag.WELCOME, robotId: 'bench', heartbeatMs: 60_000 });

/** One frame body: what the hub's listener does before handing a frame to the robot's actor. */
function onBody(b: Buffer, reply: (frame: Buffer) => void): void {
  const f = parseRobotFrame(b);
  if (f.tag === Tag.HELLO) {
    reply(welcome);
    return;
  }
  if (f.tag !== Tag.TELEMETRY) return;
  frames++;
  const mono = (f.payload as { mono?: number } | null)?.mono;
  if (typeof mono === 'number') latency.record(Math.max(1, Number(process.hrtime.bigint() / 1000n) - mono));
}

const listening = (port: number) => process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `${mode}://127.0.0.1:${port}` })}\n`);

if (mode === 'tls') {
  const server = tls.createServer({
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    ca: readFileSync(caFile),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  server.on('secureConnection', (socket) => {
    connections++;
    socket.setNoDelay(true);
    const reader = new FrameReader(65_536);
    const reply = (frame: Buffer) => socket.write(frame);
    socket.on('data', (chunk: Buffer) => {
      for (const b of reader.push(chunk)) onBody(b, reply);
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => listening((server.address() as AddressInfo).port));
} else if (mode === 'uws') {
  uWS
    .SSLApp({ cert_file_name: certFile, key_file_name: keyFile })
    .ws('/robot', {
      maxPayloadLength: 65_536,
      maxBackpressure: 1_048_576,
      idleTimeout: 0,
      open: () => {
        connections++;
      },
      message: (ws, data) => onBody(Buffer.from(data), (frame) => ws.send(frame.subarray(4), true)),
    })
    .listen('127.0.0.1', 0, (s) => {
      if (!s) process.exit(1);
      listening(uWS.us_socket_local_port(s));
    });
} else {
  process.stderr.write('usage: baseline-robot-ingest.ts <tls|uws> <cert> <key> <ca>\n');
  process.exit(2);
}

process.on('SIGTERM', () => {
  const ms = (p: number) => (latency.count ? latency.percentile(p) / 1000 : Number.NaN);
  process.stdout.write(`${JSON.stringify({ msg: 'stats', frames, connections, p50: ms(50), p99: ms(99), p999: ms(99.9) })}\n`);
  process.exit(0);
});
