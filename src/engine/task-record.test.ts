import { describe, expect, it } from 'vitest';
import { TaskStatus } from '../core/task.js';
import { SEQ_PER_ATTEMPT, deriveStatus, envelopeSeq, type ProgressPayload } from './task-record.js';

const payload = (status: TaskStatus, seq: number): ProgressPayload => ({
  status,
  progress: 0,
  message: '',
  attempt: 1,
  seq,
  timestamp: 0,
});
/** What `cancel()` writes on a task that has not run. */
const callersMarker = payload(TaskStatus.CANCELLED, 1);

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
});
