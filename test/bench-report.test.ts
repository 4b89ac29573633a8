// `npm run bench -- report`: the results a scenario wrote become one self-contained HTML page whose
// script draws a latency-distribution chart and a CPU-per-delivery chart with uPlot. The page's
// script runs here against a recording uPlot, so what it would draw is checked, not just its text.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import t from 'tap';
import { PERCENTILES } from '../bench/percentiles.js';
import { type BenchReport, nines, renderReport, writeReport } from '../bench/report.js';

const latency = (base: number) => PERCENTILES.map((p, i) => base * (1 + i / 2) + (p === 100 ? 10 : 0));

const peers: BenchReport = {
  scenario: 'peers',
  command: 'peers --runs 3 --duration 10 --members 200',
  options: { runs: '3', duration: '10', members: '200', json: undefined },
  at: '2026-12-05T16:00:00.000Z',
  machine: { cpus: 2, model: 'Test CPU', memoryGiB: 24, node: 'v20.20.2' },
  results: {
    'bare uWS': { median: { latencyMs: latency(1), serverUsPerDelivery: 0.7, dbUsPerDelivery: Number.NaN }, runs: [] },
    'hub (PostgreSQL)': { median: { latencyMs: latency(2), serverUsPerDelivery: 2.1, dbUsPerDelivery: 1.5 }, runs: [] },
  },
  lines: ['peers: 1 room × 200 subscribers <&> "quoted"', 'bare uWS 80000 deliveries/s'],
};
const idle: BenchReport = {
  ...peers,
  scenario: 'idle',
  results: {
    hub: { median: { perConnKiB: 1.8, overallKiB: 3.9, latencyMs: [1, 2] }, runs: [] },
    'bare uWS': { median: { perConnKiB: 0.5, overallKiB: 0.7 }, runs: [] },
  },
  lines: ['idle: 5.6 KiB'],
};

/** Runs the page's own scripts (after uPlot) against a fake DOM, recording each chart uPlot is asked for. */
function draw(html: string): { opts: any; data: (number | null)[][] }[] {
  const charts: { opts: any; data: (number | null)[][] }[] = [];
  const json = (id: string) => new RegExp(`<script type="application/json" id="${id}">(.*?)</script>`, 's').exec(html)?.[1] as string;
  const chartJson = [...html.matchAll(/<div class="chart" data-chart><script type="application\/json">(.*?)<\/script><\/div>/gs)].map((m) => m[1]);
  const elements = chartJson.map((text) => ({ querySelector: () => ({ textContent: text }), parentElement: { clientWidth: 800 } }));
  class FakeUPlot {
    static paths = { bars: () => () => null };
    constructor(opts: any, data: (number | null)[][]) {
      charts.push({ opts, data });
    }
  }
  const document = {
    getElementById: (id: string) => ({ textContent: json(id) }),
    querySelectorAll: (sel: string) => (sel === '[data-chart]' ? elements : []),
  };
  const scripts = [...html.matchAll(/<script>(.*?)<\/script>/gs)].map((m) => m[1] as string);
  vm.runInNewContext(scripts.at(-1) as string, { document, uPlot: FakeUPlot, JSON, Math, Number });
  return charts;
}

t.test('nines spread the tail: p90 → 1, p99 → 2, p99.9 → 3, the maximum one step past the last', async (t) => {
  t.equal(nines(0), 0);
  t.equal(nines(90), 1);
  t.equal(Math.round(nines(99) * 1e9) / 1e9, 2);
  t.equal(Math.round(nines(99.9) * 1e9) / 1e9, 3);
  t.equal(nines(100), 5);
  const xs = PERCENTILES.map(nines);
  t.ok(
    xs.every((x, i) => i === 0 || x > (xs[i - 1] as number)),
    'strictly increasing, as uPlot needs its x values',
  );
});

t.test('the page holds every report, escaped, with uPlot inlined, and draws both charts', async (t) => {
  const html = renderReport([peers, idle]);
  t.match(html, /^<!doctype html>/);
  t.match(html, 'peers: 1 room × 200 subscribers &lt;&amp;&gt; &quot;quoted&quot;', 'printed lines are escaped');
  t.match(html, '<a href="#peers">peers</a> · <a href="#idle">idle</a>');
  t.match(html, 'npm run bench -- peers --runs 3 --duration 10 --members 200</code>', 'the command that reproduces it');
  t.notMatch(html, /<script src=/, 'nothing loaded from elsewhere: it opens from disk');
  t.ok(html.includes('uPlot'), 'uPlot is inlined');

  const charts = draw(html);
  t.equal(charts.length, 3, "peers' latency and CPU, idle's memory; latencies at other percentiles (an older bench) are left out");
  const [lat, cpu, memory] = charts as { opts: any; data: (number | null)[][] }[] as [
    { opts: any; data: (number | null)[][] },
    { opts: any; data: (number | null)[][] },
    { opts: any; data: (number | null)[][] },
  ];
  t.same(
    lat.opts.series.slice(1).map((s: { label: string }) => s.label),
    ['bare uWS', 'hub (PostgreSQL)'],
  );
  t.same(lat.data[0], PERCENTILES.map(nines));
  t.same(lat.data[2], latency(2));
  t.equal(lat.opts.scales.y.distr, 3, 'latency on a log scale');
  const xAxis = lat.opts.axes[0];
  t.same(xAxis.values(null, [nines(90), nines(99.9), nines(100)]), ['p90', 'p99.9', 'max'], 'percentiles labelled as such');
  t.same(xAxis.splits(), [50, 90, 99, 99.9, 99.99, 100].map(nines), 'ticks at the percentiles a load tester reads');

  t.same(cpu.data[0], [0, 1]);
  t.same(cpu.data[1], [null, 3.6], 'the total bar: server plus database, none without a database');
  t.same(cpu.data[2], [0.7, 2.1], "the server's own share, drawn over it");
  t.same(cpu.opts.axes[0].values(null, [0, 1]), ['bare uWS', 'hub (PostgreSQL)']);
  t.same(
    cpu.opts.series.slice(1).map((x: { label: string }) => x.label),
    ['with the database', 'server process'],
  );

  t.same(memory.data, [
    [0, 1],
    [3.9, 0.7],
    [1.8, 0.5],
  ]);
  t.same(memory.opts.axes[0].values(null, [0, 1]), ['hub', 'bare uWS']);
  t.match(memory.opts.series[2].label, /^marginal/);
});

t.test('`npm run bench -- report` reads result files and writes the page', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sb-report-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'idle.json'), JSON.stringify(idle));
  await writeFile(path.join(dir, 'peers.json'), JSON.stringify(peers));
  await writeFile(path.join(dir, 'notes.txt'), 'not a result');
  const out = path.join(dir, 'report.html');
  t.same(await writeReport([], dir, out, ['peers', 'idle']), ['peers', 'idle'], 'every .json in the directory, in the scenarios’ order');
  const html = await readFile(out, 'utf8');
  t.match(html, '<section id="peers">');
  t.match(html, '<section id="idle">');
  t.same(await writeReport([path.join(dir, 'idle.json')], dir, out, ['peers', 'idle']), ['idle'], 'or just the files named');
});
