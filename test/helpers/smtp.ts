// Starts the SMTP sink (smtp-sink.mjs) as a child process on a free loopback port for a test, and
// hands out the mails it receives. Stopped at teardown.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Test } from 'tap';

export interface SinkMail {
  from: string | null;
  to: string[];
  raw: string;
}

export interface SmtpSink {
  /** smtp://[user:password@]127.0.0.1:port */
  url: string;
  mails: SinkMail[];
  /** The next mail to `to` not handed out before; rejects after `ms`. */
  next(to: string, ms?: number): Promise<SinkMail>;
}

export async function startSmtpSink(t: Test, auth?: { user: string; password: string }): Promise<SmtpSink> {
  const child = spawn(process.execPath, [new URL('./smtp-sink.mjs', import.meta.url).pathname], {
    env: { ...process.env, ...(auth ? { SMTP_SINK_USER: auth.user, SMTP_SINK_PASSWORD: auth.password } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const mails: SinkMail[] = [];
  const taken = new Set<SinkMail>();
  const waiters = new Set<() => void>();
  let port: number | undefined;
  const listening = new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`smtp sink exited with ${code} before listening`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const v = JSON.parse(line) as { listening?: number } & SinkMail;
      if (v.listening !== undefined) {
        port = v.listening;
        resolve(port);
        return;
      }
      mails.push(v);
      for (const w of [...waiters]) w();
    });
  });
  await listening;
  const creds = auth ? `${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.password)}@` : '';
  return {
    url: `smtp://${creds}127.0.0.1:${port}`,
    mails,
    next(to: string, ms = 10_000): Promise<SinkMail> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = mails.find((x) => !taken.has(x) && x.to.some((a) => a.toLowerCase() === to.toLowerCase()));
          if (!m) return;
          taken.add(m);
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no mail to ${to} within ${ms} ms`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
  };
}

/** The six-digit code in a mail's body. */
export function codeIn(mail: SinkMail): string {
  const body = mail.raw.slice(mail.raw.indexOf('\r\n\r\n'));
  const m = /\b(\d{6})\b/.exec(body);
  if (!m) throw new Error(`no code in the mail: ${body.slice(0, 200)}`);
  return m[1] as string;
}
