import { afterAll, describe, expect, it } from 'vitest';
import { registry } from '../registry/registry.js';
import type { ServiceEntry } from '../registry/registry.js';
import { registerBuiltinServices } from './builtin.js';
import type { CodeReview } from './code-reviewer.js';
import type { DatasetAnalysis } from './data-analyzer.js';
import type { ModerationResult } from './text-analyzer.js';
import { createTestTaskContext } from './test-task-context.js';

const BUILTIN: [string, string][] = [
  ['chat', 'text_analyzer'],
  ['data', 'data_analyzer'],
  ['code', 'code_reviewer'],
];

describe('registerBuiltinServices', () => {
  const before = new Map<string, ServiceEntry | undefined>(
    BUILTIN.map(([m, s]) => [`${m}/${s}`, registry.get(m, s)]),
  );
  afterAll(() => {
    for (const [mode, service] of BUILTIN) {
      const entry = before.get(`${mode}/${service}`);
      if (entry) registry.register(mode, service, entry.impl, { description: entry.description });
      else registry.unregister(mode, service);
    }
  });

  it('registers the three services, idempotently', () => {
    registerBuiltinServices();
    const count = registry.names().length;
    registerBuiltinServices();
    expect(registry.names()).toHaveLength(count);
    const listed = registry.list().filter((d) => BUILTIN.some(([m, s]) => d.mode === m && d.service === s));
    expect(listed.map((d) => [d.mode, d.service, d.methods])).toEqual([
      ['chat', 'text_analyzer', ['analyze_text', 'detect_language', 'moderate_content']],
      ['code', 'code_reviewer', ['review_code']],
      ['data', 'data_analyzer', ['analyze_dataset']],
    ]);
    expect(listed.every((d) => d.description && !d.accepts_any_task)).toBe(true);
  });

  it('resolves every task through the registry', async () => {
    registerBuiltinServices();
    const task = () => createTestTaskContext().task;
    const moderation = (await registry.resolve('chat', 'text_analyzer', 'moderate_content')(
      { text: 'What the fuck is this shit' },
      {},
      task(),
    )) as ModerationResult;
    expect(moderation.categories.profanity).toBe(true);

    const data = (await registry.resolve('data', 'data_analyzer', 'analyze_dataset')(
      { csv: 'a,b\n1,10\n2,20\n3,30\n' },
      {},
      task(),
    )) as DatasetAnalysis;
    expect(data.columns.map((c) => c.mean)).toEqual([2, 20]);

    const code = (await registry.resolve('code', 'code_reviewer', 'review_code')(
      { code: 'export const n: string = 1;' },
      {},
      task(),
    )) as CodeReview;
    expect(code.summary.errors).toBe(1);
  });
});
