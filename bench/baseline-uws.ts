// The ceiling for HTTP scenarios: a bare uWebSockets.js server with no auth, no store and no
// validation, answering every GET with fixed bytes given on the command line (as a file path).
// It logs the same `listening` line as the hub so the bench drives both the same way.

import uWS from 'uWebSockets.js';
import { readFileSync } from 'node:fs';

const body = readFileSync(process.argv[2] as string);
uWS
  .App()
  .any('/*', (res) => {
    res.cork(() => {
      res.writeHeader('content-type', 'application/json; charset=utf-8').end(body);
    });
  })
  .listen('127.0.0.1', 0, (s) => {
    if (!s) process.exit(1);
    process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${uWS.us_socket_local_port(s)}` })}\n`);
  });
process.on('SIGTERM', () => process.exit(0));
