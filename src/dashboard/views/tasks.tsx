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
import {
  applyChanges,
  filtersFrom,
  fromRecord,
  PAGE_SIZE,
  timeOf,
  type Filters,
  type Row,
} from '../live-rows.js';
import { QUEUES, STATUSES, type TaskChange, type TaskPage } from '../types.js';

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
