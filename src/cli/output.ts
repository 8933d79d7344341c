/** How the CLI prints records: one JSON line for programs, a short readable block for people. */
import type { TaskRecord } from '../core/task.js';
import type { CancelResult } from '../engine/app.js';
import type { WorkerHeartbeat } from '../engine/store.js';
import type { SubmitResult } from './task-client.js';

/** Exactly one line, whatever the value holds: machine readers split stdout on newlines. */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value);
}

function indent(text: string, pad = '  '): string {
  return text
    .split('\n')
    .map((line) => pad + line)
    .join('\n');
}

function duration(ms: number | null): string {
  if (ms === null) return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** Human-readable record: status first, then where and when, then the result or the error. */
export function formatRecord(record: TaskRecord): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${label.padEnd(9)} ${value}`);
  row('task', `${record.task_id}  (${record.mode}/${record.service}.${record.task_name})`);
  const message = record.message ? `  ${record.message}` : '';
  row('status', `${record.status}  ${Math.round(record.progress)}%${message}`);
  row(
    'queue',
    `${record.queue}  priority ${record.priority}  attempt ${record.attempt}/${record.max_attempts}  user ${record.user_id}  step ${record.step}`,
  );
  row('created', record.created_at);
  if (record.started_at) row('started', record.started_at);
  if (record.finished_at) {
    const took = duration(record.duration_ms);
    row('finished', took ? `${record.finished_at}  (${took})` : record.finished_at);
  }
  if (record.worker) row('worker', record.worker);
  if (record.error) {
    row('error', `${record.error.type} ${record.error.code}: ${record.error.message}`);
  }
  if (record.result !== null && record.result !== undefined) {
    lines.push('result', indent(JSON.stringify(record.result, null, 2)));
  }
  return lines.join('\n');
}

export function formatSubmitted(result: SubmitResult): string {
  return result.task_id;
}

export function formatCancel(result: CancelResult): string {
  if (!result.cancelled)
    return `task ${result.task_id} had already ended (${result.status}); nothing to cancel`;
  if (result.status === 'cancelled') return `task ${result.task_id} cancelled before it ran`;
  return `cancel sent to the worker running task ${result.task_id}; it stops within the cancel grace period`;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

/** Pads each column to its widest cell; the last column is left ragged. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatWorkers(workers: WorkerHeartbeat[], now = Date.now()): string {
  if (!workers.length) return 'no live workers';
  const rows = [...workers]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((w) => [
      w.id,
      w.queues.map((q) => `${q}(${w.pool[q] ?? '?'} x${w.concurrency[q] ?? '?'})`).join(' '),
      String(w.active),
      String(w.processed),
      String(w.failed),
      ago(now - w.started_at).replace(' ago', ''),
      ago(now - w.last_seen),
    ]);
  return table(['worker', 'queues', 'active', 'processed', 'failed', 'up', 'last seen'], rows);
}
