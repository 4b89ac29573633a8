// A TCP link between a client and the hub that a test can cut and restore: `down()` breaks every
// connection through it and refuses new ones (as a lost network does: the page sees its socket
// drop, and its reconnects fail), `up()` lets connections through again. Listens on a free port.

import net from 'node:net';
import type { Test } from 'tap';

export interface Link {
  /** http://127.0.0.1:<port>, forwarding to the target. */
  url: string;
  down(): void;
  up(): void;
}

export async function link(t: Test, target: string): Promise<Link> {
  const { hostname, port } = new URL(target);
  const open = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const hub = net.connect(Number(port), hostname);
    for (const [s, other] of [
      [client, hub],
      [hub, client],
    ] as const) {
      open.add(s);
      s.on('close', () => {
        open.delete(s);
        other.destroy();
      });
      s.on('error', () => other.destroy());
      s.pipe(other);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  );
  const addr = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    down() {
      cut = true;
      for (const s of open) s.destroy();
    },
    up() {
      cut = false;
    },
  };
}
