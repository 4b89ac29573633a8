// `npx tsx bench/robot-flood.ts [--connections 15000] [--addresses 8]`: the robot-port flood an
// outsider without a certificate can make. Starts a node (embedded store, robot endpoint on, default
// limits) as a child process, opens --connections idle TCP connections to its robot port from
// --addresses loopback addresses (127.0.0.2, 127.0.0.3, ...) that never start TLS, and reports how
// many sockets the node holds (its open file descriptors, before and during), how many it closed at
// accept, and whether /healthz and a registration still answer during the flood. Loopback only;
// every connection is closed at the end. The client needs --connections file descriptors.

import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../scripts/provision.mjs';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '15000' }, addresses: { type: 'string', default: '8' } } });
const total = Number(values.connections);
const addresses = Number(values.addresses);
const cli = path.resolve('dist/cli.js');
const dir = await mkdtemp(path.join(os.tmpdir(), 'sb-flood-'));
const env = { ...process.env, SB_DATA_DIR: dir, HOST: '127.0.0.1', LOG_LEVEL: 'warn', SB_REGISTER_PER_IP_PER_HOUR: '1000' };
execFileSync(process.execPath, [cli, 'pki', 'init'], { env, stdio: 'ignore' });
const [port, robotPort] = [await freePort(), await freePort()];
const hub = spawn(process.execPath, [cli, 'serve'], { env: { ...env, PORT: String(port), SB_ROBOT_PORT: String(robotPort) }, stdio: 'ignore' });
const base = `http://127.0.0.1:${port}`;
const fds = () => readdirSync(`/proc/${hub.pid}/fd`).length;

try {
  for (let i = 0; ; i++) {
    if (i > 200) throw new Error('the node did not become ready in 20 s');
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const before = fds();
  const sockets: net.Socket[] = [];
  let closedAtOnce = 0;
  const batch = 500;
  for (let i = 0; i < total; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, total - i) }, (_, j) => {
        const s = net.connect({ port: robotPort, host: '127.0.0.1', localAddress: `127.0.0.${2 + ((i + j) % addresses)}` });
        s.on('error', () => {});
        sockets.push(s);
        return new Promise<void>((resolve) => {
          s.once('connect', () => resolve());
          s.once('close', () => {
            closedAtOnce++;
            resolve();
          });
        });
      }),
    );
  }
  // Connections the node refused close within a moment of their connect: wait until the count settles.
  let settled = -1;
  while (settled !== closedAtOnce) {
    settled = closedAtOnce;
    await new Promise((r) => setTimeout(r, 500));
  }
  const during = fds();
  const t0 = performance.now();
  const health = await fetch(`${base}/healthz`);
  const healthMs = performance.now() - t0;
  const reg = await fetch(`${base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: `flood${process.pid}`, password: 'correct horse battery' }),
  });
  console.log(
    JSON.stringify(
      {
        tried: total,
        fromAddresses: addresses,
        closedByNodeAtOnce: closedAtOnce,
        heldByClient: total - closedAtOnce,
        nodeFdsBefore: before,
        nodeFdsDuring: during,
        healthz: { status: health.status, ms: Math.round(healthMs * 10) / 10 },
        register: reg.status,
      },
      null,
      2,
    ),
  );
  for (const s of sockets) s.destroy();
} finally {
  hub.kill('SIGTERM');
  await new Promise((r) => hub.once('exit', r));
  await rm(dir, { recursive: true, force: true });
}
