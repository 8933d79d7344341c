import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import { prepareSubmission, taskRequestSchema } from './submission.js';
import { fromStoredData, requestFingerprint, toStoredData, type QueueKind } from './task.js';

const MiB = 1024 * 1024;

describe('prepareSubmission', () => {
  // The fast path for common requests must give exactly what the schema gives.
  it.each([
    { task_name: 'analyze_text', user_id: 'u', mode: 'chat', service: 'text_analyzer' },
    {
      task_name: 'a',
      user_id: 'u'.repeat(256),
      mode: 'm.x',
      service: 's-1',
      step: 3,
      input_data: { a: [1] },
      context: { x: null },
    },
    { task_name: '_x', user_id: 'u', mode: 'M', service: 'S', input_data: {}, context: {} },
    { task_name: 'x', user_id: 'u', mode: 'm', service: 's', task_id: 'id-1' },
  ])('matches the schema for %j', (request) => {
    const {
      task_id: _t,
      submitted_at: _s,
      options: _o,
      ...data
    } = prepareSubmission('fast_tasks', request, undefined, MiB).data;
    const { task_id: _id, ...parsed } = taskRequestSchema.parse(request);
    expect(data).toEqual(parsed);
  });

  it.each([
    [{ task_name: '1x', user_id: 'u', mode: 'm', service: 's' }, 'task_name'],
    [{ task_name: 'x'.repeat(129), user_id: 'u', mode: 'm', service: 's' }, 'task_name'],
    [{ task_name: 'x', user_id: '', mode: 'm', service: 's' }, 'user_id'],
    [{ task_name: 'x', user_id: 'u', mode: 'm', service: 's', step: 1.5 }, 'step'],
    [{ task_name: 'x', user_id: 'u', mode: 'm', service: 's', input_data: [] }, 'input_data'],
    [{ task_name: 'x', user_id: 'u', mode: 'm', service: 's', extra: 1 }, '(root)'],
    [{ task_name: 'x', user_id: 'u', mode: 'm', service: 's', task_id: '42' }, 'task_id'],
  ])('refuses %j naming %s', (request, field) => {
    const error = (() => {
      try {
        prepareSubmission('fast_tasks', request, undefined, MiB);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.field)).toContain(field);
  });
});

describe('requestFingerprint', () => {
  it('ignores key order and tells different requests apart', () => {
    const a = prepareSubmission(
      'fast_tasks',
      { task_name: 'x', user_id: 'u', mode: 'm', service: 's', input_data: { a: 1, b: { c: 2, d: 3 } } },
      undefined,
      MiB,
    ).data;
    const b = { ...a, input_data: { b: { d: 3, c: 2 }, a: 1 } };
    expect(requestFingerprint('fast_tasks', a)).toBe(requestFingerprint('fast_tasks', b));
    expect(requestFingerprint('fast_tasks', a)).not.toBe(requestFingerprint('heavy_tasks', a));
    expect(requestFingerprint('fast_tasks', a)).not.toBe(
      requestFingerprint('fast_tasks', { ...a, input_data: { a: 2 } }),
    );
  });
});

describe('stored task data', () => {
  const prepare = (
    request: Record<string, unknown>,
    options?: Record<string, unknown>,
    queue: QueueKind = 'fast_tasks',
  ) =>
    prepareSubmission(
      queue,
      { task_name: 't', user_id: 'u', mode: 'm', service: 's', ...request },
      options,
      MiB,
      1_700_000_000_000,
    ).data;

  it('leaves out what is at its default, and the id and time the job carries', () => {
    expect(toStoredData('fast_tasks', prepare({}))).toEqual({
      task_name: 't',
      user_id: 'u',
      mode: 'm',
      service: 's',
    });
    expect(toStoredData('heavy_tasks', prepare({}, {}, 'heavy_tasks'))).not.toHaveProperty('options');
  });

  it.each([
    [{}, undefined],
    [{ step: 3, input_data: { text: 'hi' }, context: { model: 'x' }, task_id: 'mine-1' }, undefined],
    [{}, { priority: 10 }],
    [{}, { priority: 99, time_limit: 60, soft_time_limit: 30 }],
    [{}, { soft_time_limit: 5 }],
  ])('comes back whole, with the same fingerprint (%j, options %j)', (request, options) => {
    for (const queue of ['fast_tasks', 'heavy_tasks'] as const) {
      const data = prepare(request, options, queue);
      const back = fromStoredData(queue, toStoredData(queue, data), data.task_id, data.submitted_at);
      expect(back).toEqual(data);
      expect(requestFingerprint(queue, back)).toBe(requestFingerprint(queue, data));
    }
  });
});
