/** uPlot wrappers: time axes in the server's day zone, sized to their container, dense defaults. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { session } from './api.ts';
import { day, krw, pct, time } from './format.ts';

export type Fmt = 'count' | 'krw' | 'pct';
export interface Line { label: string; color: string; scale?: string; dash?: number[]; fill?: boolean; bars?: boolean; fmt: Fmt; width?: number }

const fmtValue = (f: Fmt, v: number | null) => v === null || v === undefined ? '—' : f === 'krw' ? krw(v) : f === 'pct' ? pct(v, 2) : Math.round(v).toLocaleString('en-US');
const axisValues = (f: Fmt) => (_u: uPlot, vals: number[]) => vals.map((v) => (f === 'pct' ? pct(v, 1) : f === 'krw' ? krw(v) : !Number.isInteger(v) ? '' : v >= 1000 ? `${v / 1000}k` : String(v)));

export class Chart {
  readonly plot: uPlot;
  #ro: ResizeObserver;

  /** `marks`: x values (seconds) drawn as vertical lines, e.g. the minute an alert fired. */
  constructor(el: HTMLElement, lines: Line[], data: uPlot.AlignedData, height = 180, marks: { x: number; color: string }[] = []) {
    const scales = [...new Set(lines.map((l) => l.scale ?? 'y'))];
    const axes: uPlot.Axis[] = [{ stroke: '#6b7280', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#e5e7eb' }, values: timeTicks, space: 60 }];
    scales.forEach((s, i) => {
      const first = lines.find((l) => (l.scale ?? 'y') === s)!;
      axes.push({
        scale: s, side: i === 0 ? 3 : 1, stroke: i === 0 ? '#6b7280' : first.color, size: first.fmt === 'krw' ? 66 : 58,
        grid: { show: i === 0, stroke: '#eef0f3' }, ticks: { stroke: '#e5e7eb' }, values: axisValues(first.fmt),
      });
    });
    const bars = uPlot.paths.bars!({ size: [0.7, 12] });
    const opts: uPlot.Options = {
      width: el.clientWidth || 600, height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), session.tz),
      cursor: { drag: { x: true, y: false }, points: { size: 6 } },
      legend: { live: true },
      scales: Object.fromEntries(scales.map((s) => [s, { auto: true, range: (_u: uPlot, min: number, max: number) => [Math.min(0, min), max > 0 ? max * 1.08 : 1] as uPlot.Range.MinMax }])),
      axes,
      // Drawn on the canvas (no DOM, no inline style: the page's CSP allows none).
      hooks: marks.length ? {
        draw: [(u: uPlot) => {
          const ctx = u.ctx;
          ctx.save();
          ctx.lineWidth = 2 * uPlot.pxRatio;
          for (const m of marks) {
            const x = Math.round(u.valToPos(m.x, 'x', true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.strokeStyle = m.color;
            ctx.setLineDash([4 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
            ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
          }
          ctx.restore();
        }],
      } : undefined,
      series: [
        { label: 'time' },
        ...lines.map((l): uPlot.Series => ({
          label: l.label, stroke: l.color, width: l.width ?? 1.5, scale: l.scale ?? 'y', dash: l.dash, spanGaps: false,
          fill: l.fill ? `${l.color}22` : l.bars ? `${l.color}aa` : undefined, paths: l.bars ? bars : undefined, points: { show: false },
          value: (_u, v) => fmtValue(l.fmt, v),
        })),
      ],
    };
    this.plot = new uPlot(opts, data, el);
    this.#ro = new ResizeObserver(() => this.plot.setSize({ width: el.clientWidth, height }));
    this.#ro.observe(el);
  }

  set(data: uPlot.AlignedData): void { this.plot.setData(data); }
  destroy(): void { this.#ro.disconnect(); this.plot.destroy(); }
}

/** 24-hour ticks in the server's zone; the date under the first tick of each day, dates only for daily ticks. */
function timeTicks(_u: uPlot, splits: number[], _ax: number, _space: number, incr: number): string[] {
  let prevDay = '';
  return splits.map((s) => {
    const ms = s * 1000;
    const d = day(ms);
    if (incr >= 86_400) return d;
    const label = d !== prevDay ? `${time(ms)}\n${d}` : time(ms);
    prevDay = d;
    return label;
  });
}

/** uPlot's x values are seconds. */
export const secs = (ms: number[]) => ms.map((t) => t / 1000);
