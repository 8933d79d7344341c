import { describe, expect, it } from 'vitest';
import ts from 'typescript';
import { ValidationError } from '../core/errors.js';
import { ServiceRegistry } from '../registry/registry.js';
import { registerBuiltinServices } from './builtin.js';
import { MAX_FILES, functionMetrics } from './code-review-engine.js';
import { CodeReviewer } from './code-reviewer.js';
import type { CodeReview } from './code-reviewer.js';
import { createTestTaskContext } from './test-task-context.js';
import type { TestTaskOptions } from './test-task-context.js';

async function review(input: Record<string, unknown>, options?: TestTaskOptions): Promise<CodeReview> {
  return new CodeReviewer().review_code(input, {}, createTestTaskContext(options).task);
}

function metrics(code: string) {
  return functionMetrics(ts.createSourceFile('m.ts', code, ts.ScriptTarget.ES2023, true));
}

const TYPE_ERROR = [
  '// Totals an order.', // 1
  'export function total(prices: number[]): number {', // 2
  '  const label: number = "total";', // 3: TS2322
  '  return prices.reduce((a, b) => a + b, label);', // 4
  '}', // 5
].join('\n');

const THREE_IFS = `export function classify(n: number): string {
  let out = 'small';
  if (n > 10) out = 'medium';
  if (n > 100) out = 'large';
  if (n > 1000) out = 'huge';
  return out;
}
`;

describe('diagnostics', () => {
  it('reports a type error with its line, column and code', async () => {
    const r = await review({ code: TYPE_ERROR });
    expect(r.files).toHaveLength(1);
    const [file] = r.files;
    expect(file?.path).toBe('input.ts');
    expect(file?.diagnostics).toEqual([
      {
        path: 'input.ts',
        line: 3,
        column: 9,
        code: 2322,
        category: 'error',
        message: "Type 'string' is not assignable to type 'number'.",
      },
    ]);
    expect(r.summary.errors).toBe(1);
    expect(r.findings).toEqual([
      expect.objectContaining({ path: 'input.ts', line: 3, severity: 'error', code: 2322 }),
    ]);
  });

  it('is strict: implicit any and possibly-undefined are errors', async () => {
    const r = await review({
      code: 'export function f(x) { return x; }\nexport const g = (m: Map<string, number>) => m.get("a") + 1;\n',
    });
    const codes = r.files[0]?.diagnostics.map((d) => [d.line, d.code, d.category]);
    expect(codes).toEqual([
      [1, 7006, 'error'],
      [2, 2532, 'error'],
    ]);
  });

  it('reports syntax errors', async () => {
    const r = await review({ code: 'export const a = (1 + ;\n' });
    expect(r.files[0]?.diagnostics[0]).toMatchObject({ line: 1, code: 1109, category: 'error' });
  });

  it('reports unused declarations and unreachable code as warnings', async () => {
    const r = await review({
      code: 'export function f(): number {\n  const unused = 1;\n  return 2;\n  f();\n}\n',
    });
    const diags = r.files[0]?.diagnostics.map((d) => [d.line, d.code, d.category]);
    expect(diags).toEqual([
      [2, 6133, 'warning'],
      [4, 7027, 'warning'],
    ]);
    expect(r.summary).toMatchObject({ errors: 0, warnings: 2 });
  });

  it('resolves imports between submitted files, in memory', async () => {
    const r = await review({
      files: [
        { path: 'src/math.ts', content: 'export function double(n: number): number {\n  return n * 2;\n}\n' },
        {
          path: 'src/main.ts',
          content:
            "import { double } from './math.js';\nimport { missing } from './nowhere';\n" +
            "import chalk from 'chalk';\nexport const s: string = double(2);\nexport { missing, chalk };\n",
        },
      ],
    });
    const main = r.files.find((f) => f.path === 'src/main.ts');
    // The relative import that exists resolves, so its return type is checked; the missing relative
    // one is an error; a package that was not submitted is not the author's fault.
    expect(main?.diagnostics.map((d) => [d.line, d.code])).toEqual([
      [2, 2307],
      [4, 2322],
    ]);
    expect(r.files.find((f) => f.path === 'src/math.ts')?.diagnostics).toEqual([]);
  });

  it('checks JavaScript and TSX too', async () => {
    const r = await review({
      files: [
        { path: 'a.js', content: 'export const q = 1;\nq = 2;\n' },
        { path: 'b.tsx', content: 'export const C = (p: { n: number }) => <b>{p.n.toFixed(1)}</b>;\n' },
      ],
    });
    expect(r.files[0]?.diagnostics.map((d) => d.code)).toEqual([2588]);
    expect(r.files[1]?.diagnostics).toEqual([]);
  });
});

describe('complexity', () => {
  it('gives a function with three ifs complexity 4', () => {
    expect(metrics(THREE_IFS)).toEqual([
      { name: 'classify', line: 1, end_line: 7, complexity: 4, max_nesting: 1, loc: 7 },
    ]);
  });

  it('counts loops, cases, catch, logical operators and ternaries; nested functions separately', () => {
    const code = `
class Parser {
  parse(items: string[], fallback?: string): number {
    let n = 0;
    for (const item of items) {           // +1
      while (n < 3 && item) n++;          // +2 (while, &&)
      switch (item) {
        case 'a': n += 1; break;          // +1
        case 'b': n += 2; break;          // +1
        default: n = n || 1;              // +1 (||)
      }
    }
    try { JSON.parse(fallback ?? '{}'); } // +1 (??)
    catch { n = n > 0 ? n : -1; }         // +2 (catch, ?:)
    const inner = (x: number) => (x > 0 ? x : 0); // own function
    return inner(n);
  }
}
`;
    const fns = metrics(code);
    expect(fns.map((f) => [f.name, f.complexity])).toEqual([
      ['Parser.parse', 10],
      ['inner', 2],
    ]);
    // for → switch: two levels (the while sits inside the for only).
    expect(fns[0]?.max_nesting).toBe(2);
  });

  it('does not deepen nesting for else-if chains', () => {
    const [fn] = metrics(`function f(a: number) {
  if (a === 1) { return 1; }
  else if (a === 2) { return 2; }
  else if (a === 3) { if (a) { return 3; } }
  return 0;
}`);
    expect(fn?.complexity).toBe(5);
    expect(fn?.max_nesting).toBe(2);
  });

  it('counts only code lines: blank lines and comments drop out', async () => {
    const code = [
      '/**',
      ' * Adds.',
      ' */',
      'export function add(a: number, b: number): number {',
      '',
      '  // plain sum',
      '  return a + b; // trailing comment keeps the line',
      '}',
      '',
    ].join('\n');
    const r = await review({ code, path: 'lib/add.ts' });
    expect(r.files[0]).toMatchObject({ path: 'lib/add.ts', lines: 8, loc: 3 });
    expect(r.files[0]?.functions[0]).toMatchObject({ name: 'add', line: 4, loc: 3 });
  });

  it('turns complexity over 10 into a warning finding and lists hotspots', async () => {
    const branches = Array.from({ length: 11 }, (_, i) => `  if (n === ${i}) return ${i};`).join('\n');
    const r = await review({
      files: [
        {
          path: 'big.ts',
          content: `export function big(n: number): number {\n${branches}\n  return -1;\n}\n`,
        },
        { path: 'small.ts', content: THREE_IFS },
      ],
    });
    expect(r.summary).toMatchObject({ files: 2, functions: 2, max_complexity: 12, average_complexity: 8 });
    expect(r.summary.hotspots).toEqual([
      { path: 'big.ts', name: 'big', line: 1, complexity: 12 },
      { path: 'small.ts', name: 'classify', line: 1, complexity: 4 },
    ]);
    expect(r.findings).toEqual([
      {
        path: 'big.ts',
        line: 1,
        severity: 'warning',
        message: 'big has cyclomatic complexity 12 (over 10); consider splitting it',
      },
    ]);
  });
});

describe('progress and cancel', () => {
  const files = ['a.ts', 'b.ts', 'c.ts', 'd.ts'].map((path, i) => ({
    path,
    content: `export const v${i} = ${i};\n`,
  }));

  it('reports progress per file, monotonic, reaching 100', async () => {
    const t = createTestTaskContext();
    await new CodeReviewer().review_code({ files }, {}, t.task);
    expect(t.progress).toEqual([
      { percent: 25, message: 'reviewed a.ts' },
      { percent: 50, message: 'reviewed b.ts' },
      { percent: 75, message: 'reviewed c.ts' },
      { percent: 100, message: 'reviewed d.ts' },
    ]);
  });

  it('stops between files when the signal aborts', async () => {
    const t = createTestTaskContext({ onProgress: (p, c) => p.percent === 50 && c.abort() });
    await expect(new CodeReviewer().review_code({ files }, {}, t.task)).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(t.progress.map((p) => p.percent)).toEqual([25, 50]);
  });

  it('does nothing when aborted before it starts', async () => {
    const t = createTestTaskContext();
    t.controller.abort();
    await expect(new CodeReviewer().review_code({ files }, {}, t.task)).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(t.progress).toEqual([]);
  });
});

describe('validation', () => {
  async function issues(input: Record<string, unknown>): Promise<{ field: string; message: string }[]> {
    const err = await review(input).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  }

  it('rejects unsupported extensions, naming the file', async () => {
    const found = await issues({
      files: [
        { path: 'ok.ts', content: '' },
        { path: 'notes.md', content: '# hi' },
      ],
    });
    expect(found).toEqual([{ field: 'input_data.files[1].path', message: expect.stringContaining('.ts') }]);
    expect((await issues({ code: 'x', path: 'script.py' }))[0]?.field).toBe('input_data.path');
  });

  it(`rejects more than ${MAX_FILES} files`, async () => {
    const files = Array.from({ length: MAX_FILES + 1 }, (_, i) => ({ path: `f${i}.ts`, content: '' }));
    expect(await issues({ files })).toEqual([
      { field: 'input_data.files', message: expect.stringContaining('200') },
    ]);
  });

  it('rejects missing input, bad content, escaping and duplicate paths', async () => {
    expect((await issues({}))[0]?.field).toBe('input_data.files');
    expect((await issues({ files: [] }))[0]?.field).toBe('input_data.files');
    expect(await issues({ files: [{ path: 'a.ts', content: 3 }] })).toEqual([
      { field: 'input_data.files[0].content', message: 'must be a string' },
    ]);
    expect((await issues({ files: [{ path: '../etc/x.ts', content: '' }] }))[0]?.field).toBe(
      'input_data.files[0].path',
    );
    const dup = await issues({
      files: [
        { path: 'a.ts', content: '' },
        { path: './a.ts', content: '' },
      ],
    });
    expect(dup).toEqual([{ field: 'input_data.files[1].path', message: 'duplicates a.ts' }]);
    expect((await issues({ code: 1 }))[0]?.field).toBe('input_data.code');
  });
});

describe('registration', () => {
  const registry = new ServiceRegistry();

  it('registers code/code_reviewer and resolves review_code', async () => {
    registerBuiltinServices(registry);
    expect(registry.get('code', 'code_reviewer')?.methods).toEqual(['review_code']);
    const run = registry.resolve('code', 'code_reviewer', 'review_code');
    const r = (await run({ code: TYPE_ERROR }, {}, createTestTaskContext().task)) as CodeReview;
    expect(r.files[0]?.diagnostics[0]?.code).toBe(2322);
  });
});
