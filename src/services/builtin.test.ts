import { describe, expect, it } from 'vitest';
import { ServiceRegistry } from '../registry/registry.js';
import { BUILTIN_SERVICES, lazyService, registerBuiltinServices } from './builtin.js';
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
  const registry = new ServiceRegistry();

  it('registers the three services, idempotently', () => {
    registerBuiltinServices(registry);
    const count = registry.names().length;
    registerBuiltinServices(registry);
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
    registerBuiltinServices(registry);
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

describe('BUILTIN_SERVICES', () => {
  it('lists the methods each implementation has', async () => {
    const check = new ServiceRegistry();
    for (const { mode, service, methods, load } of BUILTIN_SERVICES) {
      const entry = check.register(mode, service, await load());
      expect([mode, service, entry.methods, entry.hasExecuteTask]).toEqual([mode, service, methods, false]);
    }
  });
});

describe('lazyService', () => {
  const task = createTestTaskContext().task;

  it('loads the implementation once, on the first call, and makes an instance per task', async () => {
    let loads = 0;
    const instances = new Set<object>();
    class Impl {
      twice(input: Record<string, unknown>) {
        instances.add(this);
        return (input.n as number) * 2;
      }
    }
    const stub = lazyService(['twice'], () => {
      loads++;
      return Promise.resolve(Impl);
    });
    expect(loads).toBe(0);
    const [a, b] = await Promise.all([stub.twice!({ n: 1 }, {}, task), stub.twice!({ n: 2 }, {}, task)]);
    expect([a, b, loads]).toEqual([2, 4, 1]);
    // Once loaded, a plain value comes back as is, not as a promise.
    expect(stub.twice!({ n: 3 }, {}, task)).toBe(6);
    expect([loads, instances.size]).toEqual([1, 3]);
  });

  it('calls an object implementation with itself as this, and passes its errors on', async () => {
    const impl = {
      factor: 3,
      times(this: { factor: number }, input: Record<string, unknown>) {
        if (typeof input.n !== 'number') throw new TypeError('n must be a number');
        return input.n * this.factor;
      },
    };
    const stub = lazyService(['times'], () => Promise.resolve(impl));
    await expect(stub.times!({}, {}, task)).rejects.toThrow('n must be a number');
    expect(stub.times!({ n: 2 }, {}, task)).toBe(6);
    expect(() => stub.times!({}, {}, task)).toThrow('n must be a number');
  });
});
