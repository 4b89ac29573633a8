// `npm run bench -- report [--out FILE] [result.json …]`: the latest results of every scenario
// (bench/results/*.json, which each scenario writes unless --json says elsewhere) as one
// self-contained HTML page: the printed figures of each run, and uPlot charts of the latency
// distributions and of the server (and database) CPU per delivery side by side.

import { readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PERCENTILES } from './percentiles.js';

/** What a scenario writes with --json (see bench/run.ts). */
export interface BenchReport {
  scenario: string;
  /** The arguments it ran with, as typed after `npm run bench --`. */
  command: string;
  options: Record<string, unknown>;
  at: string;
  machine: Record<string, unknown>;
  results: Record<string, { median: unknown; runs: unknown[] }>;
  lines: string[];
}

/**
 * A uPlot chart: its title, options (less size) and data, drawn by the page's script. Latency: x,
 * then one line per series. Bars: x (the series' index), then a bar behind and a bar in front for
 * each series, labelled `bars`.
 */
interface Chart {
  title: string;
  kind: 'latency' | 'bars';
  series: string[];
  data: (number | null)[][];
  yLabel: string;
  bars?: [behind: string, inFront: string];
}

const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const field = (r: { median: unknown }, k: string): unknown => (r.median as Record<string, unknown> | null)?.[k];

/**
 * Percentile p on the "nines" axis: 90 → 1, 99 → 2, 99.9 → 3; the maximum sits one step beyond
 * the last percentile below 100, so the tail is spread out as a load tester reads it.
 */
export function nines(p: number): number {
  if (p < 100) return -Math.log10(1 - p / 100);
  return Math.ceil(nines(PERCENTILES.filter((q) => q < 100).at(-1) as number)) + 1;
}

/** The charts one report's results call for. */
export function chartsOf(r: BenchReport): Chart[] {
  const names = Object.keys(r.results);
  const charts: Chart[] = [];
  // Results written with another percentile list (an older bench) are left out of the chart.
  const withLatency = names.filter((n) => (field(r.results[n] as { median: unknown }, 'latencyMs') as unknown[] | undefined)?.length === PERCENTILES.length);
  if (withLatency.length > 0) {
    charts.push({
      title: 'Latency distribution (ms, log scale) by percentile',
      kind: 'latency',
      series: withLatency,
      data: [PERCENTILES.map(nines), ...withLatency.map((n) => (field(r.results[n] as { median: unknown }, 'latencyMs') as unknown[]).map(num))],
      yLabel: 'ms',
    });
  }
  const withCpu = names.filter((n) => num(field(r.results[n] as { median: unknown }, 'serverUsPerDelivery')) !== null);
  if (withCpu.length > 0) {
    const server = withCpu.map((n) => num(field(r.results[n] as { median: unknown }, 'serverUsPerDelivery')) as number);
    const db = withCpu.map((n) => num(field(r.results[n] as { median: unknown }, 'dbUsPerDelivery')));
    charts.push({
      title: 'CPU per delivery (µs): the server process, and the database when there is one',
      kind: 'bars',
      series: withCpu,
      // The total behind, the server's own share in front: the database's share shows above it.
      data: [withCpu.map((_, i) => i), db.map((d, i) => (d === null ? null : d + (server[i] as number))), server],
      yLabel: 'µs',
      bars: ['with the database', 'server process'],
    });
  }
  const withMemory = names.filter((n) => num(field(r.results[n] as { median: unknown }, 'overallKiB')) !== null);
  if (withMemory.length > 0) {
    const at = (k: string) => withMemory.map((n) => num(field(r.results[n] as { median: unknown }, k)));
    charts.push({
      title: 'Memory per idle connection (KiB of RSS)',
      kind: 'bars',
      series: withMemory,
      data: [withMemory.map((_, i) => i), at('overallKiB'), at('perConnKiB')],
      yLabel: 'KiB',
      bars: ['over all (with what a burst grows once)', 'marginal (one more connection)'],
    });
  }
  return charts;
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
/** JSON safe inside a <script> element. */
const scriptJson = (x: unknown) => JSON.stringify(x).replace(/</g, '\\u003c');

const PAGE_SCRIPT = `
const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];
const percentiles = JSON.parse(document.getElementById('percentiles').textContent);
for (const el of document.querySelectorAll('[data-chart]')) {
  const c = JSON.parse(el.querySelector('script').textContent);
  const width = Math.min(900, el.parentElement.clientWidth || 900);
  if (c.kind === 'latency') {
    const labelled = [50, 90, 99, 99.9, 99.99, 100];
    const ticks = percentiles.map((p, i) => [c.data[0][i], p === 100 ? 'max' : 'p' + p, p]).filter((t) => labelled.includes(t[2]));
    new uPlot({
      title: c.title, width, height: 360,
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: [
        { label: 'percentile', values: (u, splits) => splits.map((v) => (ticks.find(([x]) => Math.abs(x - v) < 1e-9) || [0, ''])[1]), splits: () => ticks.map(([x]) => x) },
        { label: c.yLabel },
      ],
      series: [{ label: 'percentile', value: (u, v, si, i) => (i == null ? '' : percentiles[i] === 100 ? 'max' : 'p' + percentiles[i]) },
        ...c.series.map((s, i) => ({ label: s, stroke: palette[i % palette.length], width: 2, points: { show: true } }))],
    }, c.data, el);
  } else {
    // The bar behind drawn first, the one in front over it.
    const bars = uPlot.paths.bars({ size: [0.5, 80] });
    new uPlot({
      title: c.title, width, height: 320,
      scales: { x: { time: false, range: [-0.6, c.series.length - 0.4] }, y: { range: (u, min, max) => [0, max * 1.1] } },
      axes: [
        { values: (u, splits) => splits.map((v) => c.series[v] ?? ''), splits: () => c.series.map((_, i) => i), size: 50 },
        { label: c.yLabel },
      ],
      series: [{ label: 'server', value: (u, v) => (v == null ? '' : c.series[v]) },
        { label: c.bars[0], fill: palette[1], stroke: palette[1], paths: bars, points: { show: false } },
        { label: c.bars[1], fill: palette[0], stroke: palette[0], paths: bars, points: { show: false } }],
    }, c.data, el);
  }
}
`;

/** The page: every report's figures and charts, uPlot inlined so it opens from disk. */
export function renderReport(reports: BenchReport[]): string {
  const require = createRequire(import.meta.url);
  const uplotJs = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
  const uplotCss = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
  const sections = reports.map((r) => {
    const charts = chartsOf(r)
      .map((c) => `<div class="chart" data-chart><script type="application/json">${scriptJson(c)}</script></div>`)
      .join('\n');
    return `<section id="${escapeHtml(r.scenario)}">
<h2>${escapeHtml(r.scenario)}</h2>
<p class="meta">${escapeHtml(r.at)} · ${escapeHtml(String(r.machine.cpus))} × ${escapeHtml(String(r.machine.model))}, ${escapeHtml(String(r.machine.memoryGiB))} GiB, Node ${escapeHtml(String(r.machine.node))} · <code>npm run bench -- ${escapeHtml(r.command)}</code></p>
<pre>${escapeHtml(r.lines.join('\n'))}</pre>
${charts}
</section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchboard benchmarks</title>
<style>${uplotCss}
body { font: 15px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 12px; }
.meta { color: #666; font-size: 13px; } .chart { margin: 1em 0 2em; }
</style></head>
<body>
<h1>Switchboard benchmarks</h1>
<p>The latest result of each scenario, medians of its runs; every figure beside its baseline measured in the same run. Scenarios: ${reports.map((r) => `<a href="#${escapeHtml(r.scenario)}">${escapeHtml(r.scenario)}</a>`).join(' · ')}.</p>
${sections.join('\n')}
<script type="application/json" id="percentiles">${scriptJson(PERCENTILES)}</script>
<script>${uplotJs}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}

/**
 * Renders the reports in `files` (default: every .json in `dir`) to `out`, in the order of
 * `order` (scenario names); returns the scenarios written.
 */
export async function writeReport(files: string[], dir: string, out: string, order: string[]): Promise<string[]> {
  const paths = files.length > 0 ? files : (await readdir(dir)).filter((f) => f.endsWith('.json')).map((f) => path.join(dir, f));
  const reports = (await Promise.all(paths.map(async (f) => JSON.parse(await readFile(f, 'utf8')) as BenchReport))).sort(
    (a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario),
  );
  await writeFile(out, renderReport(reports));
  return reports.map((r) => r.scenario);
}
