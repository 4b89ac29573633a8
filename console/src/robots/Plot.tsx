// A live plot of one numeric telemetry field with uPlot: a rolling window of the last seconds,
// redrawn at most once per animation frame however fast samples come, so a 50 Hz channel costs
// one draw per frame, not fifty per second.

import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Seconds of history a plot shows. */
export const WINDOW_S = 30;

/** The samples of one series, appended as they come and dropped once out of the window. */
export class Series {
  readonly xs: number[] = [];
  readonly ys: number[] = [];
  /** Set by each push; the plot clears it when it draws. */
  dirty = false;

  push(tSeconds: number, y: number): void {
    this.xs.push(tSeconds);
    this.ys.push(y);
    const from = tSeconds - WINDOW_S;
    let drop = 0;
    while (drop < this.xs.length && (this.xs[drop] as number) < from) drop++;
    if (drop > 0) {
      this.xs.splice(0, drop);
      this.ys.splice(0, drop);
    }
    this.dirty = true;
  }
}

/**
 * The options of every chart of the console: the theme's colours, no legend or cursor, and on x
 * the last `windowS` seconds up to the newest point (also while there are too few points for
 * uPlot to pick a range itself).
 */
export function chartOptions(labels: string[], width: number, height: number, windowS: number): uPlot.Options {
  const css = getComputedStyle(document.documentElement);
  const colour = (v: string, fallback: string) => css.getPropertyValue(v).trim() || fallback;
  const grid = colour('--line', '#dfe2ea');
  const axis = { stroke: colour('--muted', '#5d6478'), grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const strokes = [colour('--accent', '#2454c7'), '#d9822b', '#1e7d3a', '#8e44ad', '#c0392b', '#16a085'];
  return {
    width,
    height,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: true, range: (_u, _min, max) => [max - windowS, max] } },
    axes: [axis, { ...axis, size: 48 }],
    series: [{}, ...labels.map((label, i) => ({ label, stroke: strokes[i % strokes.length], width: 1.5, points: { show: false } }))],
  };
}

export function Plot({ label, series, width = 320, height = 120 }: { label: string; series: Series; width?: number; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const u = new uPlot(chartOptions([label], width, height, WINDOW_S), [series.xs, series.ys], el);
    let frame = requestAnimationFrame(function draw() {
      if (series.dirty) {
        series.dirty = false;
        u.setData([series.xs, series.ys]);
      }
      frame = requestAnimationFrame(draw);
    });
    return () => {
      cancelAnimationFrame(frame);
      u.destroy();
    };
  }, [series, label, width, height]);
  return (
    <figure class="plot">
      <figcaption>{label}</figcaption>
      <div ref={box} role="img" aria-label={`Live plot of ${label}`} />
    </figure>
  );
}
