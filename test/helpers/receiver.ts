// A real HTTP webhook receiver for tests: it checks each delivery's signature as a backend would
// (Standard Webhooks: HMAC-SHA256 of "id.timestamp.body" with the base64 secret after "whsec_"),
// records what arrived, and can be "down" (every connection cut) for a while.

import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';

export interface Received {
  id: string;
  timestamp: number;
  signatureOk: boolean;
  body: { id: string; type: string; createdAt: string; data: Record<string, any> };
}

export class Receiver {
  readonly received: Received[] = [];
  secret = '';
  down = false;
  private waiters = new Set<() => void>();

  private constructor(readonly url: string) {}

  static async start(t: Test): Promise<Receiver> {
    let self!: Receiver;
    const server = http.createServer((req, res) => {
      if (self.down) {
        req.socket.destroy();
        return;
      }
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        const raw = Buffer.concat(parts).toString('utf8');
        const id = String(req.headers['webhook-id']);
        const timestamp = Number(req.headers['webhook-timestamp']);
        const key = Buffer.from(self.secret.replace(/^whsec_/, ''), 'base64');
        const want = Buffer.from(createHmac('sha256', key).update(`${id}.${timestamp}.${raw}`).digest('base64'));
        const got = Buffer.from(String(req.headers['webhook-signature']).replace(/^v1,/, ''));
        self.received.push({ id, timestamp, signatureOk: got.length === want.length && timingSafeEqual(got, want), body: JSON.parse(raw) });
        res.writeHead(204).end();
        for (const w of [...self.waiters]) w();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new Receiver(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`);
    t.teardown(() => new Promise<void>((r) => server.close(() => r())));
    return self;
  }

  /** Waits (at most `ms`) until `pred` holds of what arrived. */
  until(pred: (r: Received[]) => boolean, what: string, ms = 10_000): Promise<Received[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred(this.received)) return false;
        done();
        resolve(this.received);
        return true;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; got ${this.received.map((r) => r.body.type).join(', ')}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      if (!check()) this.waiters.add(check);
    });
  }
}
