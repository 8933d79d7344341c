// One task: its request, timeline, live progress and streamed text (socket `subscribe`, replayed
// from the start), result, error, resources and the actions it allows.
import { batch, useSignal } from '@preact/signals';
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { Socket } from 'socket.io-client';
import type { ApiError } from '../api.js';
import { post, request, taskPath } from '../api.js';
import { JsonView } from '../components/json-view.js';
import { ProgressBar, StatusBadge } from '../components/progress-bar.js';
import { Timeline, type LiveState } from '../components/timeline.js';
import { withOutcome } from '../components/toast.js';
import { fmtBytes, fmtCost, fmtDuration, fmtInt, fmtTime } from '../format.js';
import { tasksHref } from '../router.js';
import { useSocket } from '../socket.js';
import {
  CANCELLABLE,
  RETRYABLE,
  TERMINAL,
  type Ack,
  type ProgressEvent,
  type StreamEvent,
  type TaskRecord,
} from '../types.js';

interface Live {
  status: string;
  progress: number;
  message: string;
  attempt: number;
  seq: number;
}

function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="kv">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function Resources({ record }: { record: TaskRecord }) {
  const r = record.resources;
  return (
    <section class="card" data-section="resources">
      <h2>Resources</h2>
      <dl class="kvs">
        <Field label="Worker">
          <span class="mono">{record.worker ?? '—'}</span>
        </Field>
        <Field label="Duration">{fmtDuration(record.duration_ms)}</Field>
        <Field label="Tokens">
          {r ? `${fmtInt(r.totals.input_tokens)} in / ${fmtInt(r.totals.output_tokens)} out` : '—'}
        </Field>
        <Field label="Cost">{r ? fmtCost(r.totals.cost_usd) : '—'}</Field>
      </dl>
      {r && r.model_usage.length > 0 && (
        <div class="table-scroll">
          <table class="table compact">
            <thead>
              <tr>
                <th>Provider</th>
                <th>Model</th>
                <th class="num">In</th>
                <th class="num">Out</th>
                <th class="num">Cost</th>
              </tr>
            </thead>
            <tbody>
              {r.model_usage.map((u, i) => (
                <tr key={i}>
                  <td>{u.provider}</td>
                  <td>{u.model}</td>
                  <td class="num">{fmtInt(u.input_tokens)}</td>
                  <td class="num">{fmtInt(u.output_tokens)}</td>
                  <td class="num">{fmtCost(u.cost_usd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {r && r.files.length > 0 && (
        <div class="table-scroll">
          <table class="table compact">
            <thead>
              <tr>
                <th>File</th>
                <th>Operation</th>
                <th class="num">Size</th>
              </tr>
            </thead>
            <tbody>
              {r.files.map((f, i) => (
                <tr key={i}>
                  <td class="mono">{f.path}</td>
                  <td>{f.operation}</td>
                  <td class="num">{fmtBytes(f.bytes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {r && Object.keys(r.timings).length > 0 && (
        <dl class="kvs">
          {Object.entries(r.timings).map(([k, v]) => (
            <Field key={k} label={k}>
              {fmtDuration(v)}
            </Field>
          ))}
        </dl>
      )}
    </section>
  );
}

function ErrorCard({ record }: { record: TaskRecord }) {
  const e = record.error;
  if (!e) return null;
  return (
    <section class="card card-error" data-section="error">
      <h2>Error</h2>
      <dl class="kvs">
        <Field label="Code">
          <span class="mono">{e.code}</span>
        </Field>
        {e.type && <Field label="Type">{e.type}</Field>}
      </dl>
      <pre class="code error-text">{e.message}</pre>
      {e.details && Object.keys(e.details).length > 0 && <JsonView label="Details" value={e.details} />}
      {e.stack ? (
        <details>
          <summary>Stack</summary>
          <pre class="code">{e.stack}</pre>
        </details>
      ) : (
        <p class="muted small">The gateway does not send stack traces; the worker's log has it.</p>
      )}
    </section>
  );
}

export function TaskPage({ id }: { id: string }) {
  const record = useSignal<TaskRecord | null>(null);
  const problem = useSignal<string | null>(null);
  const live = useSignal<Live | null>(null);
  const states = useSignal<LiveState[]>([]);
  const text = useSignal('');
  const busy = useSignal(false);
  const seen = useRef(new Set<string>());
  const lastSeq = useRef(-1);
  const streamChunks = useRef<Array<{ seq: number; delta: string }>>([]);
  const fetching = useRef<Promise<void> | null>(null);

  const load = () => {
    fetching.current ??= request<TaskRecord>(taskPath(id))
      .then(
        (r) => {
          record.value = r;
          problem.value = null;
        },
        (e: ApiError) => {
          problem.value = e.status === 404 ? `No task with id ${id} (or not yours).` : e.message;
        },
      )
      .finally(() => (fetching.current = null));
    return fetching.current;
  };
  useEffect(() => {
    void load();
  }, [id]);

  const subscribe = (s: Socket) => {
    s.emit('subscribe', { task_id: id, after_seq: lastSeq.current }, (ack: Ack) => {
      if (!ack.ok && ack.error.code !== 'RATE_LIMITED') problem.value ??= ack.error.message;
    });
  };

  useSocket<ProgressEvent>(
    'progress',
    (e) => {
      if (e.task_id !== id || seen.current.has(`p${e.seq}`)) return;
      seen.current.add(`p${e.seq}`);
      lastSeq.current = Math.max(lastSeq.current, e.seq);
      const prev = live.value;
      batch(() => {
        if (!prev || e.seq > prev.seq)
          live.value = {
            status: e.status,
            progress: e.progress,
            message: e.message,
            attempt: e.attempt,
            seq: e.seq,
          };
        const last = states.value.at(-1);
        if (!last || last.status !== e.status || last.attempt !== e.attempt)
          states.value = [
            ...states.value,
            { status: e.status, attempt: e.attempt, at: e.timestamp, message: e.message },
          ];
      });
      // The record has what events do not carry (result, resources, runs): read it again at the ends.
      const r = record.value;
      if (
        TERMINAL.has(e.status) ||
        (r && (e.attempt !== r.attempt || (e.status === 'pending' && r.status !== 'pending')))
      )
        void load();
    },
    { start: subscribe, key: id },
  );
  useSocket<StreamEvent>(
    'stream',
    (e) => {
      if (e.task_id !== id || seen.current.has(`s${e.seq}`)) return;
      seen.current.add(`s${e.seq}`);
      lastSeq.current = Math.max(lastSeq.current, e.seq);
      // A live delta can come before the replay of earlier ones (the socket is in the owner's room
      // before `subscribe` answers): the text is the deltas in seq order, not in arrival order.
      const chunks = streamChunks.current;
      const last = chunks[chunks.length - 1];
      if (!last || e.seq > last.seq) {
        chunks.push({ seq: e.seq, delta: e.delta });
        text.value += e.delta;
        return;
      }
      chunks.splice(
        chunks.findIndex((c) => c.seq > e.seq),
        0,
        { seq: e.seq, delta: e.delta },
      );
      text.value = chunks.map((c) => c.delta).join('');
    },
    { start: () => undefined, key: id },
  );

  const r = record.value;
  if (!r)
    return (
      <main class="page" data-view="task">
        {problem.value ? (
          <p class="notice notice-error" role="alert">
            {problem.value}
          </p>
        ) : (
          <p class="muted">Loading task {id}…</p>
        )}
        <a href="#/tasks">← All tasks</a>
      </main>
    );

  // The live state wins over the record while it is newer (the record is read at the ends).
  const l = live.value;
  const liveNewer = l && (l.attempt > r.attempt || (l.attempt === r.attempt && !TERMINAL.has(r.status)));
  const status = liveNewer ? l.status : r.status;
  const progress = liveNewer ? l.progress : r.progress;
  const message = liveNewer ? l.message : r.message;

  const act = async (what: 'cancel' | 'retry') => {
    busy.value = true;
    if (what === 'cancel')
      await withOutcome(
        'Cancel',
        () => post<{ status?: string; cancelled?: boolean }>(`${taskPath(id)}/cancel`),
        () => 'Cancel requested',
      );
    else
      await withOutcome(
        'Retry',
        () => post<{ attempt: number }>(`${taskPath(id)}/retry`),
        (res) => `Retry queued as attempt ${res.attempt}`,
      );
    busy.value = false;
    await load();
  };

  return (
    <main class="page" data-view="task">
      <div class="page-head">
        <div>
          <a href="#/tasks" class="muted small">
            ← All tasks
          </a>
          <h1 class="task-title">
            {r.task_name} <StatusBadge status={status} />
          </h1>
          <div class="mono muted small" data-task-id={r.task_id}>
            {r.task_id}
          </div>
        </div>
        <div class="actions">
          {CANCELLABLE.has(status) && (
            <button
              type="button"
              class="btn btn-danger"
              disabled={busy.value}
              onClick={() => void act('cancel')}
            >
              Cancel task
            </button>
          )}
          {RETRYABLE.has(status) && (
            <button
              type="button"
              class="btn btn-primary"
              disabled={busy.value}
              onClick={() => void act('retry')}
            >
              Retry
            </button>
          )}
        </div>
      </div>
      {problem.value && <p class="notice notice-error">{problem.value}</p>}
      <section class="card" data-section="progress">
        <ProgressBar value={progress} status={status} message={message} />
      </section>
      <div class="grid-2">
        <section class="card" data-section="request">
          <h2>Request</h2>
          <dl class="kvs">
            <Field label="Mode">{r.mode}</Field>
            <Field label="Service">{r.service}</Field>
            <Field label="Task">{r.task_name}</Field>
            <Field label="User">
              <a href={tasksHref({ user_id: r.user_id })}>{r.user_id}</a>
            </Field>
            <Field label="Queue">{r.queue}</Field>
            <Field label="Step">{r.step}</Field>
            <Field label="Priority">{r.priority}</Field>
            <Field label="Created">{fmtTime(r.created_at)}</Field>
          </dl>
          <JsonView label="Input" value={r.input_data} />
          <JsonView label="Context" value={r.context} open={false} />
        </section>
        <section class="card" data-section="timeline">
          <h2>Timeline</h2>
          <Timeline record={r} live={states.value} />
        </section>
      </div>
      <section class="card" data-section="stream">
        <h2>Streamed text</h2>
        {text.value ? (
          <pre class="code stream" data-stream>
            {text.value}
          </pre>
        ) : (
          <p class="muted">Nothing streamed{TERMINAL.has(status) ? '' : ' yet'}.</p>
        )}
      </section>
      {r.status === 'completed' && (
        <section class="card" data-section="result">
          <h2>Result</h2>
          <JsonView label="Result" value={r.result} />
        </section>
      )}
      <ErrorCard record={r} />
      <Resources record={r} />
    </main>
  );
}
