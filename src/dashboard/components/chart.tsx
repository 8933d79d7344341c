// A time series chart drawn by uPlot. uPlot sizes its elements through the CSSOM, which the CSP
// allows; its stylesheet is a file (imported in main.tsx).
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface Series {
  label: string;
  values: Array<number | null>;
}

const PALETTE = ['--c1', '--c2', '--c3', '--c4'];

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function options(title: string, unit: string, series: Series[], width: number): uPlot.Options {
  const axis = cssVar('--muted');
  const grid = cssVar('--border');
  return {
    title,
    width,
    height: 180,
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    scales: {
      // Always the last hour: uPlot's own range for one point (or none) spans years.
      x: {
        time: true,
        range: (_u, _min, max) => {
          const end = Number.isFinite(max) ? max : Date.now() / 1000;
          return [end - 3600, end];
        },
      },
      y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] },
    },
    axes: [
      { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
      {
        stroke: axis,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid },
        size: 76,
        values: (_u, splits) => splits.map((v) => `${+v.toFixed(2)}${unit}`),
      },
    ],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: cssVar(PALETTE[i % PALETTE.length]!),
        width: 2,
        spanGaps: true,
        points: { show: false },
      })),
    ],
  };
}

/** `xs` in epoch seconds; one line per series. Redrawn in place when the data changes. */
export function Chart({
  title,
  unit,
  xs,
  series,
}: {
  title: string;
  unit: string;
  xs: number[];
  series: Series[];
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join('|');
  const data = [xs, ...series.map((s) => s.values)] as uPlot.AlignedData;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const build = () => new uPlot(options(title, unit, series, el.clientWidth || 400), data, el);
    plot.current = build();
    const resize = new ResizeObserver(() =>
      plot.current?.setSize({ width: el.clientWidth || 400, height: 180 }),
    );
    resize.observe(el);
    const scheme = window.matchMedia('(prefers-color-scheme: dark)');
    // Colours come from the theme: a theme switch rebuilds the chart.
    const rebuild = () => {
      plot.current?.destroy();
      plot.current = build();
    };
    scheme.addEventListener('change', rebuild);
    return () => {
      resize.disconnect();
      scheme.removeEventListener('change', rebuild);
      plot.current?.destroy();
      plot.current = null;
    };
    // The chart is rebuilt only when its lines change; new points go through setData below.
  }, [shape, title, unit]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return <div class="chart" ref={box} />;
}
