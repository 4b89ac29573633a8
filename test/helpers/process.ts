// Spawns the built CLI (`node dist/cli.js ...`, what `npm start` runs after building) as a real
// child process and reads its JSON log lines, so tests can wait on events instead of sleeping.

import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Test } from 'tap';

export const CLI = path.resolve('dist/cli.js');

export interface Spawned {
  child: ChildProcess;
  lines: Record<string, any>[];
  stderr(): string;
  /** Resolves with the first log line matching, or rejects at exit / after the deadline. */
  waitFor(pred: (line: Record<string, any>) => boolean, what: string, ms?: number): Promise<Record<string, any>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `cli`: another entry point than this checkout's build (e.g. an installed package's bin);
 * `nodeArgs`: options for node itself (those NODE_OPTIONS refuses, such as --cpu-prof).
 */
export function spawnCli(t: Test, args: string[], env: Record<string, string>, cli = CLI, nodeArgs: string[] = []): Spawned {
  const child = spawn(process.execPath, [...nodeArgs, cli, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Record<string, any>[] = [];
  const waiters = new Set<() => void>();
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l));
    } catch {
      lines.push({ text: l });
    }
    for (const w of waiters) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      for (const w of waiters) w();
      resolve({ code, signal });
    });
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    waitFor(pred, what, ms = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for ${what}; stderr: ${err}`)), ms);
        const check = () => {
          const hit = lines.find(pred);
          if (hit) return done(undefined, hit);
          if (child.exitCode !== null || child.signalCode !== null)
            done(new Error(`process exited (${child.exitCode ?? child.signalCode}) before ${what}; stderr: ${err}`));
        };
        const done = (e?: Error, hit?: Record<string, any>) => {
          clearTimeout(timer);
          waiters.delete(check);
          e ? reject(e) : resolve(hit as Record<string, any>);
        };
        waiters.add(check);
        check();
      });
    },
  };
}
