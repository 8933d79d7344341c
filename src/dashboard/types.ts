// The gateway's wire shapes the page reads (docs/dashboard.md). Types only, from src/core (erased
// at build): the records' from core/task.ts, the progress and stream events' from the task event
// protocol (core/task-events.ts), the dashboard frames' from core/wire-types.ts, which the gateway
// builds them against.

import type { TaskErrorInfo } from '../core/errors.js';
import type { Run, TaskRecord as CoreRecord, TaskStatus } from '../core/task.js';

export type { Run, TaskStatus };
export type { Ack, QueueInfo, StatsFrame, StatsPoint, TaskChange, WorkerInfo } from '../core/wire-types.js';
export type { ProgressEvent, StreamEvent } from '../core/task-events.js';
export const STATUSES: readonly TaskStatus[] = [
  'pending',
  'running',
  'completed',
  'failed',
  'timed_out',
  'cancelled',
];
export const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'timed_out', 'cancelled']);
export const CANCELLABLE: ReadonlySet<string> = new Set(['pending', 'running']);
export const RETRYABLE: ReadonlySet<string> = new Set(['failed', 'timed_out', 'cancelled']);
export const QUEUES = ['fast_tasks', 'heavy_tasks'] as const;

export interface Me {
  user_id: string;
  admin: boolean;
  expires_at: string | null;
}

export type TaskError = TaskErrorInfo;

/** A record as GET /api/tasks/:id sends it: with the runs that ended before a manual retry. */
export type TaskRecord = CoreRecord & { runs?: Run[] };

export interface TaskPage {
  tasks: TaskRecord[];
  next_cursor?: string;
}
