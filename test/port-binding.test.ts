// Exclusive ports: uWS binds with SO_REUSEPORT by default, so a second node started on a taken port
// used to "listen" too and the kernel shared connections between the two (two stores answering
// alternate requests). A taken PORT or SB_ROBOT_PORT must be a clear start-up error, exit status 2.

import path from 'node:path';
import t from 'tap';
import { Api } from './helpers/api.js';
import { tempDir } from './helpers/hub.js';
import { spawnCli } from './helpers/process.js';

t.test('#15 exclusive ports: a second node on a taken PORT or SB_ROBOT_PORT exits 2 naming the variable', async (t) => {
  const dataDir = await tempDir(t);
  const init = spawnCli(t, ['pki', 'init'], { SB_DATA_DIR: dataDir });
  t.equal((await init.exited).code, 0, 'pki init: the first node gets a robot endpoint');
  const first = spawnCli(t, ['serve'], { SB_DATA_DIR: dataDir, PORT: '0', SB_ROBOT_PORT: '0', HOST: '127.0.0.1' });
  const listening = await first.waitFor((l) => l.msg === 'listening', 'listening', 15_000);
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
