import { describe, expect, it } from 'vitest';
import { TaskStatus } from '../../core/task.js';
import type { Entry } from '../../engine/history/history-entries.js';
import type { HistoryRow } from '../../engine/history/history-db.js';
import { celeryDate, celeryMetaOf } from './celery-meta.js';

const NOW = new Date('2024-05-06T07:08:09.123Z');

function entry(fields: Partial<HistoryRow>, extra: Partial<Entry> = {}): Entry {
  const row: HistoryRow = {
    queue: 'fast_tasks',
    event_id: '1-0',
    task_id: 't1',
    user_id: 'u',
    task_name: 'analyze_text',
    mode: 'chat',
    service: 'svc',
    step: 2,
    kind: 'progress',
    status: TaskStatus.RUNNING,
    seq: 1,
    attempt: 1,
    progress: 40,
    message: 'half',
    result: null,
    error_code: null,
    error_message: null,
    worker: 'host:1',
    root_id: null,
    parent_id: null,
    schedule: null,
    at_ms: 0,
    created_at_ms: 0,
    ...fields,
  };
  return { row, celery: 'c1', ...extra };
}

const plain = { raiseFailures: false };
const raising = { raiseFailures: true };

describe('celeryMetaOf', () => {
  it('writes nothing for a task without the Celery marker, nor for a queued one', () => {
    expect(celeryMetaOf({ row: entry({}).row }, plain, NOW)).toBeUndefined();
    expect(celeryMetaOf(entry({ kind: 'queued', status: TaskStatus.PENDING }), plain, NOW)).toBeUndefined();
  });

  it('STARTED and PROGRESS are not ready: no date_done', () => {
    expect(celeryMetaOf(entry({ kind: 'running' }), plain, NOW)).toEqual({
      status: 'STARTED',
      result: { hostname: 'host:1', pid: null },
      traceback: null,
      children: [],
      date_done: null,
      task_id: 'c1',
    });
    expect(celeryMetaOf(entry({}), plain, NOW)).toMatchObject({
      status: 'PROGRESS',
      result: {
        status: 'running',
        task: 'analyze_text',
        step: 2,
        progress: 40,
        message: 'half',
        task_id: 't1',
      },
      date_done: null,
    });
  });

  it("a retry's pending is RETRY with its error in Celery's exception form", () => {
    const error = { type: 'RetryableError', code: 'E003' as const, message: 'later', stack: 'at x' };
    expect(celeryMetaOf(entry({ status: TaskStatus.PENDING }, { error }), plain, NOW)).toMatchObject({
      status: 'RETRY',
      result: { exc_type: 'RetryableError', exc_message: ['later'], exc_module: 'aiecs.errors' },
      traceback: 'at x',
      date_done: null,
    });
  });

  it("completed is SUCCESS with the original worker's body and Python's utcnow().isoformat()", () => {
    const meta = celeryMetaOf(
      entry({ kind: 'completed', status: TaskStatus.COMPLETED, result: { a: 1 } }),
      raising,
      NOW,
    );
    expect(meta).toMatchObject({
      status: 'SUCCESS',
      result: { status: 'completed', task: 'analyze_text', result: { a: 1 } },
      date_done: '2024-05-06T07:08:09.123000',
    });
    expect(celeryDate(NOW)).toBe('2024-05-06T07:08:09.123000');
  });

  it('failures are SUCCESS bodies by default, FAILURE / REVOKED when raising', () => {
    const error = { type: 'TypeError', code: 'E003' as const, message: 'boom', stack: 'TypeError: boom' };
    for (const status of [TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.CANCELLED])
      expect(celeryMetaOf(entry({ kind: 'failed', status }, { error }), plain, NOW)).toMatchObject({
        status: 'SUCCESS',
        result: { status, task: 'analyze_text', error: 'boom' },
      });
    expect(
      celeryMetaOf(entry({ kind: 'failed', status: TaskStatus.FAILED }, { error }), raising, NOW),
    ).toMatchObject({
      status: 'FAILURE',
      result: { exc_type: 'TypeError', exc_message: ['boom'], exc_module: 'builtins' },
      traceback: 'TypeError: boom',
    });
    expect(
      celeryMetaOf(entry({ kind: 'failed', status: TaskStatus.TIMED_OUT }, { error }), raising, NOW),
    ).toMatchObject({
      status: 'FAILURE',
      result: { exc_type: 'TimeLimitExceeded', exc_module: 'billiard.exceptions' },
    });
    expect(
      celeryMetaOf(
        entry({ kind: 'progress', status: TaskStatus.CANCELLED, error_message: 'cancelled before it ran' }),
        raising,
        NOW,
      ),
    ).toMatchObject({
      status: 'REVOKED',
      result: { exc_type: 'TaskRevokedError', exc_message: ['cancelled before it ran'] },
      date_done: '2024-05-06T07:08:09.123000',
    });
  });
});
