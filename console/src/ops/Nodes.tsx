// The cluster's nodes as they are now, and their figures over the last minutes as small charts
// (one line per node): asked every POLL_MS while the page is open; rates come from the counters'
// change between two answers.

import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import type { NodeFigures } from '../../../src/protocol/node-figures.js';
import { api } from '../api.js';
import { chartOptions } from '../robots/Plot.js';
import { Alert } from '../ui.js';

const POLL_MS = 2000;
/** Answers kept: five minutes of polls. */
const KEEP = 150;

interface Poll {
  /** Seconds (the console's clock). */
  t: number;
  nodes: Map<string, NodeFigures>;
}

/** A figure per node at each poll: a gauge as it was, or a counter's rate since the poll before. */
type Measure = (now: NodeFigures, before: NodeFigures | undefined) => number | null;
/** A counter's rate; none across a restart of the node (its counters began again). */
const rate =
  (k: keyof NodeFigures): Measure =>
  (n, b) =>
    b && n.at > b.at && n.startedAt === b.startedAt ? (((n[k] as number) - (b[k] as number)) * 1000) / (n.at - b.at) : null;
const CHARTS: { label: string; measure: Measure }[] = [
  { label: 'WebSocket connections', measure: (n) => n.connections },
  { label: 'Messages stored / s', measure: rate('published') },
  { label: 'Frames delivered / s', measure: rate('deliveries') },
  {
    label: 'Mean commit latency (ms)',
    measure: (n, b) => (b && n.commits > b.commits ? ((n.commitSeconds - b.commitSeconds) * 1000) / (n.commits - b.commits) : null),
  },
  { label: 'HTTP requests / s', measure: rate('httpRequests') },
  { label: 'CPU (%)', measure: (n, b) => (b && n.at > b.at && n.startedAt === b.startedAt ? ((n.cpuSeconds - b.cpuSeconds) * 100_000) / (n.at - b.at) : null) },
];

function Chart({ label, polls, ids }: { label: string; polls: Poll[]; ids: string[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const chart = CHARTS.find((c) => c.label === label) as (typeof CHARTS)[number];
  const data: uPlot.AlignedData = [
    polls.map((p) => p.t),
    ...ids.map((id) =>
      polls.map((p, i) => {
        const n = p.nodes.get(id);
        return n ? chart.measure(n, polls[i - 1]?.nodes.get(id)) : null;
      }),
    ),
  ];
  useEffect(() => {
    if (!box.current) return;
    plot.current = new uPlot(chartOptions(ids, 300, 110, (KEEP * POLL_MS) / 1000), data, box.current);
    return () => plot.current?.destroy();
  }, [ids.join()]);
  useEffect(() => {
    plot.current?.setData(data);
  });
  return (
    <figure class="plot">
      <figcaption>{label}</figcaption>
      <div ref={box} role="img" aria-label={`Chart of ${label}`} />
    </figure>
  );
}

const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
function uptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h`;
}

export function Nodes() {
  const [polls, setPolls] = useState<Poll[]>([]);
  const [partial, setPartial] = useState(false);
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      // A hidden tab asks nothing: each answer costs every node a readiness check.
      if (document.hidden) {
        timer = setTimeout(poll, POLL_MS);
        return;
      }
      try {
        const r = await api<{ nodes: NodeFigures[]; partial: boolean }>('GET', '/admin/nodes');
        if (stop) return;
        setPartial(r.partial);
        setError(undefined);
        setPolls((ps) => [...ps, { t: Date.now() / 1000, nodes: new Map(r.nodes.map((n) => [n.node, n])) }].slice(-KEEP));
      } catch (e) {
        setError((e as Error).message);
      }
      if (!stop) timer = setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, []);

  const last = polls[polls.length - 1];
  const ids = [...new Set(polls.flatMap((p) => [...p.nodes.keys()]))].sort();
  return (
    <section aria-label="Nodes">
      <h3>Nodes</h3>
      <Alert error={error} />
      {partial && <p class="error">A node did not answer in time: it is missing below.</p>}
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Node</th>
            <th scope="col">Ready</th>
            <th scope="col">Up</th>
            <th scope="col">Connections</th>
            <th scope="col">Robots</th>
            <th scope="col">Actors</th>
            <th scope="col">Memory</th>
            <th scope="col">Version</th>
          </tr>
        </thead>
        <tbody>
          {ids.map((id) => {
            const n = last?.nodes.get(id);
            return (
              <tr key={id}>
                <td>
                  <b>{id}</b> <span class="muted">{n?.url}</span>
                </td>
                <td>{n ? (n.ready ? 'ready' : 'not ready') : 'gone'}</td>
                <td>{n ? uptime(n.at - n.startedAt) : ''}</td>
                <td>{n?.connections}</td>
                <td>{n?.robots}</td>
                <td>{n?.actors}</td>
                <td>{n ? mib(n.rssBytes) : ''}</td>
                <td>{n?.version}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {ids.length > 0 && (
        <div class="plots">
          {CHARTS.map((c) => (
            <Chart key={c.label} label={c.label} polls={polls} ids={ids} />
          ))}
        </div>
      )}
    </section>
  );
}
