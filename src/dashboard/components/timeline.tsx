// A task's states in order: earlier runs (before a manual retry), the current run from the record,
// and the states seen live since the page opened.
import { fmtClock, fmtDuration, fmtTime } from '../format.js';
import type { Run, TaskRecord } from '../types.js';
import { StatusBadge } from './progress-bar.js';

export interface LiveState {
  status: string;
  attempt: number;
  at: number;
  message: string;
}

function span(start: string | null, end: string | null): string {
  if (!start || !end) return '';
  return fmtDuration(Date.parse(end) - Date.parse(start));
}

function RunRow({ run, current }: { run: Run; current: boolean }) {
  return (
    <li class={`tl-item${current ? ' tl-current' : ''}`} data-attempt={run.attempt}>
      <div class="tl-head">
        <strong>Attempt {run.attempt}</strong> <StatusBadge status={run.status} />
        {current && <span class="muted"> current</span>}
      </div>
      <div class="tl-body">
        <span>started {fmtTime(run.started_at)}</span>
        <span>finished {fmtTime(run.finished_at)}</span>
        {span(run.started_at, run.finished_at) && <span>took {span(run.started_at, run.finished_at)}</span>}
        {run.worker && <span>on {run.worker}</span>}
        {run.error && (
          <span class="error-text">
            {run.error.code}: {run.error.message}
          </span>
        )}
      </div>
    </li>
  );
}

export function Timeline({ record, live }: { record: TaskRecord; live: LiveState[] }) {
  const current: Run = {
    attempt: record.attempt,
    status: record.status,
    started_at: record.started_at,
    finished_at: record.finished_at,
    worker: record.worker,
    error: record.error,
  };
  return (
    <div class="timeline">
      <ol class="tl">
        <li class="tl-item">
          <div class="tl-head">
            <strong>Submitted</strong> <StatusBadge status="pending" />
          </div>
          <div class="tl-body">
            <span>{fmtTime(record.created_at)}</span>
            <span>queue {record.queue}</span>
            <span>
              max attempts {record.max_attempts}
              {record.redeliveries > 0 ? `, redelivered ${record.redeliveries}×` : ''}
            </span>
          </div>
        </li>
        {(record.runs ?? []).map((run, i) => (
          <RunRow key={`run-${i}`} run={run} current={false} />
        ))}
        <RunRow run={current} current />
      </ol>
      {live.length > 0 && (
        <details class="live-states" open>
          <summary>Live events ({live.length})</summary>
          <ol class="events">
            {live.map((s, i) => (
              <li key={i} data-status={s.status}>
                <span class="mono">{fmtClock(s.at)}</span> <StatusBadge status={s.status} />{' '}
                <span class="muted">attempt {s.attempt}</span> {s.message}
              </li>
            ))}
          </ol>
        </details>
      )}
    </div>
  );
}
