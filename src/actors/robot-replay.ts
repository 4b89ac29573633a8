// What a watch with `since` gets before the live samples: for each named reliable channel, the
// numbered samples after its `since`, up to the highest seq this node has seen of the channel (the
// fence: anything above it reaches this node later, live, after the watcher is subscribed). Below
// the fence a sample is in the store or, accepted by the robot's home but not stored yet, in the
// home's write queue (on the home: exact) or in this node's memory of the channel's last RECENT
// samples (a follower; it also takes the home's unstored ones from its snapshot). So replay and
// live meet without a repeat, and without a gap unless a follower's home lags more than RECENT
// samples behind in storing (the watcher then sees a jump in seq and reads the rest over REST).
// The newest MAX_REPLAY per channel are replayed; older ones are read over REST.

import type { TelemetryFrame } from '../protocol/frames.js';
import type { StoredSample } from '../store/robot-telemetry.js';
import type { Store } from '../store/store.js';
import type { Numbered, RobotView } from './robot-view.js';

/** Samples replayed per channel at most. */
export const MAX_REPLAY = 1_000;

/** The `tm` frames to send a watcher before it is subscribed, channel by channel, each in order. */
export async function replayFrames(
  view: RobotView,
  store: Store,
  since: Record<string, number>,
  chosen: ReadonlySet<string> | undefined,
  /** On the robot's home: the samples it accepted and has not stored yet. */
  unstored: StoredSample[],
): Promise<TelemetryFrame[]> {
  const out: TelemetryFrame[] = [];
  for (const [name, after] of Object.entries(since)) {
    if (chosen && !chosen.has(name)) continue;
    const channel = [...view.channels.values()].find((c) => c.name === name && c.delivery === 'reliable');
    if (!channel) continue;
    // Nothing numbered seen here: nothing can be in flight towards this node that the store misses.
    const fence = view.numbered.get(name) ?? Number.MAX_SAFE_INTEGER;
    if (fence <= after) continue;
    const bySeq = new Map<number, Numbered>();
    for (const s of await store.robotTelemetry.newestIn(view.id, name, after, fence, MAX_REPLAY)) bySeq.set(s.seq, s);
    for (const s of view.recent.get(name) ?? []) if (s.seq > after && s.seq <= fence) bySeq.set(s.seq, s);
    for (const s of unstored) if (s.channel === name && s.seq > after && s.seq <= fence) bySeq.set(s.seq, s);
    const samples = [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-MAX_REPLAY);
    for (const s of samples) out.push({ t: 'tm', robot: view.id, ch: channel.id, ts: s.ts, data: s.data, seq: s.seq });
  }
  return out;
}
