/**
 * How the report lays out a table: cells, number formats, verdicts, and the aiecs-beside-BullMQ
 * row that most tables use. Shared by report.ts and report-scale.ts.
 */
import { ratio } from './stats.js';

export type Cell = string | number | undefined;

export const fmt = (value: number | undefined, digits = 0): string =>
  value === undefined
    ? '-'
    : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export const verdict = (ok: boolean | undefined): string => (ok === undefined ? '' : ok ? 'PASS' : 'MISS');

export function table(title: string, header: string[], rows: Cell[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === undefined ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths
    .map((w) => '-'.repeat(w))
    .join('  ')
    .trimEnd();
  return [title, line(cells[0] ?? []), rule, ...cells.slice(1).map(line)].join('\n');
}

export const HEADER = ['', 'aiecs', 'BullMQ', 'aiecs/BullMQ', 'goal', ''];

/** A HEADER row: both figures with `digits` decimals, their ratio, and the goal with its verdict. */
export function compareRow(
  label: string,
  aiecs: number | undefined,
  bullmq: number | undefined,
  digits = 0,
  goal = '',
  judged = '',
): Cell[] {
  return [label, fmt(aiecs, digits), fmt(bullmq, digits), fmt(ratio(aiecs, bullmq), 2), goal, judged];
}

/** Every run's figure, as the "all runs" rows list them. */
export const runList = (xs: readonly number[] | undefined, digits = 0): string =>
  (xs ?? []).map((x) => fmt(x, digits)).join(', ');

/** The table of a section that could not run: its title and why. */
export const skippedTable = (title: string, why: string): string => `${title}\nskipped: ${why}`;
