import { describe, expect, it } from 'vitest';
import { SEQ_PER_ATTEMPT, cancelMarker, envelopeSeq, type ProgressPayload } from '../core/task-events.js';
import { TaskStatus } from '../core/task.js';
import { deriveStatus, toTaskRecord, type TaskJob } from './task-record.js';

const payload = (status: TaskStatus, seq: number): ProgressPayload => ({
  status,
  progress: 0,
  message: '',
  attempt: 1,
  seq,
  timestamp: 0,
});
/** What `cancel()` writes on a task that has not run. */
const callersMarker = cancelMarker(1, { type: 'TaskCancelledError', code: 'E004', message: 'cancelled' });

describe('deriveStatus', () => {
  it('keeps a task cancelled while pending cancelled, also while a worker takes it to drop it', () => {
    expect(deriveStatus('waiting', callersMarker)).toBe(TaskStatus.CANCELLED);
    expect(deriveStatus('delayed', callersMarker)).toBe(TaskStatus.CANCELLED);
    expect(deriveStatus('active', callersMarker)).toBe(TaskStatus.CANCELLED);
    expect(deriveStatus('failed', callersMarker)).toBe(TaskStatus.CANCELLED);
  });

  it('reads an active task as running, whatever its attempt last reported', () => {
    expect(deriveStatus('active', undefined)).toBe(TaskStatus.RUNNING);
    expect(deriveStatus('active', payload(TaskStatus.RUNNING, SEQ_PER_ATTEMPT + 3))).toBe(TaskStatus.RUNNING);
    // A worker's own last word comes just before BullMQ moves the job: the move decides.
    expect(deriveStatus('active', payload(TaskStatus.CANCELLED, SEQ_PER_ATTEMPT + 9))).toBe(
      TaskStatus.RUNNING,
    );
  });

  it('lets BullMQ decide first and the worker refine a failure', () => {
    expect(deriveStatus('completed', callersMarker)).toBe(TaskStatus.COMPLETED);
    expect(deriveStatus('failed', payload(TaskStatus.TIMED_OUT, SEQ_PER_ATTEMPT + 2))).toBe(
      TaskStatus.TIMED_OUT,
    );
    expect(deriveStatus('failed', payload(TaskStatus.RUNNING, SEQ_PER_ATTEMPT + 2))).toBe(TaskStatus.FAILED);
    expect(deriveStatus('prioritized', undefined)).toBe(TaskStatus.PENDING);
  });
});

describe('envelopeSeq', () => {
  const resources = { timings: { service_ms: 0, total_ms: 1 } };
  it('is the seq the worker wrote, after what the attempt reported', () => {
    expect(envelopeSeq({ result: 1, resources, attempt: 2, seq: 2 * SEQ_PER_ATTEMPT + 7 })).toBe(
      2 * SEQ_PER_ATTEMPT + 7,
    );
  });

  it("is the attempt's first seq when the attempt reported nothing, after its running event", () => {
    expect(envelopeSeq({ result: 1, resources, attempt: 1 })).toBe(SEQ_PER_ATTEMPT + 1);
    expect(envelopeSeq({ result: 1, resources, attempt: 3 })).toBe(3 * SEQ_PER_ATTEMPT + 1);
    // The running event of an attempt is `attempt * SEQ_PER_ATTEMPT`: completed sorts after it.
    expect(envelopeSeq({ result: 1, resources, attempt: 3 })).toBeGreaterThan(3 * SEQ_PER_ATTEMPT);
  });

  it("numbers a redelivered run after the run whose worker died, as BullMQ's active event does", () => {
    expect(envelopeSeq({ result: 1, resources, attempt: 1, redeliveries: 1 })).toBe(2 * SEQ_PER_ATTEMPT + 1);
  });
});

describe('toTaskRecord attempt and redeliveries', () => {
  /** A job as BullMQ reads it back, with its three counters. */
  const job = (attemptsStarted: number, attemptsMade: number, stalledCounter: number, extra = {}) =>
    ({
      id: 't1',
      queueName: 'fast_tasks',
      timestamp: 1,
      data: { task_name: 'x', user_id: 'u', mode: 'm', service: 's' },
      opts: { attempts: 2 },
      progress: 0,
      attemptsStarted,
      attemptsMade,
      stalledCounter,
      ...extra,
    }) as unknown as TaskJob;
  const read = (j: TaskJob, state: string) => {
    const { attempt, redeliveries, max_attempts } = toTaskRecord(j, state, 'fast_tasks');
    return { attempt, redeliveries, max_attempts };
  };

  it('counts a start that ended without an outcome as a redelivery, never as an attempt', () => {
    expect(read(job(0, 0, 0), 'waiting')).toEqual({ attempt: 0, redeliveries: 0, max_attempts: 2 });
    expect(read(job(1, 0, 0), 'active')).toEqual({ attempt: 1, redeliveries: 0, max_attempts: 2 });
    // Its worker died: back to waiting, then running again elsewhere.
    expect(read(job(1, 0, 1), 'waiting')).toMatchObject({ attempt: 1, redeliveries: 1 });
    expect(read(job(2, 0, 1), 'active')).toMatchObject({ attempt: 1, redeliveries: 1 });
    // The re-run failed retryably, waits for its retry, runs it, ends.
    expect(read(job(2, 1, 1), 'delayed')).toMatchObject({ attempt: 1, redeliveries: 1 });
    expect(read(job(3, 1, 1), 'active')).toMatchObject({ attempt: 2, redeliveries: 1 });
    expect(read(job(3, 2, 1), 'failed')).toMatchObject({ attempt: 2, redeliveries: 1 });
    // Sent back at a drain deadline: started twice, no stall, one try.
    expect(read(job(2, 1, 0), 'completed')).toMatchObject({ attempt: 1, redeliveries: 1 });
  });

  it("takes the worker's own count from its result or last progress", () => {
    const envelope = { result: 1, resources: { timings: {} }, attempt: 2, redeliveries: 3 };
    expect(read(job(5, 2, 3, { returnvalue: envelope }), 'completed')).toMatchObject({
      attempt: 2,
      redeliveries: 3,
    });
    const last = { ...payload(TaskStatus.FAILED, 2 * SEQ_PER_ATTEMPT + 4), redeliveries: 1 };
    expect(read(job(2, 1, 0, { progress: last }), 'failed')).toMatchObject({ attempt: 1, redeliveries: 1 });
  });
});
