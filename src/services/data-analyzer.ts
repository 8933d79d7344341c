import { ValidationError } from '../core/errors.js';
import type { TaskContext } from '../core/task-context.js';
import { checkpoint, round } from './cooperative.js';

export type ColumnType = 'number' | 'boolean' | 'date' | 'string';

export interface ValueCount {
  value: string;
  count: number;
}

export interface ColumnProfile {
  name: string;
  type: ColumnType;
  /** Non-missing values. */
  count: number;
  missing: number;
  distinct: number;
  // number columns
  min?: number | string;
  max?: number | string;
  mean?: number;
  median?: number;
  /** Sample standard deviation (n − 1). */
  stddev?: number;
  p25?: number;
  p75?: number;
  /** Values outside the Tukey fences (1.5 × IQR beyond p25/p75). */
  outliers?: number;
  // boolean columns
  true_count?: number;
  false_count?: number;
  // string and boolean columns
  top_values?: ValueCount[];
}

export interface Correlation {
  a: string;
  b: string;
  r: number;
  /** Rows where both columns have a value. */
  n: number;
}

export interface DatasetAnalysis {
  rows: number;
  delimiter: string;
  columns: ColumnProfile[];
  correlations: Correlation[];
  report_markdown: string;
}

/** How often long loops yield and check for abort. */
const CHECK_EVERY = 5_000;
const MISSING = new Set(['', 'na', 'n/a', 'nan', 'null', 'none', '-']);
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const TRUE = new Set(['true', 'yes', 'y']);
const FALSE = new Set(['false', 'no', 'n']);
// ISO 8601 dates, optionally with a time; other layouts (03/04/2024) are ambiguous between locales.
const DATE = /^\d{4}[-/]\d{2}[-/]\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

function isMissing(v: string): boolean {
  return MISSING.has(v.toLowerCase());
}

function parseDate(v: string): number {
  return DATE.test(v) ? Date.parse(v.replace(/\//g, '-')) : NaN;
}

/** The value a cell stands for, so "1.0" and "1", or "yes" and "true", count as one distinct value. */
function normalized(type: ColumnType, v: string): unknown {
  if (type === 'number') return Number(v);
  if (type === 'boolean') return TRUE.has(v.toLowerCase());
  if (type === 'date') return parseDate(v);
  return v;
}

function inferType(values: string[]): ColumnType {
  if (!values.length) return 'string';
  if (values.every((v) => NUMBER.test(v))) return 'number';
  if (values.every((v) => TRUE.has(v.toLowerCase()) || FALSE.has(v.toLowerCase()))) return 'boolean';
  if (values.every((v) => !Number.isNaN(parseDate(v)))) return 'date';
  return 'string';
}

/** Linear interpolation between closest ranks (numpy's default, Excel's PERCENTILE.INC). */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

/** Pearson's r over rows where both are present; undefined when a side has no variance or n < 3. */
export function pearson(xs: number[], ys: number[]): { r: number; n: number } | undefined {
  let n = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as number;
    const y = ys[i] as number;
    if (Number.isNaN(x) || Number.isNaN(y)) continue;
    n++;
    sx += x;
    sy += y;
  }
  if (n < 3) return undefined;
  const mx = sx / n;
  const my = sy / n;
  // Second pass on deviations: the one-pass formula loses precision on large values.
  let cov = 0;
  let vx = 0;
  let vy = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as number;
    const y = ys[i] as number;
    if (Number.isNaN(x) || Number.isNaN(y)) continue;
    cov += (x - mx) * (y - my);
    vx += (x - mx) ** 2;
    vy += (y - my) ** 2;
  }
  if (vx === 0 || vy === 0) return undefined;
  return { r: Math.max(-1, Math.min(1, cov / Math.sqrt(vx * vy))), n };
}

function topValues(values: string[], limit = 5): ValueCount[] {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([value, count]) => ({ value, count }));
}

function numberStats(values: number[]): Partial<ColumnProfile> {
  const sorted = Float64Array.from(values).sort();
  const list = Array.from(sorted);
  const n = list.length;
  const mean = list.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? list.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1) : 0;
  const p25 = percentile(list, 0.25);
  const p75 = percentile(list, 0.75);
  const iqr = p75 - p25;
  const outliers = list.filter((v) => v < p25 - 1.5 * iqr || v > p75 + 1.5 * iqr).length;
  return {
    min: list[0] as number,
    max: list[n - 1] as number,
    mean: round(mean, 6),
    median: round(percentile(list, 0.5), 6),
    stddev: round(Math.sqrt(variance), 6),
    p25: round(p25, 6),
    p75: round(p75, 6),
    outliers,
  };
}

function guessDelimiter(csv: string): string {
  const firstLine = csv.slice(0, csv.search(/\r?\n|$/));
  let best = ',';
  let bestCount = 0;
  for (const d of [',', ';', '\t', '|']) {
    const count = firstLine.split(d).length - 1;
    if (count > bestCount) {
      best = d;
      bestCount = count;
    }
  }
  return best;
}

interface ParsedInput {
  csv: string;
  delimiter: string;
  columns: string[] | undefined;
}

function validateInput(input: Record<string, unknown>): ParsedInput {
  const issues = [];
  const { csv, delimiter, columns } = input;
  if (typeof csv !== 'string') {
    issues.push({ field: 'input_data.csv', message: csv === undefined ? 'is required' : 'must be a string' });
  } else if (!csv.trim()) {
    issues.push({ field: 'input_data.csv', message: 'must not be empty' });
  }
  if (
    delimiter !== undefined &&
    (typeof delimiter !== 'string' || delimiter.length === 0 || /[\r\n"]/.test(delimiter))
  ) {
    issues.push({
      field: 'input_data.delimiter',
      message: 'must be a non-empty string without quotes or newlines',
    });
  }
  if (
    columns !== undefined &&
    (!Array.isArray(columns) || columns.length === 0 || !columns.every((c) => typeof c === 'string'))
  ) {
    issues.push({ field: 'input_data.columns', message: 'must be a non-empty array of column names' });
  }
  if (issues.length) throw new ValidationError(issues);
  const text = csv as string;
  return {
    csv: text,
    delimiter: (delimiter as string | undefined) ?? guessDelimiter(text),
    columns: columns as string[] | undefined,
  };
}

async function parseCsv(csv: string, delimiter: string): Promise<string[][]> {
  // Loaded on the first analysis, not when a worker starts: most workers never parse a CSV.
  const { parse } = await import('csv-parse/sync');
  try {
    return parse(csv, { delimiter, bom: true, skip_empty_lines: true, trim: true }) as string[][];
  } catch (err) {
    // csv-parse messages name the line ("Invalid Record Length: expect 3, got 2 on line 4").
    const message = err instanceof Error ? err.message : String(err);
    throw new ValidationError([{ field: 'input_data.csv', message: `is not valid CSV: ${message}` }]);
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

function fmt(v: number | string | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  return String(round(v, 4));
}

function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function code(name: string): string {
  return `\`${name.replace(/`/g, "'")}\``;
}

function strength(r: number): string {
  const a = Math.abs(r);
  const size =
    a >= 0.9 ? 'very strong' : a >= 0.7 ? 'strong' : a >= 0.4 ? 'moderate' : a >= 0.2 ? 'weak' : 'negligible';
  return `${size} ${r >= 0 ? 'positive' : 'negative'}`;
}

const ID_NAME = /(?:^|[^a-z])id$|^id(?:[^a-z]|$)|uuid|guid/i;

function buildReport(rows: number, columns: ColumnProfile[], correlations: Correlation[]): string {
  const byType = new Map<ColumnType, number>();
  for (const c of columns) byType.set(c.type, (byType.get(c.type) ?? 0) + 1);
  const mix = [...byType.entries()].map(([t, n]) => `${n} ${t}`).join(', ');
  const lines = [
    '# Dataset report',
    '',
    `**${rows} rows × ${columns.length} columns** (${mix}).`,
    '',
    '## Columns',
    '',
    '| Column | Type | Count | Missing | Distinct | Mean | Median | Std dev | Min | Max | Top value |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const c of columns) {
    const top = c.top_values?.[0];
    lines.push(
      `| ${[
        cell(c.name),
        c.type,
        String(c.count),
        String(c.missing),
        String(c.distinct),
        fmt(c.mean),
        fmt(c.median),
        fmt(c.stddev),
        cell(fmt(c.min)),
        cell(fmt(c.max)),
        top ? cell(`${top.value} (${top.count})`) : '',
      ].join(' | ')} |`,
    );
  }

  const findings: string[] = [];
  const strongest = correlations[0];
  if (strongest) {
    findings.push(
      `Strongest correlation: ${code(strongest.a)} and ${code(strongest.b)}, r = ${fmt(strongest.r)} ` +
        `(${strength(strongest.r)}, n = ${strongest.n}).`,
    );
  }
  const withMissing = columns.filter((c) => c.missing > 0).sort((a, b) => b.missing - a.missing);
  if (withMissing.length) {
    const list = withMissing.map(
      (c) => `${code(c.name)} ${c.missing} (${round((100 * c.missing) / rows, 1)} %)`,
    );
    findings.push(`Columns with missing values: ${list.join(', ')}.`);
  } else {
    findings.push('No missing values.');
  }
  const empty = columns.filter((c) => c.count === 0);
  if (empty.length) findings.push(`Empty columns: ${empty.map((c) => code(c.name)).join(', ')}.`);
  const constant = columns.filter((c) => c.count > 0 && c.distinct === 1);
  if (constant.length) findings.push(`Constant columns: ${constant.map((c) => code(c.name)).join(', ')}.`);
  // Unique text, or a unique column named like a key; unique measurements are not identifiers.
  const ids = columns.filter(
    (c) =>
      rows > 1 &&
      c.count === rows &&
      c.distinct === rows &&
      (c.type === 'string' || (c.type === 'number' && ID_NAME.test(c.name))),
  );
  if (ids.length)
    findings.push(`Unique per row (possible identifiers): ${ids.map((c) => code(c.name)).join(', ')}.`);
  const outliers = columns.filter((c) => (c.outliers ?? 0) > 0);
  if (outliers.length) {
    findings.push(
      `Outliers beyond 1.5 × IQR: ${outliers.map((c) => `${code(c.name)} ${c.outliers ?? 0}`).join(', ')}.`,
    );
  }
  lines.push('', '## Findings', '', ...findings.map((f) => `- ${f}`));

  if (correlations.length) {
    lines.push('', '## Correlations', '', '| A | B | r | n |', '| --- | --- | ---: | ---: |');
    for (const c of correlations.slice(0, 10)) {
      lines.push(`| ${cell(c.a)} | ${cell(c.b)} | ${fmt(c.r)} | ${c.n} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// The service.

/** Profiles a CSV dataset: types, per-column statistics, correlations and a Markdown report. */
export class DataAnalyzer {
  async analyze_dataset(
    input: Record<string, unknown>,
    _context: Record<string, unknown>,
    task: TaskContext,
  ): Promise<DatasetAnalysis> {
    const { signal } = task;
    const { csv, delimiter, columns: wanted } = validateInput(input);

    const records = await parseCsv(csv, delimiter);
    const [header, ...data] = records;
    if (!header) throw new ValidationError([{ field: 'input_data.csv', message: 'has no header row' }]);
    if (!data.length)
      throw new ValidationError([{ field: 'input_data.csv', message: 'has a header but no data rows' }]);
    const names = header.map((h, i) => h || `column_${i + 1}`);
    const duplicates = names.filter((n, i) => names.indexOf(n) !== i);
    if (duplicates.length) {
      throw new ValidationError([
        {
          field: 'input_data.csv',
          message: `duplicate column names in the header: ${[...new Set(duplicates)].join(', ')}`,
        },
      ]);
    }
    if (wanted) {
      const unknown = wanted.filter((w) => !names.includes(w));
      if (unknown.length) {
        throw new ValidationError([
          {
            field: 'input_data.columns',
            message: `unknown columns ${unknown.join(', ')}; the CSV has ${names.join(', ')}`,
          },
        ]);
      }
    }
    const selected = (wanted ? [...new Set(wanted)] : names).map((name) => ({
      name,
      index: names.indexOf(name),
    }));
    task.progress(10, `parsed ${data.length} rows`);
    await checkpoint(signal);

    // Columns as arrays of present values, split from the rows once.
    let ops = 0;
    const present: string[][] = selected.map(() => []);
    const missing: number[] = selected.map(() => 0);
    for (const row of data) {
      selected.forEach(({ index }, j) => {
        const v = row[index] ?? '';
        if (isMissing(v)) missing[j] = (missing[j] ?? 0) + 1;
        else present[j]?.push(v);
      });
      if (++ops % CHECK_EVERY === 0) await checkpoint(signal);
    }
    const types = present.map(inferType);
    task.progress(30, 'inferred column types');
    await checkpoint(signal);

    const numeric = new Map<string, number[]>();
    const profiles: ColumnProfile[] = [];
    for (const [j, { name, index }] of selected.entries()) {
      const values = present[j] ?? [];
      const type = types[j] ?? 'string';
      const profile: ColumnProfile = {
        name,
        type,
        count: values.length,
        missing: missing[j] ?? 0,
        distinct: new Set<unknown>(values.map((v) => normalized(type, v))).size,
      };
      if (type === 'number' && values.length) {
        Object.assign(profile, numberStats(values.map(Number)));
        // Row-aligned with NaN for missing, so correlations can pair rows.
        const aligned = new Array<number>(data.length);
        for (let r = 0; r < data.length; r++) {
          const v = data[r]?.[index] ?? '';
          aligned[r] = isMissing(v) ? NaN : Number(v);
          if (++ops % CHECK_EVERY === 0) await checkpoint(signal);
        }
        numeric.set(name, aligned);
      } else if (type === 'boolean') {
        const truthy = values.filter((v) => TRUE.has(v.toLowerCase())).length;
        profile.true_count = truthy;
        profile.false_count = values.length - truthy;
        profile.top_values = topValues(values.map((v) => String(TRUE.has(v.toLowerCase()))));
      } else if (type === 'date' && values.length) {
        const times = values.map(parseDate).sort((a, b) => a - b);
        profile.min = new Date(times[0] as number).toISOString();
        profile.max = new Date(times[times.length - 1] as number).toISOString();
      } else if (type === 'string') {
        profile.top_values = topValues(values);
      }
      profiles.push(profile);
      await checkpoint(signal);
    }
    task.progress(60, 'computed column statistics');

    const correlations: Correlation[] = [];
    const numericNames = [...numeric.keys()];
    for (let i = 0; i < numericNames.length; i++) {
      for (let k = i + 1; k < numericNames.length; k++) {
        const a = numericNames[i] as string;
        const b = numericNames[k] as string;
        const result = pearson(numeric.get(a) ?? [], numeric.get(b) ?? []);
        if (result) correlations.push({ a, b, r: round(result.r, 6), n: result.n });
        ops += data.length;
        if (ops >= CHECK_EVERY) {
          ops = 0;
          await checkpoint(signal);
        }
      }
    }
    correlations.sort((x, y) => Math.abs(y.r) - Math.abs(x.r));
    task.progress(80, `computed ${correlations.length} correlations`);
    await checkpoint(signal);

    const report_markdown = buildReport(data.length, profiles, correlations);
    task.progress(100, 'report ready');
    return { rows: data.length, delimiter, columns: profiles, correlations, report_markdown };
  }
}
