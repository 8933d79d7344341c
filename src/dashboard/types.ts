// The gateway's wire shapes the page reads (docs/dashboard.md). Types only: the records' come from
// src/core (erased at build); the socket frames' are restated here, since their modules import the
// server (socket.io, the engine) and the page's typecheck must not take those in.

import type { TaskErrorInfo } from '../core/errors.js';
import type { TaskRecord as CoreRecord, TaskStatus } from '../core/task.js';

export type { TaskStatus };
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

export interface Run {
  attempt: number;
  status: string;
  started_at: string | null;
  finished_at: string | null;
  worker: string | null;
  error: TaskError | null;
}

/** A record as GET /api/tasks/:id sends it: with the runs that ended before a manual retry. */
export type TaskRecord = CoreRecord & { runs?: Run[] };

export interface TaskPage {
  tasks: TaskRecord[];
  next_cursor?: string;
}

/** One task's latest state in a `task_changes` frame. */
export interface TaskChange {
  task_id: string;
  user_id: string;
  task_name: string;
  queue: string;
  mode?: string;
  service?: string;
  status: TaskStatus;
  progress: number;
  message: string;
  attempt: number;
  error_code?: string;
  timestamp: number;
}

export interface ProgressEvent {
  task_id: string;
  user_id: string;
  status: TaskStatus;
  progress: number;
  message: string;
  attempt: number;
  seq: number;
  timestamp: number;
  error_code?: string;
  error?: string;
  result?: unknown;
}

export interface StreamEvent {
  task_id: string;
  seq: number;
  delta: string;
}

export interface WorkerInfo {
  name: string;
  hostname: string;
  pid: number;
  queues: string[];
  concurrency: number | Record<string, number>;
  active: number;
  processed: number;
  failed: number;
  rss_bytes: number;
  last_seen: number;
  alive: boolean;
}

export interface QueueInfo {
  name: string;
  waiting: number;
  delayed: number;
  active: number;
  failed: number;
  completed: number;
  paused: boolean;
}

export interface StatsPoint {
  at: number;
  queues: Record<string, { completed: number; failed: number; p95_ms: number | null }>;
}

export interface StatsFrame {
  at: number;
  since?: number | string;
  workers: WorkerInfo[];
  queues: QueueInfo[];
  totals: Record<TaskStatus, number>;
  tokens: { prompt: number; completion: number; total: number };
  cost_usd: number;
  point: StatsPoint;
}

export type Ack<T = Record<string, never>> =
  ({ ok: true } & T) | { ok: false; error: { code: string; message: string } };
