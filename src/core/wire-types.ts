/**
 * The socket frames the gateway sends the dashboard (docs/dashboard.md), declared once for both:
 * the gateway builds them against these types and the page reads them. Declarations only, with
 * type-only imports (erased at build), so the page's bundle takes in no server code and its
 * typecheck no socket.io or engine.
 */
import type { QueueKind, TaskStatus } from './task.js';

/** One task's latest state in a `task_changes` frame. */
export interface TaskChange {
  task_id: string;
  user_id: string;
  task_name: string;
  queue: QueueKind;
  mode?: string;
  service?: string;
  status: TaskStatus;
  progress: number;
  message: string;
  attempt: number;
  error_code?: string;
  timestamp: number;
  /** When the task was submitted (epoch ms): a table places a task first seen already ended. */
  created_at?: number;
}

/** Tasks finished in one interval per queue, and the p95 of their durations (ms; 0 when none). */
export interface StatsPoint {
  at: number;
  queues: Record<string, { completed: number; failed: number; p95_ms: number }>;
}

/** A worker in a `stats` frame, from its heartbeats; `alive` false once it missed some. */
export interface WorkerInfo {
  name: string;
  hostname: string;
  pid: number;
  queues: string[];
  concurrency: number | Record<string, number>;
  active: number;
  processed: number;
  failed: number;
  /** null from workers older than the field. */
  rss_bytes: number | null;
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

/** A `stats` frame (admins, while they watch). */
export interface StatsFrame {
  at: number;
  /** When this gateway started counting the totals (epoch ms). */
  since?: number;
  workers: WorkerInfo[];
  queues: QueueInfo[];
  totals: Record<TaskStatus, number>;
  tokens: { prompt: number; completion: number; total: number };
  cost_usd: number;
  point: StatsPoint;
}

/** A socket acknowledgement: `ok` with the call's own fields, or a coded error. */
export type Ack<T = Record<string, never>> =
  ({ ok: true } & T) | { ok: false; error: { code: string; message: string } };
