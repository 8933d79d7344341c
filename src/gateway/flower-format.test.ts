import { describe, expect, it } from 'vitest';
import type { TaskRecord } from '../core/task.js';
import {
  celeryResult,
  celeryState,
  celeryTraceback,
  flowerTask,
  pyRepr,
  statusesOf,
} from './flower-format.js';

const record = (over: Partial<TaskRecord> = {}): TaskRecord => ({
  task_id: 't-1',
  task_name: 'analyze',
  user_id: 'ann',
  step: 0,
  mode: 'text',
  service: 'analyzer',
  queue: 'fast_tasks',
  status: 'completed',
  progress: 100,
  message: 'completed',
  attempt: 1,
  max_attempts: 3,
  redeliveries: 0,
  priority: 10,
  input_data: {},
  context: {},
  created_at: '2026-01-01T00:00:00.000Z',
  started_at: '2026-01-01T00:00:01.000Z',
  finished_at: '2026-01-01T00:00:03.500Z',
  duration_ms: 2500,
  result: { ok: true },
  error: null,
  resources: null,
  worker: 'host:1:abc',
  runs: [],
  ...over,
});
const error = (type: string, message: string) => ({ type, code: 'E003' as const, message });

describe('Flower format', () => {
  it("pyRepr writes Python's repr of JSON values", () => {
    expect(pyRepr([1, 'a', null, true, false, { k: [2.5] }])).toBe(
      "[1, 'a', None, True, False, {'k': [2.5]}]",
    );
    expect(pyRepr("it's")).toBe(`"it's"`);
    expect(pyRepr(`'"`)).toBe(`'\\'"'`);
    expect(pyRepr('a\\b\nc\u0001')).toBe("'a\\\\b\\nc\\x01'");
    expect(pyRepr({})).toBe('{}');
  });

  it('maps every aiecs status to a Celery state, and back for filters', () => {
    expect(celeryState(record({ status: 'pending' }))).toBe('PENDING');
    expect(celeryState(record({ status: 'pending', error: error('RetryableError', 'x') }))).toBe('RETRY');
    expect(celeryState(record({ status: 'running' }))).toBe('STARTED');
    expect(celeryState(record())).toBe('SUCCESS');
    expect(celeryState(record({ status: 'failed' }))).toBe('FAILURE');
    expect(celeryState(record({ status: 'timed_out' }))).toBe('FAILURE');
    expect(celeryState(record({ status: 'cancelled' }))).toBe('REVOKED');
    expect(statusesOf('FAILURE')).toEqual(['failed', 'timed_out']);
    expect(statusesOf('RECEIVED')).toEqual([]);
  });

  it("results: the original worker's shape on SUCCESS, Flower's repr of the exception otherwise", () => {
    expect(celeryResult(record())).toEqual({ status: 'completed', task: 'analyze', result: { ok: true } });
    const timedOut = record({
      status: 'timed_out',
      error: error('TaskTimeoutError', 'over 5 s'),
      result: null,
    });
    expect(celeryResult(timedOut)).toBe("TaskTimeoutError('over 5 s')");
    expect(celeryTraceback(timedOut)).toBe('TaskTimeoutError: over 5 s');
    expect(celeryResult(record({ status: 'running', result: null }))).toBeUndefined();
  });

  it("a cancelled task as Flower lists it: revoked at its end, Celery's names, no traceback", () => {
    const task = flowerTask(
      record({
        queue: 'heavy_tasks',
        status: 'cancelled',
        attempt: 2,
        error: error('TaskCancelledError', 'cancelled'),
        result: null,
        root_id: 'r-1',
        parent_id: 'p-1',
      }),
    );
    expect(task).toMatchObject({
      uuid: 't-1',
      name: 'aiecs.tasks.worker.execute_heavy_task',
      state: 'REVOKED',
      received: 1767225600,
      started: 1767225601,
      revoked: 1767225603.5,
      succeeded: null,
      failed: null,
      retries: 1,
      runtime: 2.5,
      result: null,
      exception: "TaskRevokedError('cancelled')",
      traceback: null,
      routing_key: 'heavy_tasks',
      root_id: 'r-1',
      parent_id: 'p-1',
      timestamp: 1767225603.5,
    });
    expect(task.args).toBe("['analyze', 'ann', 't-1', 0, 'text', 'analyzer', {}, {}]");
  });
});
