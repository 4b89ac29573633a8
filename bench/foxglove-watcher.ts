// A Foxglove watcher for the telemetry bench: a /foxglove socket on one robot that subscribes to
// every channel it is offered and, like the /ws watchers, counts samples and records robot→watcher
// latency from the pose payload's `mono` (CLOCK_MONOTONIC µs in the load generator's process).

import type { RecordableHistogram } from 'node:perf_hooks';
import WebSocket from 'ws';

const monoMicros = (): number => Number(process.hrtime.bigint() / 1000n);

export class FoxgloveWatcher {
  delivered = 0;
  private nextSub = 1;

  private constructor(
    readonly ws: WebSocket,
    latency: RecordableHistogram,
    measuring: () => boolean,
  ) {
    ws.on('message', (d: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        const m = JSON.parse(d.toString('utf8'));
        if (m.op === 'advertise' && m.channels.length) {
          ws.send(JSON.stringify({ op: 'subscribe', subscriptions: m.channels.map((c: { id: number }) => ({ id: this.nextSub++, channelId: c.id })) }));
        }
        return;
      }
      if (d[0] !== 1 || !measuring()) return;
      this.delivered++;
      const sample = JSON.parse(d.subarray(13).toString('utf8'));
      if (typeof sample?.mono === 'number') latency.record(Math.max(1, monoMicros() - sample.mono));
    });
  }

  /** Opens the robot in Foxglove's protocol; resolves once its channels are advertised and subscribed. */
  static open(url: string, token: string, robot: string, latency: RecordableHistogram, measuring: () => boolean): Promise<FoxgloveWatcher> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/foxglove?robot=${robot}&token=${token}`, 'foxglove.websocket.v1', { perMessageDeflate: false });
      const w = new FoxgloveWatcher(ws, latency, measuring);
      ws.on('message', function subscribed(d: Buffer, isBinary: boolean) {
        if (isBinary || JSON.parse(d.toString('utf8')).op !== 'advertise') return;
        ws.off('message', subscribed);
        resolve(w);
      });
      ws.once('error', reject);
    });
  }
}
