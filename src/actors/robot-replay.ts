// What a watch with `since` gets before the live samples: for each named reliable channel, the
// numbered samples after its `since`, up to the highest seq this node has seen of the channel (the
// fence, taken in the mailbox step that registers the watcher: anything above it reaches this node
// later, live, and is held for the watcher until the replay is over). Below the fence a sample is
// in the store or, accepted by the robot's home but not stored yet, in the home's write queue (on
// the home: exact) or in this node's memory of the channel's last RECENT samples (a follower; it
// also takes the home's unstored ones from its snapshot); those two are copied with the fence. So
// replay and live meet without a repeat, and without a gap unless a follower's home lags more than
// RECENT samples behind in storing (the watcher then sees a jump in seq and reads the rest over REST).
// The store is read beside the mailbox, newest first in pages, and the frames are sent oldest first
// at the pace the socket drains: an e-stop or a command to the robot never waits behind a replay.
// The newest MAX_REPLAY per channel are replayed, and MAX_REPLAY_BYTES of payload per watch in all
// (channels in the order of `since`); what is older is skipped (a jump in seq) and read over REST.

import type { StoredSample } from '../store/robot-telemetry.js';
import type { Store } from '../store/store.js';
import type { Connection } from './ports.js';
import { approxBytes, type Numbered, type RobotView } from './robot-view.js';

/** Samples replayed per channel at most. */
export const MAX_REPLAY = 1_000;
/** Payload bytes replayed per watch at most, all its channels together (roughly counted: approxBytes). */
export const MAX_REPLAY_BYTES = 4 * 1024 * 1024;
/** Samples read from the store per query. */
const REPLAY_PAGE = 200;

/** One channel of a replay, as the mailbox step fenced it. */
export interface ReplayPart {
  name: string;
  ch: number;
  after: number;
  /** The highest seq this node had seen; undefined: none (nothing can be in flight here that the store misses). */
  fence: number | undefined;
  /** Numbered samples in (after, fence] not (surely) stored yet, copied in the mailbox step. */
  memory: Numbered[];
}

/** In the mailbox step: what each named reliable channel replays, and up to where. */
export function fenceReplay(
  view: RobotView,
  since: Record<string, number>,
  chosen: ReadonlySet<string> | undefined,
  /** On the robot's home: the samples it accepted and has not stored yet. */
  unstored: StoredSample[],
): ReplayPart[] {
  const parts: ReplayPart[] = [];
  for (const [name, after] of Object.entries(since)) {
    if (chosen && !chosen.has(name)) continue;
    const channel = [...view.channels.values()].find((c) => c.name === name && c.delivery === 'reliable');
    if (!channel) continue;
    const fence = view.numbered.get(name);
    if (fence !== undefined && fence <= after) continue;
    const upTo = fence ?? Number.MAX_SAFE_INTEGER;
    const inRange = (s: Numbered) => s.seq > after && s.seq <= upTo;
    const memory = [...view.recent(name).filter(inRange), ...unstored.filter((s) => s.channel === name && inRange(s))];
    parts.push({ name, ch: channel.id, after, fence, memory });
  }
  return parts;
}

/**
 * Beside the mailbox: sends each part's samples, oldest first, waiting for the socket to drain
 * before each; stops as soon as `live()` says the watch was replaced or ended. Fills `upTo` with
 * the seq up to which each channel was covered (its live frames up to there are not sent again).
 */
export async function replay(
  robotId: string,
  store: Store,
  conn: Connection,
  parts: ReplayPart[],
  upTo: Map<string, number>,
  live: () => boolean,
): Promise<void> {
  let budget = MAX_REPLAY_BYTES;
  for (const part of parts) {
    const top = part.fence ?? (await store.robotTelemetry.lastSeqs(robotId, [part.name])).get(part.name);
    if (top === undefined || top <= part.after) continue;
    upTo.set(part.name, top);
    // Newest first, until MAX_REPLAY or the byte budget: what is kept ends where live begins.
    const picked: Numbered[] = [];
    let full = budget <= 0;
    for (let cursor = top; !full && cursor > part.after && picked.length < MAX_REPLAY; ) {
      const limit = Math.min(REPLAY_PAGE, MAX_REPLAY - picked.length);
      const page = await store.robotTelemetry.newestIn(robotId, part.name, part.after, cursor, limit);
      if (!live()) return;
      // The page holds every stored seq in (floor, cursor]; the memory adds the unstored ones.
      const floor = page.length < limit ? part.after : (page[0] as StoredSample).seq - 1;
      const bySeq = new Map<number, Numbered>();
      for (const s of page) bySeq.set(s.seq, s);
      for (const s of part.memory) if (s.seq > floor && s.seq <= cursor) bySeq.set(s.seq, s);
      for (const s of [...bySeq.values()].sort((a, b) => b.seq - a.seq)) {
        const bytes = approxBytes(s.data);
        if (picked.length >= MAX_REPLAY || bytes > budget) {
          full = bytes > budget;
          break;
        }
        budget -= bytes;
        picked.push(s);
      }
      cursor = floor;
    }
    for (let i = picked.length - 1; i >= 0; i--) {
      const s = picked[i] as Numbered;
      await conn.writable();
      if (!live()) return;
      conn.send({ t: 'tm', robot: robotId, ch: part.ch, ts: s.ts, data: s.data, seq: s.seq });
    }
  }
}
