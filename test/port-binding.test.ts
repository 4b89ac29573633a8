// Exclusive ports: uWS binds with SO_REUSEPORT by default, so a second node started on a taken port
// used to "listen" too and the kernel shared connections between the two (two stores answering
// alternate requests). A taken PORT or SB_ROBOT_PORT must be a clear start-up error, exit status 2.

import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { Api } from './helpers/api.js';
import { tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';

// Several nodes start one after another here, and one restart waits out TIME_WAIT (up to 65 s):
// past the suite's 120 s per file on a loaded machine.
t.setTimeout(300_000);

t.test('#15 exclusive ports: a second node on a taken PORT or SB_ROBOT_PORT exits 2 naming the variable', async (t) => {
  const dataDir = await tempDir(t);
  const init = spawnCli(t, ['pki', 'init'], { SB_DATA_DIR: dataDir });
  t.equal((await init.exited).code, 0, 'pki init: the first node gets a robot endpoint');
  const first = spawnCli(t, ['serve'], { SB_DATA_DIR: dataDir, PORT: '0', SB_ROBOT_PORT: '0', HOST: '127.0.0.1' });
  const listening = await first.waitFor((l) => l.msg === 'listening', 'listening', 60_000);
  const robotLine = first.lines.find((l) => l.msg === 'robot endpoint listening (mutual TLS)');
  t.ok(robotLine, 'the robot endpoint listens');
  const api = new Api(listening.url as string);
  const alice = await api.signUp('alice');

  // Another node with its own store (the "two databases") on the same HTTP port.
  const second = spawnCli(t, ['serve'], { SB_DATA_DIR: await tempDir(t), PORT: String(listening.port), SB_ROBOT_PORT: '0', HOST: '127.0.0.1' });
  t.equal((await second.exited).code, 2, 'a taken PORT exits 2');
  t.match(second.stderr(), new RegExp(`PORT: cannot listen on 127\\.0\\.0\\.1:${listening.port} \\(in use`));
  t.notOk(
    second.lines.some((l) => l.msg === 'listening'),
    'it never claims to listen',
  );

  // Its own data dir, with the first node's robot certificates (as a cluster's nodes share them).
  const pki = path.join(dataDir, 'pki');
  const robotTls = {
    SB_ROBOT_CA_CERT_FILE: path.join(pki, 'robot-ca.crt'),
    SB_ROBOT_CA_KEY_FILE: path.join(pki, 'robot-ca.key'),
    SB_ROBOT_TLS_CERT_FILE: path.join(pki, 'server.crt'),
    SB_ROBOT_TLS_KEY_FILE: path.join(pki, 'server.key'),
  };
  const third = spawnCli(t, ['serve'], { SB_DATA_DIR: await tempDir(t), ...robotTls, PORT: '0', SB_ROBOT_PORT: String(robotLine?.port), HOST: '127.0.0.1' });
  t.equal((await third.exited).code, 2, 'a taken SB_ROBOT_PORT exits 2');
  t.match(third.stderr(), new RegExp(`SB_ROBOT_PORT: robot endpoint cannot listen on 127\\.0\\.0\\.1:${robotLine?.port} \\(EADDRINUSE\\)`));

  // Every request still reaches the first node's store: the user it registered is always there.
  for (let i = 0; i < 6; i++) {
    const me = await api.get('/api/v1/auth/me', { token: alice.token });
    t.equal(me.status, 200, `request ${i + 1} answered by the node that owns the port`);
  }
  first.child.kill('SIGTERM');
  t.equal((await first.exited).code, 0);
});

t.test('a restart on the same port waits out the connections the last run closed (TIME_WAIT), then listens', async (t) => {
  t.setTimeout(120_000);
  const dataDir = await tempDir(t);
  const first = spawnCli(t, ['serve'], { SB_DATA_DIR: dataDir, PORT: '0', SB_ROBOT_PORT: '0', HOST: '127.0.0.1' });
  const port = (await first.waitFor((l) => l.msg === 'listening', 'listening', 60_000)).port as number;
  // A body over the limit: the node answers 413 and closes the connection first, so the closed
  // connection's TIME_WAIT is on the node's port (this uWS build binds without SO_REUSEADDR).
  await new Promise<void>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\n'));
    s.on('data', () => {});
    s.on('close', () => resolve());
  });
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const timeWait = (await readFile('/proc/net/tcp', 'utf8')).split('\n').some((l) => {
    const c = l.trim().split(/\s+/);
    return c[1]?.endsWith(hex) && c[3] === '06';
  });
  t.ok(timeWait, 'the node closed first: its port has a connection in TIME_WAIT');
  first.child.kill('SIGTERM');
  t.equal((await first.exited).code, 0);
  const again = spawnCli(t, ['serve'], { SB_DATA_DIR: dataDir, PORT: String(port), SB_ROBOT_PORT: '0', HOST: '127.0.0.1' });
  const up = await again.waitFor((l) => l.msg === 'listening', 'listening again', 75_000);
  t.equal(up.port, port, 'the same port');
  t.ok(
    again.lines.some((l) => /TIME_WAIT/.test(String(l.msg))),
    'it said what it waited for',
  );
  again.child.kill('SIGTERM');
  t.equal((await again.exited).code, 0);
});
