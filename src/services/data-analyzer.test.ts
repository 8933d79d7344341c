import { describe, expect, it } from 'vitest';
import { ValidationError } from '../core/errors.js';
import { ServiceRegistry } from '../registry/registry.js';
import { registerBuiltinServices } from './builtin.js';
import { DataAnalyzer, pearson, percentile } from './data-analyzer.js';
import type { ColumnProfile, DatasetAnalysis } from './data-analyzer.js';
import { createTestTaskContext } from './test-task-context.js';
import type { TestTaskOptions } from './test-task-context.js';

// v: 2 4 4 4 5 5 7 9 → mean 5, median 4.5, sum of squared deviations 32, sample sd √(32/7).
const CSV = [
  'id,v,x,y,neg,city,active,joined,note',
  '1,2,1,2,10,Paris,true,2024-01-05,a',
  '2,4,2,4,8,Berlin,false,2024-02-10,',
  '3,4,3,6,7,Paris,yes,2024-03-15,NA',
  '4,4,4,8,5,Rome,no,2024-04-20,b',
  '5,5,5,10,4,Paris,true,2024-05-25,c',
  '6,5,6,12,3,Berlin,false,2024-06-30,d',
  '7,7,7,14,1,Madrid,true,2024-07-04,n/a',
  '8,9,8,16,0,Paris,false,2024-08-08,e',
].join('\n');

async function analyze(input: Record<string, unknown>, options?: TestTaskOptions): Promise<DatasetAnalysis> {
  return new DataAnalyzer().analyze_dataset(input, {}, createTestTaskContext(options).task);
}

function column(result: DatasetAnalysis, name: string): ColumnProfile {
  const c = result.columns.find((col) => col.name === name);
  if (!c) throw new Error(`no column ${name}`);
  return c;
}

describe('analyze_dataset', () => {
  it('computes statistics of a numeric column by hand', async () => {
    const r = await analyze({ csv: CSV });
    expect(r.rows).toBe(8);
    const v = column(r, 'v');
    expect(v).toMatchObject({ type: 'number', count: 8, missing: 0, distinct: 5, min: 2, max: 9 });
    expect(v.mean).toBe(5);
    expect(v.median).toBe(4.5);
    expect(v.stddev).toBeCloseTo(Math.sqrt(32 / 7), 5);
    // Linear interpolation: p25 at rank 1.75 → 4, p75 at rank 5.25 → 5 + 0.25 × (7 − 5).
    expect(v.p25).toBe(4);
    expect(v.p75).toBe(5.5);
  });

  it('infers number, boolean, date and string columns', async () => {
    const r = await analyze({ csv: CSV });
    expect(r.columns.map((c) => [c.name, c.type])).toEqual([
      ['id', 'number'],
      ['v', 'number'],
      ['x', 'number'],
      ['y', 'number'],
      ['neg', 'number'],
      ['city', 'string'],
      ['active', 'boolean'],
      ['joined', 'date'],
      ['note', 'string'],
    ]);
    expect(column(r, 'active')).toMatchObject({ true_count: 4, false_count: 4, distinct: 2 });
    expect(column(r, 'joined')).toMatchObject({
      min: '2024-01-05T00:00:00.000Z',
      max: '2024-08-08T00:00:00.000Z',
    });
    expect(column(r, 'city').top_values).toEqual([
      { value: 'Paris', count: 4 },
      { value: 'Berlin', count: 2 },
      { value: 'Madrid', count: 1 },
      { value: 'Rome', count: 1 },
    ]);
  });

  it('counts empty cells and NA markers as missing', async () => {
    const r = await analyze({ csv: CSV });
    expect(column(r, 'note')).toMatchObject({ count: 5, missing: 3, distinct: 5 });
    expect(column(r, 'city').missing).toBe(0);
  });

  it('finds r = 1 for y = 2x and a strong negative r for a falling column', async () => {
    const r = await analyze({ csv: CSV });
    const xy = r.correlations.find((c) => c.a === 'x' && c.b === 'y');
    expect(xy?.r).toBeCloseTo(1, 10);
    expect(xy?.n).toBe(8);
    const xneg = r.correlations.find((c) => c.a === 'x' && c.b === 'neg');
    expect(xneg?.r).toBeLessThan(-0.95);
    // Sorted by strength.
    const strengths = r.correlations.map((c) => Math.abs(c.r));
    expect(strengths).toEqual([...strengths].sort((a, b) => b - a));
    expect(r.correlations).toHaveLength((5 * 4) / 2);
  });

  it('writes a Markdown report with a table and findings', async () => {
    const r = await analyze({ csv: CSV });
    const md = r.report_markdown;
    expect(md).toMatch(/^# Dataset report\n/);
    expect(md).toContain('**8 rows × 9 columns**');
    expect(md).toContain('| Column | Type | Count | Missing |');
    expect(md).toContain('| v | number | 8 | 0 | 5 | 5 | 4.5 |');
    expect(md).toMatch(/Strongest correlation: `\w+` and `\w+`, r = 1 \(very strong positive, n = 8\)/);
    expect(md).toContain('Columns with missing values: `note` 3 (37.5 %)');
    expect(md).toContain('possible identifiers): `id`');
  });

  it('analyses only the requested columns', async () => {
    const r = await analyze({ csv: CSV, columns: ['y', 'x'] });
    expect(r.columns.map((c) => c.name)).toEqual(['y', 'x']);
    expect(r.correlations).toEqual([{ a: 'y', b: 'x', r: 1, n: 8 }]);
  });

  it('handles other delimiters, guessed or given, and quoted fields', async () => {
    const csv = 'name;amount\n"Smith; John";1.5\nDoe;2.5\n';
    const guessed = await analyze({ csv });
    expect(guessed.delimiter).toBe(';');
    expect(column(guessed, 'amount').mean).toBe(2);
    expect(column(guessed, 'name').top_values?.map((t) => t.value)).toContain('Smith; John');
    const tabbed = await analyze({ csv: 'a\tb\n1\t2\n3\t4\n', delimiter: '\t' });
    expect(tabbed.columns.map((c) => c.name)).toEqual(['a', 'b']);
  });

  it('flags Tukey outliers', async () => {
    const csv = ['n', ...[10, 11, 12, 13, 12, 11, 10, 500]].join('\n');
    expect(column(await analyze({ csv }), 'n').outliers).toBe(1);
  });

  it('reports progress per phase, monotonic, ending at 100', async () => {
    const t = createTestTaskContext();
    await new DataAnalyzer().analyze_dataset({ csv: CSV }, {}, t.task);
    const percents = t.progress.map((p) => p.percent);
    expect(percents).toEqual([10, 30, 60, 80, 100]);
  });

  it('stops when aborted between phases', async () => {
    const t = createTestTaskContext({ onProgress: (p, c) => p.percent === 30 && c.abort() });
    await expect(new DataAnalyzer().analyze_dataset({ csv: CSV }, {}, t.task)).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(t.progress.map((p) => p.percent)).toEqual([10, 30]);
  });

  it('yields inside long loops so an abort from elsewhere lands mid-run', async () => {
    const rows = Array.from({ length: 30_000 }, (_, i) => `${i},${i * 3},${i % 7}`);
    const csv = ['a,b,c', ...rows].join('\n');
    // The abort arrives two event-loop turns later, as a timer or a cancel message would: after the
    // checkpoint that follows parsing, so only the checkpoint at row 5,000 of the next loop sees it
    // before the type-inference phase reports 30.
    const t = createTestTaskContext({
      onProgress: (p, c) =>
        p.percent === 10 && setImmediate(() => setImmediate(() => c.abort(new Error('cancelled')))),
    });
    await expect(new DataAnalyzer().analyze_dataset({ csv }, {}, t.task)).rejects.toThrow('cancelled');
    expect(t.progress.map((p) => p.percent)).toEqual([10]);
  });

  it('handles a larger dataset', async () => {
    const rows = Array.from({ length: 12_000 }, (_, i) => `${i},${2 * i + 1},${i % 2 ? 'odd' : 'even'}`);
    const r = await analyze({ csv: ['a,b,kind', ...rows].join('\n') });
    expect(r.rows).toBe(12_000);
    expect(column(r, 'a').mean).toBe(5999.5);
    expect(r.correlations[0]?.r).toBeCloseTo(1, 10);
    expect(column(r, 'kind').top_values).toEqual([
      { value: 'even', count: 6000 },
      { value: 'odd', count: 6000 },
    ]);
  });
});

describe('validation', () => {
  async function issues(input: Record<string, unknown>): Promise<{ field: string; message: string }[]> {
    try {
      await analyze(input);
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      return (err as ValidationError).issues;
    }
    throw new Error('expected a ValidationError');
  }

  it('rejects malformed CSV naming input_data.csv', async () => {
    const ragged = await issues({ csv: 'a,b\n1,2\n3\n' });
    expect(ragged).toEqual([
      { field: 'input_data.csv', message: expect.stringMatching(/not valid CSV.*line 3/) },
    ]);
    const unclosed = await issues({ csv: 'a,b\n"1,2\n' });
    expect(unclosed[0]?.field).toBe('input_data.csv');
    expect(unclosed[0]?.message).toMatch(/quote/i);
  });

  it('rejects missing, empty and header-only CSV', async () => {
    expect(await issues({})).toEqual([{ field: 'input_data.csv', message: 'is required' }]);
    expect(await issues({ csv: '  \n' })).toEqual([
      { field: 'input_data.csv', message: 'must not be empty' },
    ]);
    expect(await issues({ csv: 'a,b,c\n' })).toEqual([
      { field: 'input_data.csv', message: 'has a header but no data rows' },
    ]);
  });

  it('rejects duplicate header names', async () => {
    const [issue] = await issues({ csv: 'a,b,a\n1,2,3\n' });
    expect(issue).toEqual({
      field: 'input_data.csv',
      message: expect.stringContaining('duplicate column names'),
    });
  });

  it('rejects unknown requested columns, naming them', async () => {
    const [issue] = await issues({ csv: CSV, columns: ['x', 'nope'] });
    expect(issue?.field).toBe('input_data.columns');
    expect(issue?.message).toContain('nope');
    expect(issue?.message).not.toMatch(/unknown columns x\b/);
  });

  it('rejects a bad delimiter and bad columns', async () => {
    const found = await issues({ csv: CSV, delimiter: '', columns: 'x' });
    expect(found.map((i) => i.field)).toEqual(['input_data.delimiter', 'input_data.columns']);
  });

  it('pure helpers: percentile and pearson', () => {
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(pearson([1, 2, 3], [3, 2, 1])?.r).toBeCloseTo(-1, 12);
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeUndefined();
    expect(pearson([1, NaN, 3, 4], [2, 5, 6, 8])?.n).toBe(3);
  });
});

describe('registration', () => {
  const registry = new ServiceRegistry();

  it('registers data/data_analyzer and resolves analyze_dataset', async () => {
    registerBuiltinServices(registry);
    expect(registry.get('data', 'data_analyzer')?.methods).toEqual(['analyze_dataset']);
    const run = registry.resolve('data', 'data_analyzer', 'analyze_dataset');
    const t = createTestTaskContext();
    const r = (await run({ csv: 'x,y\n1,2\n2,4\n3,6\n' }, {}, t.task)) as DatasetAnalysis;
    expect(r.correlations[0]).toMatchObject({ a: 'x', b: 'y', r: 1 });
    expect(t.progress.at(-1)?.percent).toBe(100);
  });
});
