// One watched robot for its page: the SDK's handle, with its state, lease and the latest values in
// signals, and one plot series per numeric telemetry field. Samples land in the series as they
// come; the table of latest values re-renders at most REFRESH_MS apart. The user may choose which
// channels to watch: the hub then sends only those (a heavy channel nobody chose costs nothing).

import { signal } from '@preact/signals';
import type { CommandStage, RobotHandle, RobotState, RobotWatchStatus, SwitchboardClient, TelemetrySample } from '../../../src/client/index.js';
import type { LeaseInfo } from '../../../src/protocol/frames.js';
import { Series } from './Plot.js';

const REFRESH_MS = 200;
/** Plots per robot page at most (the first numeric fields seen). */
export const MAX_PLOTS = 8;

export interface CommandRow {
  key: string;
  name: string;
  cmd: string | undefined;
  stages: CommandStage[];
  done: boolean;
}

/** The numeric fields of a sample's data, as `channel.field` (or the channel alone for a number). */
function numbers(s: TelemetrySample): [string, number][] {
  const name = s.channel ?? `#${s.ch}`;
  const d = s.data;
  if (typeof d === 'number' && Number.isFinite(d)) return [[name, d]];
  if (d === null || typeof d !== 'object' || ArrayBuffer.isView(d)) return [];
  const out: [string, number][] = [];
  for (const [k, v] of Object.entries(d as Record<string, unknown>)) if (typeof v === 'number' && Number.isFinite(v)) out.push([`${name}.${k}`, v]);
  return out;
}

export class RobotWatch {
  readonly status = signal<RobotWatchStatus>('idle');
  readonly state = signal<Readonly<RobotState> | undefined>(undefined);
  readonly lease = signal<LeaseInfo | null>(null);
  readonly latest = signal<ReadonlyMap<number, TelemetrySample>>(new Map());
  /** The plotted fields, in the order first seen. */
  readonly fields = signal<string[]>([]);
  /** The channels watched, by name; undefined: every channel, those advertised later included. */
  readonly chosen = signal<ReadonlySet<string> | undefined>(undefined);
  /** Each plotted field's channel. */
  private readonly fieldChannel = new Map<string, string>();
  readonly series = new Map<string, Series>();
  readonly commands = signal<CommandRow[]>([]);
  readonly error = signal<string | undefined>(undefined);
  /** Samples received since the watch began (the page shows the rate). */
  received = 0;
  readonly handle: RobotHandle;
  private offs: (() => void)[] = [];
  private refresh: ReturnType<typeof setTimeout> | undefined;

  constructor(client: SwitchboardClient, id: string) {
    this.handle = client.robot(id);
  }

  async start(): Promise<void> {
    const h = this.handle;
    const sync = () => {
      this.status.value = h.status;
      this.state.value = h.state ? { ...h.state } : undefined;
      this.lease.value = h.lease.current;
      if (h.state) this.latest.value = new Map(h.state.latest);
    };
    this.offs.push(
      h.on('watching', sync),
      h.on('online', sync),
      h.on('offline', sync),
      h.on('channels', sync),
      h.on('ended', (_reason, e) => {
        sync();
        if (e) this.error.value = e.message;
      }),
      h.on('lease', () => {
        this.lease.value = h.lease.current;
      }),
      h.on('error', (e) => {
        this.error.value = e.message;
      }),
      h.on('telemetry', (s) => this.sample(s)),
      h.on('command', (s) => this.stage(s)),
    );
    try {
      await h.watch();
    } catch (e) {
      this.error.value = (e as Error).message;
    }
    sync();
  }

  /** Whether the page shows (and the hub sends) this channel. */
  watches(channel: string): boolean {
    const chosen = this.chosen.value;
    return !chosen || chosen.has(channel);
  }

  /** The plotted fields of the watched channels. */
  shownFields(): string[] {
    return this.fields.value.filter((f) => this.watches(this.fieldChannel.get(f) ?? ''));
  }

  /** Watches `channel` or stops watching it; choosing every channel the robot has goes back to watching all of them. */
  async choose(channel: string, on: boolean): Promise<void> {
    const names = (this.handle.state?.channels ?? []).map((c) => c.name);
    const next = new Set(this.chosen.value ?? names);
    if (on) next.add(channel);
    else next.delete(channel);
    const all = names.every((n) => next.has(n));
    this.chosen.value = all ? undefined : next;
    await this.handle.watch(all ? {} : { channels: [...next] });
    const st = this.handle.state;
    if (st) this.latest.value = new Map(st.latest);
  }

  stop(): void {
    for (const off of this.offs) off();
    clearTimeout(this.refresh);
    void this.handle.unwatch().catch(() => {});
  }

  private sample(s: TelemetrySample): void {
    this.received++;
    const t = s.ts / 1000;
    for (const [field, value] of numbers(s)) {
      let series = this.series.get(field);
      if (!series) {
        if (this.series.size >= MAX_PLOTS) continue;
        series = new Series();
        this.series.set(field, series);
        this.fieldChannel.set(field, s.channel ?? `#${s.ch}`);
        this.fields.value = [...this.fields.value, field];
      }
      series.push(t, value);
    }
    this.refresh ??= setTimeout(() => {
      this.refresh = undefined;
      const st = this.handle.state;
      if (st) this.latest.value = new Map(st.latest);
    }, REFRESH_MS);
  }

  /** Follows each command and e-stop sent from this page through its stages. */
  private stage(s: CommandStage): void {
    const rows = this.commands.value;
    const final = !['queued', 'delivered', 'accepted'].includes(s.stage);
    const i = s.cmd === undefined ? -1 : rows.findIndex((r) => r.cmd === s.cmd);
    if (i < 0) {
      this.commands.value = [{ key: s.cmd ?? `${s.name}-${s.ts}`, name: s.name, cmd: s.cmd, stages: [s], done: final }, ...rows].slice(0, 20);
      return;
    }
    const r = rows[i] as CommandRow;
    this.commands.value = rows.map((x, j) => (j === i ? { ...r, stages: [...r.stages, s], done: final } : x));
  }
}
