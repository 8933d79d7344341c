// The tasks table's rows and how `task_changes` update them: plain functions, no DOM, so that a
// test can feed them thousands of changes.
import type { TaskChange, TaskRecord } from './types.js';

export const FILTERS = [
  'status',
  'queue',
  'task_name',
  'mode',
  'service',
  'user_id',
  'since',
  'until',
] as const;
export type Filters = Partial<Record<(typeof FILTERS)[number], string>>;
export const PAGE_SIZE = 50;

/** What a row shows: a record's fields that a change can update, plus when it was created. */
export interface Row {
  task_id: string;
  task_name: string;
  user_id: string;
  queue: string;
  mode?: string;
  service?: string;
  status: string;
  progress: number;
  message: string;
  attempt: number;
  error_code?: string;
  created_at: number | null;
  updated_at: number;
}

export function fromRecord(r: TaskRecord): Row {
  return {
    task_id: r.task_id,
    task_name: r.task_name,
    user_id: r.user_id,
    queue: r.queue,
    mode: r.mode,
    service: r.service,
    status: r.status,
    progress: r.progress,
    message: r.message,
    attempt: r.attempt,
    ...(r.error?.code ? { error_code: r.error.code } : {}),
    created_at: Date.parse(r.created_at),
    updated_at: Date.parse(r.finished_at ?? r.started_at ?? r.created_at),
  };
}

export function filtersFrom(params: URLSearchParams): Filters {
  const f: Filters = {};
  for (const k of FILTERS) {
    const v = params.get(k);
    if (v) f[k] = v;
  }
  return f;
}

export const timeOf = (v: string | undefined) => {
  if (!v) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  return Number.isFinite(n) ? n : undefined;
};

/** Whether a task seen in a change belongs in the filtered view. */
export function matches(c: TaskChange & { created_at?: number }, f: Filters): boolean {
  if (f.status && c.status !== f.status) return false;
  if (f.queue && c.queue !== f.queue) return false;
  if (f.task_name && c.task_name !== f.task_name) return false;
  if (f.mode && c.mode !== f.mode) return false;
  if (f.service && c.service !== f.service) return false;
  if (f.user_id && c.user_id !== f.user_id) return false;
  const at = c.created_at ?? c.timestamp;
  const since = timeOf(f.since);
  const until = timeOf(f.until);
  if (since !== undefined && at < since) return false;
  if (until !== undefined && at > until) return false;
  return true;
}

/**
 * The rows after a batch of changes: rows in view take the latest state; a task not in view joins
 * the top of the first page when it is new (created after the newest row, when the gateway says
 * when it was created; otherwise when it is seen pending on its first attempt) and matches the
 * filters. The page keeps its size.
 */
export function applyChanges(
  rows: Row[],
  changes: Array<TaskChange & { created_at?: number }>,
  filters: Filters,
  firstPage: boolean,
  limit = PAGE_SIZE,
): Row[] {
  if (changes.length === 0) return rows;
  const index = new Map<string, number>();
  rows.forEach((r, i) => index.set(r.task_id, i));
  const next = rows.slice();
  const added: Row[] = [];
  const addedIndex = new Map<string, number>();
  let changed = false;
  const newest = rows.reduce((m, r) => Math.max(m, r.created_at ?? 0), 0);
  for (const c of changes) {
    const i = index.get(c.task_id);
    const row = i !== undefined ? next[i] : undefined;
    if (row) {
      if (c.timestamp < row.updated_at) continue;
      next[i!] = {
        ...row,
        status: c.status,
        progress: c.progress,
        message: c.message,
        attempt: c.attempt,
        error_code: c.error_code,
        updated_at: c.timestamp,
      };
      changed = true;
      continue;
    }
    const j = addedIndex.get(c.task_id);
    if (j !== undefined) {
      const a = added[j]!;
      added[j] = {
        ...a,
        status: c.status,
        progress: c.progress,
        message: c.message,
        attempt: c.attempt,
        updated_at: c.timestamp,
      };
      continue;
    }
    if (!firstPage || !matches(c, filters)) continue;
    const isNew =
      c.created_at !== undefined ? c.created_at > newest : c.status === 'pending' && c.attempt <= 1;
    if (!isNew) continue;
    addedIndex.set(c.task_id, added.length);
    added.push({
      task_id: c.task_id,
      task_name: c.task_name,
      user_id: c.user_id,
      queue: c.queue,
      ...(c.mode !== undefined ? { mode: c.mode } : {}),
      ...(c.service !== undefined ? { service: c.service } : {}),
      status: c.status,
      progress: c.progress,
      message: c.message,
      attempt: c.attempt,
      ...(c.error_code !== undefined ? { error_code: c.error_code } : {}),
      created_at: c.created_at ?? c.timestamp,
      updated_at: c.timestamp,
    });
  }
  if (added.length === 0) return changed ? next : rows;
  added.sort((a, b) => (b.created_at ?? 0) - (a.created_at ?? 0));
  return [...added, ...next].slice(0, limit);
}
