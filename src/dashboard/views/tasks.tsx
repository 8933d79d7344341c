// The tasks table: one page fetched per filter change or page turn, then kept live by
// `task_changes` frames, applied in one batch per animation frame whatever their rate.
import { useSignal } from '@preact/signals';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ApiError } from '../api.js';
import { query, request } from '../api.js';
import { ProgressBar, StatusBadge } from '../components/progress-bar.js';
import { fmtTime } from '../format.js';
import { navigate, taskHref, tasksHref } from '../router.js';
import { session } from '../session.js';
import { useSocket } from '../socket.js';
import { QUEUES, STATUSES, type TaskChange, type TaskPage, type TaskRecord } from '../types.js';

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
const PAGE_SIZE = 50;

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

function fromRecord(r: TaskRecord): Row {
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

const timeOf = (v: string | undefined) => {
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

const toLocalInput = (iso: string | undefined) => {
  const t = timeOf(iso);
  if (t === undefined) return '';
  const d = new Date(t - new Date(t).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
};

function FilterBar({ filters, admin }: { filters: Filters; admin: boolean }) {
  const [draft, setDraft] = useState<Filters>(filters);
  useEffect(() => setDraft(filters), [JSON.stringify(filters)]);
  const apply = (f: Filters) => navigate(tasksHref(f));
  const set = (k: keyof Filters, v: string) => setDraft({ ...draft, [k]: v || undefined });
  const text = (k: keyof Filters, label: string) => (
    <label class="field">
      <span>{label}</span>
      <input
        name={k}
        value={draft[k] ?? ''}
        onInput={(e) => set(k, (e.target as HTMLInputElement).value.trim())}
        placeholder="any"
      />
    </label>
  );
  const time = (k: 'since' | 'until', label: string) => (
    <label class="field">
      <span>{label}</span>
      <input
        type="datetime-local"
        name={k}
        value={toLocalInput(draft[k])}
        onInput={(e) => {
          const v = (e.target as HTMLInputElement).value;
          set(k, v ? new Date(v).toISOString() : '');
        }}
      />
    </label>
  );
  return (
    <form
      class="filters card"
      onSubmit={(e) => {
        e.preventDefault();
        apply(draft);
      }}
    >
      <label class="field">
        <span>Status</span>
        <select
          name="status"
          value={draft.status ?? ''}
          onChange={(e) => apply({ ...draft, status: (e.target as HTMLSelectElement).value || undefined })}
        >
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s.replace('_', ' ')}
            </option>
          ))}
        </select>
      </label>
      <label class="field">
        <span>Queue</span>
        <select
          name="queue"
          value={draft.queue ?? ''}
          onChange={(e) => apply({ ...draft, queue: (e.target as HTMLSelectElement).value || undefined })}
        >
          <option value="">any</option>
          {QUEUES.map((q) => (
            <option key={q} value={q}>
              {q}
            </option>
          ))}
        </select>
      </label>
      {text('task_name', 'Task')}
      {text('mode', 'Mode')}
      {text('service', 'Service')}
      {admin && text('user_id', 'User')}
      {time('since', 'Since')}
      {time('until', 'Until')}
      <div class="filter-actions">
        <button type="submit" class="btn btn-primary">
          Apply
        </button>
        <button type="button" class="btn" onClick={() => apply({})}>
          Clear
        </button>
      </div>
    </form>
  );
}

function SearchById() {
  const [id, setId] = useState('');
  return (
    <form
      class="search"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        if (id.trim()) navigate(taskHref(id.trim()));
      }}
    >
      <input
        name="task_id"
        aria-label="Task id"
        placeholder="Go to task id…"
        value={id}
        onInput={(e) => setId((e.target as HTMLInputElement).value)}
      />
      <button type="submit" class="btn">
        Open
      </button>
    </form>
  );
}

function TaskRow({ row, admin }: { row: Row; admin: boolean }) {
  return (
    <tr data-task-id={row.task_id} data-status={row.status}>
      <td class="mono id-cell">
        <a href={taskHref(row.task_id)}>{row.task_id}</a>
      </td>
      <td>{row.task_name}</td>
      <td>
        <StatusBadge status={row.status} />
        {row.error_code && <span class="muted small"> {row.error_code}</span>}
      </td>
      <td class="progress-cell">
        <ProgressBar value={row.progress} status={row.status} message={row.message} />
      </td>
      <td>{row.queue}</td>
      <td>
        {row.mode ?? ''}
        {row.service ? ` / ${row.service}` : ''}
      </td>
      {admin && <td>{row.user_id}</td>}
      <td class="num">{row.attempt}</td>
      <td class="nowrap">{row.created_at ? fmtTime(row.created_at) : '—'}</td>
    </tr>
  );
}

/** Mounted once per filter set (keyed by the query in the app): a new filter starts on page 1. */
export function Tasks({ params }: { params: URLSearchParams }) {
  const admin = session.me.value?.admin ?? false;
  const key = params.toString();
  const filters = useMemo(() => filtersFrom(params), [key]);
  const rows = useSignal<Row[]>([]);
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const [next, setNext] = useState<string | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const page = cursors.length - 1;
  const cursor = cursors[page];

  useEffect(() => {
    let stale = false;
    setLoading(true);
    setError(null);
    request<TaskPage>(`/tasks${query({ ...filters, limit: PAGE_SIZE, cursor })}`).then(
      (res) => {
        if (stale) return;
        rows.value = res.tasks.map(fromRecord);
        setNext(res.next_cursor);
        setLoading(false);
      },
      (e: ApiError) => {
        if (stale) return;
        rows.value = [];
        setNext(undefined);
        setError(e.message);
        setLoading(false);
      },
    );
    return () => {
      stale = true;
    };
  }, [key, cursor]);

  // Changes gathered between animation frames, applied together: one render per frame at most.
  const buffer = useRef<TaskChange[]>([]);
  const scheduled = useRef(0);
  const live = useRef({ filters, firstPage: page === 0 });
  live.current = { filters, firstPage: page === 0 };
  useEffect(() => () => cancelAnimationFrame(scheduled.current), []);
  useSocket<{ changes: TaskChange[] }>(
    'task_changes',
    (frame) => {
      for (const c of frame.changes) buffer.current.push(c);
      if (scheduled.current) return;
      scheduled.current = requestAnimationFrame(() => {
        scheduled.current = 0;
        const changes = buffer.current;
        buffer.current = [];
        rows.value = applyChanges(rows.value, changes, live.current.filters, live.current.firstPage);
      });
    },
    { start: (s) => s.emit('watch_tasks', {}), stop: (s) => s.emit('unwatch_tasks', {}) },
  );

  const shown = rows.value;
  return (
    <main class="page" data-view="tasks">
      <div class="page-head">
        <h1>Tasks</h1>
        <SearchById />
      </div>
      <FilterBar filters={filters} admin={admin} />
      <section class="card">
        {error && (
          <p class="notice notice-error" role="alert">
            {error}
          </p>
        )}
        <div class="table-scroll">
          <table class="table" data-table="tasks">
            <thead>
              <tr>
                <th>Task id</th>
                <th>Task</th>
                <th>Status</th>
                <th>Progress</th>
                <th>Queue</th>
                <th>Mode / service</th>
                {admin && <th>User</th>}
                <th class="num">Attempt</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <TaskRow key={r.task_id} row={r} admin={admin} />
              ))}
              {!loading && shown.length === 0 && (
                <tr>
                  <td colSpan={admin ? 9 : 8} class="empty">
                    No tasks match.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        <div class="pager">
          <button
            type="button"
            class="btn"
            disabled={page === 0}
            onClick={() => setCursors(cursors.slice(0, -1))}
          >
            ← Previous
          </button>
          <span class="muted">
            {loading ? 'Loading…' : `Page ${page + 1} · ${shown.length} task(s)`}
            {page === 0 && !loading ? ' · live' : ''}
          </span>
          <button
            type="button"
            class="btn"
            disabled={!next || loading}
            onClick={() => setCursors([...cursors, next])}
          >
            Next →
          </button>
        </div>
      </section>
    </main>
  );
}
