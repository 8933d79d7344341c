// The gateway's wire shapes the page reads (docs/dashboard.md). Kept here rather than imported
// from src/core: the page is built for the browser and must not pull in the engine.

export type TaskStatus = 'pending' | 'running' | 'completed' | 'failed' | 'timed_out' | 'cancelled';
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

export interface TaskError {
  type?: string;
  code: string;
  message: string;
  stack?: string;
  details?: Record<string, unknown>;
}

export interface Run {
  attempt: number;
  status: string;
  started_at: string | null;
  finished_at: string | null;
  worker: string | null;
  error: TaskError | null;
}

export interface Resources {
  files: Array<{ path: string; op: string; bytes?: number }>;
  model_usage: Array<{
    provider: string;
    model: string;
    input_tokens: number;
    output_tokens: number;
    cost_usd?: number;
  }>;
  timings: Record<string, number>;
  totals: { input_tokens: number; output_tokens: number; cost_usd: number };
}

export interface TaskRecord {
  task_id: string;
  task_name: string;
  user_id: string;
  step: number;
  mode: string;
  service: string;
  queue: string;
  status: TaskStatus;
  progress: number;
  message: string;
  attempt: number;
  max_attempts: number;
  redeliveries: number;
  priority: number;
  input_data: Record<string, unknown>;
  context: Record<string, unknown>;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  result: unknown;
  error: TaskError | null;
  resources: Resources | null;
  worker: string | null;
  runs?: Run[];
}

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
