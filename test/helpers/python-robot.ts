// The Python robot library (clients/python) under test: a robot process (clients/python/tests/
// harness_robot.py on Debian's /usr/bin/python3, with the library from the source tree) whose JSON
// lines on stdout are kept as events a test waits on with deadlines, and a TCP proxy between it
// and the hub that counts connections and can cut or silence them (the hub's side of a drop).

import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Test } from 'tap';
import { tempDir } from './hub.js';
import { FrameInbox } from './inbox.js';

/** Debian's interpreter, with Debian's python3-msgpack (not a pyenv or venv python3 on PATH). */
export const PYTHON = '/usr/bin/python3';
export const PY_ROOT = path.resolve('clients/python');
export const PY_ENV = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PYTHONPATH: path.join(PY_ROOT, 'src'), PYTHONUNBUFFERED: '1' };

export type PyEvent = Record<string, any> & { event: string };

export class PyRobot extends FrameInbox<PyEvent> {
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    super();
    child.stderr?.on('data', (d) => {
      this.stderr += d;
    });
    createInterface({ input: child.stdout! }).on('line', (l) => {
      let v: PyEvent;
      try {
        v = JSON.parse(l);
      } catch {
        v = { event: '!text', text: l };
      }
      this.receive(v);
    });
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
        this.wake();
      });
    });
  }

  protected endReason(): string | undefined {
    return this.exit && `the robot process exited (${JSON.stringify(this.exit)}); stderr: ${this.stderr.slice(-2000)}`;
  }

  /** An instruction on stdin (see harness_robot.py). */
  send(op: Record<string, unknown>): void {
    this.child.stdin?.write(`${JSON.stringify(op)}\n`);
  }

  /** Every event of a kind so far (consumed or not). */
  all(event: string): PyEvent[] {
    return this.frames.filter((f) => f.event === event);
  }

  /** Closes stdin (the harness then closes the robot) and waits for the exit, up to `ms`. */
  async stop(ms = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    const e = await this.exited;
    clearTimeout(timer);
    return e;
  }
}

export interface RobotFiles {
  cert: string;
  key: string;
  ca: string;
}

/** Writes a robot's PEMs to files, as a robot keeps them. */
export async function robotFiles(t: Test, pems: { cert: string; key: string; ca: string }): Promise<RobotFiles> {
  const dir = await tempDir(t, 'sb-py-');
  const files = { cert: path.join(dir, 'robot.crt'), key: path.join(dir, 'robot.key'), ca: path.join(dir, 'ca.crt') };
  await writeFile(files.cert, pems.cert);
  await writeFile(files.key, pems.key, { mode: 0o600 });
  await writeFile(files.ca, pems.ca);
  return files;
}

/** The command-line options naming a robot's files (harness_robot.py and examples/rover.py take them). */
export const robotArgs = (files: RobotFiles): string[] => ['--cert', files.cert, '--key', files.key, '--ca', files.ca];

/** Starts harness_robot.py against `port`; killed at teardown. */
export function startPyRobot(t: Test, port: number, files: RobotFiles, extra: string[] = []): PyRobot {
  const args = ['--host', '127.0.0.1', '--port', String(port), ...robotArgs(files)];
  const child = spawn(PYTHON, [path.join(PY_ROOT, 'tests/harness_robot.py'), ...args, ...extra], { env: PY_ENV, stdio: ['pipe', 'pipe', 'pipe'] });
  const robot = new PyRobot(child);
  t.teardown(() => {
    if (!robot.exit) child.kill('SIGKILL');
  });
  return robot;
}

/** A TCP proxy to the hub's robot port: counts connections, cuts them, or silences one direction. */
export class LinkProxy {
  connections = 0;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; mute: boolean; deaf: boolean }>();

  private constructor(
    readonly server: net.Server,
    readonly target: number,
  ) {}

  static async start(t: Test, target: number): Promise<LinkProxy> {
    const server = net.createServer();
    const proxy = new LinkProxy(server, target);
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.teardown(() => {
      proxy.cut();
      server.close();
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    this.connections++;
    const upstream = net.connect(this.target, '127.0.0.1');
    const pair = { client, upstream, mute: false, deaf: false };
    this.pairs.add(pair);
    client.on('data', (d) => {
      if (!pair.mute) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!pair.deaf) client.write(d);
    });
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  }

  /** Drops every open connection at once (no ERROR frame: what a network failure looks like). */
  cut(): void {
    for (const p of [...this.pairs]) {
      p.client.destroy();
      p.upstream.destroy();
    }
  }

  /** From now on, nothing the robots on the open connections send reaches the hub (new ones pass). */
  muteRobots(): void {
    for (const p of this.pairs) p.mute = true;
  }

  /** From now on, nothing the hub sends on the open connections reaches the robots (new ones pass). */
  muteHub(): void {
    for (const p of this.pairs) p.deaf = true;
  }
}
