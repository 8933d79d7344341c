// The task event protocol, rule by rule: what every writer (reporter, cancel, retry) and reader
// (record, result waiter, gateway bridge, replay) of a task's events relies on.
import { describe, expect, it } from 'vitest';
import type { TaskErrorInfo } from './errors.js';
import {
  CANCEL_MARKER_SEQ,
  QUEUED_SEQ,
  SEQ_PER_ATTEMPT,
  asProgressPayload,
  awaitsMove,
  cancelMarker,
  cancelsCountFrom,
  completedFields,
  dropsOnStart,
  envelopeSeq,
  finalSeq,
  isCancelMarker,
  isFinal,
  payloadFields,
  progressEvent,
  recordFields,
  reopensAfterEnd,
  retryPending,
  retrySeq,
  runBaseSeq,
  runEndSeq,
  runNumber,
  runOfSeq,
  shouldDeliver,
  type ProgressPayload,
} from './task-events.js';
import { TaskStatus, type TaskRecord } from './task.js';

const error: TaskErrorInfo = { type: 'TaskCancelledError', code: 'E004', message: 'cancelled before it ran' };

/** A worker's payload in run `run`, the n-th event it reported. */
const word = (status: TaskStatus, run: number, n: number): ProgressPayload => ({
  status,
  progress: 0,
  message: '',
  attempt: run,
  seq: runBaseSeq(run) + n,
  timestamp: 0,
});

/** What a client delivers of a stream of events, by shouldDeliver alone. */
function deliver(events: { seq: number }[], lastSeen = -1): number[] {
  const out: number[] = [];
  for (const e of events) {
    if (!shouldDeliver(lastSeen, e)) continue;
    out.push(e.seq);
    lastSeen = e.seq;
  }
  return out;
}

describe('seq: per run, reset to a higher base by each new run', () => {
  it('gives each run its own range, the queued event and the marker below all of them', () => {
    expect(runNumber(1)).toBe(1);
    expect(runNumber(2, 1)).toBe(3);
    expect(runBaseSeq(1)).toBe(SEQ_PER_ATTEMPT);
    expect(runEndSeq(1)).toBe(2 * SEQ_PER_ATTEMPT - 1);
    expect(runEndSeq(1)).toBeLessThan(runBaseSeq(2));
    expect(QUEUED_SEQ).toBeLessThan(CANCEL_MARKER_SEQ);
    expect(CANCEL_MARKER_SEQ).toBeLessThan(runBaseSeq(1));
    expect(runOfSeq(QUEUED_SEQ)).toBe(0);
    expect(runOfSeq(CANCEL_MARKER_SEQ)).toBe(0);
    expect(runOfSeq(runBaseSeq(3) + 17)).toBe(3);
    expect(runOfSeq(runEndSeq(3))).toBe(3);
  });

  it('drops a duplicate', () => {
    const e = word(TaskStatus.RUNNING, 1, 4);
    expect(shouldDeliver(-1, e)).toBe(true);
    expect(shouldDeliver(e.seq, e)).toBe(false);
    expect(deliver([e, e, word(TaskStatus.RUNNING, 1, 5), e])).toEqual([e.seq, e.seq + 1]);
  });

  it('drops a stale event of an older run that arrives after the new run began', () => {
    // Run 1 reported 500 steps, its worker died; run 2 (a redelivery) started at its base.
    const lateOld = word(TaskStatus.RUNNING, 1, 500);
    const newRun = [word(TaskStatus.RUNNING, 2, 0), word(TaskStatus.RUNNING, 2, 1)];
    expect(deliver([...newRun, lateOld])).toEqual([runBaseSeq(2), runBaseSeq(2) + 1]);
  });

  it('drops a progress step that arrives after its run’s final event', () => {
    const step = word(TaskStatus.RUNNING, 1, 3);
    const final = {
      seq: envelopeSeq({ result: 1, resources: { timings: {} } as never, attempt: 1, seq: step.seq + 1 }),
    };
    expect(deliver([final, step])).toEqual([final.seq]);
  });

  it('numbers a completed run that reported nothing after its running event, before the next run', () => {
    const resources = { timings: {} } as never;
    expect(envelopeSeq({ result: 1, resources, attempt: 2, seq: runBaseSeq(2) + 7 })).toBe(runBaseSeq(2) + 7);
    expect(envelopeSeq({ result: 1, resources, attempt: 2 })).toBe(runBaseSeq(2) + 1);
    expect(envelopeSeq({ result: 1, resources, attempt: 1, redeliveries: 1 })).toBe(runBaseSeq(2) + 1);
  });
});

describe('the final event', () => {
  it('is a terminal state', () => {
    for (const status of [
      TaskStatus.COMPLETED,
      TaskStatus.FAILED,
      TaskStatus.TIMED_OUT,
      TaskStatus.CANCELLED,
    ])
      expect(isFinal({ status })).toBe(true);
    expect(isFinal({ status: TaskStatus.RUNNING })).toBe(false);
    expect(isFinal({ status: TaskStatus.PENDING })).toBe(false);
  });

  it("waits for BullMQ's move when a worker wrote it, not when a caller cancelled before any run", () => {
    expect(awaitsMove(word(TaskStatus.FAILED, 1, 9))).toBe(true);
    expect(awaitsMove(word(TaskStatus.CANCELLED, 2, 0))).toBe(true);
    expect(awaitsMove(cancelMarker(0, error))).toBe(false);
    expect(awaitsMove(word(TaskStatus.RUNNING, 1, 2))).toBe(false);
    // A worker's pending word (its attempt failed, a retry follows) is not an end.
    expect(awaitsMove(word(TaskStatus.PENDING, 1, 3))).toBe(false);
  });

  it('keeps the seq it went out with live: the envelope’s, or the last payload when it is that word', () => {
    const resources = { timings: {} } as never;
    const envelope = { result: 1, resources, attempt: 1, seq: runBaseSeq(1) + 4 };
    expect(finalSeq(TaskStatus.COMPLETED, envelope, undefined)).toBe(runBaseSeq(1) + 4);
    expect(finalSeq(TaskStatus.COMPLETED, null, undefined)).toBeUndefined();
    const last = word(TaskStatus.TIMED_OUT, 1, 6);
    expect(finalSeq(TaskStatus.TIMED_OUT, null, last)).toBe(last.seq);
    expect(finalSeq(TaskStatus.FAILED, null, last)).toBeUndefined();
  });

  it('carries the result when completed, the error and its code when a failure', () => {
    expect(
      completedFields({ result: { n: 1 }, resources: { timings: {} } as never, attempt: 2, seq: 7 }, 2),
    ).toEqual({
      status: TaskStatus.COMPLETED,
      seq: 7,
      message: 'completed',
      progress: 100,
      attempt: 2,
      result: { n: 1 },
    });
    // No envelope: the run's last seq, so the event still sorts after the run's reports.
    expect(completedFields(undefined, 3)).toMatchObject({ seq: runEndSeq(3), attempt: 3, result: null });
    const failed = {
      ...word(TaskStatus.FAILED, 1, 2),
      error: { type: 'Error', code: 'E003' as const, message: 'boom' },
    };
    expect(payloadFields(failed)).toMatchObject({
      status: TaskStatus.FAILED,
      error: 'boom',
      error_code: 'E003',
    });
    expect(payloadFields(word(TaskStatus.RUNNING, 1, 2))).not.toHaveProperty('error');
  });
});

describe('the cancel-before-run marker', () => {
  const marker = cancelMarker(0, error, undefined, 123);

  it('is a cancelled payload below every run, final at once, and makes a worker drop the job', () => {
    expect(marker).toMatchObject({
      status: TaskStatus.CANCELLED,
      seq: CANCEL_MARKER_SEQ,
      timestamp: 123,
      error,
    });
    expect(isCancelMarker(marker)).toBe(true);
    expect(isFinal(marker)).toBe(true);
    expect(awaitsMove(marker)).toBe(false);
    expect(dropsOnStart(marker)).toBe(true);
    // After the queued event, so a client that saw only that still gets it.
    expect(deliver([{ seq: QUEUED_SEQ }, marker])).toEqual([QUEUED_SEQ, CANCEL_MARKER_SEQ]);
  });

  it('is not a run’s own cancel, though a worker also drops a job whose last word that is', () => {
    const runsCancel = word(TaskStatus.CANCELLED, 1, 3);
    expect(isCancelMarker(runsCancel)).toBe(false);
    expect(dropsOnStart(runsCancel)).toBe(true);
    expect(dropsOnStart(word(TaskStatus.RUNNING, 1, 3))).toBe(false);
    expect(dropsOnStart(undefined)).toBe(false);
  });

  it('is read from what a queue event carries, whatever that is', () => {
    expect(isCancelMarker(JSON.parse(JSON.stringify(marker)))).toBe(true);
    expect(isCancelMarker(42)).toBe(false);
    expect(isCancelMarker(null)).toBe(false);
    expect(isCancelMarker({ progress: 5 })).toBe(false);
    expect(asProgressPayload(42)).toBeUndefined();
    expect(asProgressPayload(marker)).toBe(marker);
  });
});

describe("the manual retry's pending word", () => {
  it('sorts after every event of the ended run and before the new run’s first, equal to none', () => {
    const pending = retryPending(1, 1, 50);
    expect(pending).toMatchObject({
      status: TaskStatus.PENDING,
      attempt: 1,
      seq: retrySeq(1),
      timestamp: 50,
    });
    expect(pending.seq).toBeGreaterThan(runEndSeq(1));
    expect(pending.seq).toBeLessThan(runBaseSeq(2));
    expect(Number.isInteger(pending.seq)).toBe(false);
    // A client that saw run 1 end gets the retry and the new run, then no late word of run 1.
    const final = word(TaskStatus.FAILED, 1, 8);
    expect(deliver([final, pending, word(TaskStatus.RUNNING, 2, 0), word(TaskStatus.RUNNING, 1, 7)])).toEqual(
      [final.seq, pending.seq, runBaseSeq(2)],
    );
  });

  it('reopens a task only after its end', () => {
    const pending = retryPending(1, 1);
    expect(reopensAfterEnd(true, pending)).toBe(true);
    expect(reopensAfterEnd(false, pending)).toBe(false);
    expect(reopensAfterEnd(true, word(TaskStatus.RUNNING, 2, 1))).toBe(false);
  });

  it('makes the cancels heard before it the old run’s', () => {
    expect(cancelsCountFrom(retryPending(1, 1, 777))).toBe(777);
    expect(cancelsCountFrom(word(TaskStatus.CANCELLED, 1, 1))).toBe(0);
    expect(cancelsCountFrom(undefined)).toBe(0);
  });
});

describe('a record as a progress event', () => {
  const rec = (status: TaskStatus, attempt: number, extra: Partial<TaskRecord> = {}) =>
    ({ status, attempt, message: 'm', progress: 40, result: null, error: null, ...extra }) as TaskRecord;

  it('takes the queued seq before any run, the run’s start while running, the run’s end when final', () => {
    expect(recordFields(rec(TaskStatus.PENDING, 0)).seq).toBe(QUEUED_SEQ);
    expect(recordFields(rec(TaskStatus.RUNNING, 2)).seq).toBe(runBaseSeq(2));
    expect(recordFields(rec(TaskStatus.PENDING, 1)).seq).toBe(runBaseSeq(1));
    expect(recordFields(rec(TaskStatus.FAILED, 1)).seq).toBe(runEndSeq(1));
  });

  it('carries the result only when completed, the error only when there is one', () => {
    const done = recordFields(rec(TaskStatus.COMPLETED, 1, { progress: 100, result: { ok: 1 } }));
    expect(done).toMatchObject({ result: { ok: 1 }, progress: 100 });
    expect(done).not.toHaveProperty('error');
    const failed = recordFields(
      rec(TaskStatus.FAILED, 1, { result: 'stale', error: { type: 'Error', code: 'E003', message: 'no' } }),
    );
    expect(failed).toMatchObject({ error: 'no', error_code: 'E003' });
    expect(failed).not.toHaveProperty('result');
  });

  it('fills what its fields leave out from the task, and has no empty optional keys', () => {
    const task = { userId: 'u', taskName: 'echo', step: 2, progress: 30, attempt: 1 };
    const event = progressEvent('t1', task, { status: TaskStatus.RUNNING, seq: 5, timestamp: 9 });
    expect(event).toEqual({
      status: TaskStatus.RUNNING,
      step: 2,
      task: 'echo',
      message: '',
      task_id: 't1',
      user_id: 'u',
      progress: 30,
      attempt: 1,
      seq: 5,
      timestamp: 9,
    });
  });
});
