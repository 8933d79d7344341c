import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { ServiceRegistry } from '../registry/registry.js';
import type { TaskContext } from '../core/task-context.js';
import { runService } from './execute-service.js';

describe('task progress', () => {
  it('reaches the store rounded to one decimal, clamped to 0-100', async () => {
    const registry = new ServiceRegistry();
    registry.register('test', 'progress_round', {
      steps(_input: Record<string, unknown>, _context: Record<string, unknown>, task: TaskContext) {
        // What a service that scales its phases reports, e.g. analyze_text with a model: 75 * 0.6.
        for (const p of [75 * 0.6, 100 / 3, 2 / 3, 99.96, -5, 140, Number.NaN]) task.progress(p, 'step');
        return 'done';
      },
    });
    const seen: number[] = [];
    const run = runService(
      { registry },
      {
        task_name: 'steps',
        user_id: 'u',
        task_id: 't',
        step: 0,
        mode: 'test',
        service: 'progress_round',
        input_data: {},
        context: {},
        options: { priority: 1 },
        submitted_at: Date.now(),
      },
      1,
      { progress: (percent) => seen.push(percent), stream: () => undefined },
      silentLogger,
      { acquire: async () => () => undefined },
    );
    expect(await run.outcome).toMatchObject({ ok: true, result: 'done' });
    expect(seen).toEqual([45, 33.3, 0.7, 100, 0, 100, 0]);
  });
});
