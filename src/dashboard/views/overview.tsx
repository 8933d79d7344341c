// Workers, queues (with actions and charts of the last hour) and totals, from `watch_stats`.
import { batch, signal } from '@preact/signals';
import type { Socket } from 'socket.io-client';
import { post, queuePath } from '../api.js';
import { Chart, type Series } from '../components/chart.js';
import { confirmAction } from '../components/confirm-dialog.js';
import { toast, withOutcome } from '../components/toast.js';
import { fmtAgo, fmtBytes, fmtCost, fmtDuration, fmtInt, fmtTime } from '../format.js';
import { tasksHref } from '../router.js';
import { useSocket } from '../socket.js';
import { STATUSES, type Ack, type StatsFrame, type StatsPoint, type WorkerInfo } from '../types.js';

const HOUR_MS = 3_600_000;

const frame = signal<StatsFrame | null>(null);
const history = signal<StatsPoint[]>([]);
const intervalMs = signal(2000);
const problem = signal<string | null>(null);

function watchStats(s: Socket): void {
  s.emit('watch_stats', {}, (ack: Ack<{ interval_ms: number; history: StatsPoint[] }>) => {
    if (!ack.ok) {
      problem.value = ack.error.message;
      return;
    }
    batch(() => {
      problem.value = null;
      intervalMs.value = ack.interval_ms;
      history.value = ack.history;
    });
  });
}

function onStats(f: StatsFrame): void {
  const cutoff = f.at - HOUR_MS;
  batch(() => {
    frame.value = f;
    const points = history.value;
    const kept = points.length > 0 && points[0]!.at < cutoff ? points.filter((p) => p.at >= cutoff) : points;
    history.value = kept.at(-1)?.at === f.point.at ? kept : [...kept, f.point];
  });
}

function concurrency(c: WorkerInfo['concurrency']): string {
  if (typeof c === 'number') return String(c);
  return Object.entries(c ?? {})
    .map(([q, n]) => `${q}=${n}`)
    .join(', ');
}

function Workers({ workers }: { workers: WorkerInfo[] }) {
  const now = frame.value?.at ?? Date.now();
  return (
    <section class="card">
      <h2>
        Workers <span class="muted">({workers.filter((w) => w.alive).length} alive)</span>
      </h2>
      <div class="table-scroll">
        <table class="table" data-table="workers">
          <thead>
            <tr>
              <th>Name</th>
              <th>Host</th>
              <th>Queues</th>
              <th class="num">Concurrency</th>
              <th class="num">Active</th>
              <th class="num">Processed</th>
              <th class="num">Failed</th>
              <th class="num">RSS</th>
              <th>Last heartbeat</th>
            </tr>
          </thead>
          <tbody>
            {workers.length === 0 && (
              <tr>
                <td colSpan={9} class="empty">
                  No workers seen.
                </td>
              </tr>
            )}
            {workers.map((w) => (
              <tr key={w.name} class={w.alive ? '' : 'gone'} title={w.alive ? '' : 'not seen lately'}>
                <td class="mono">{w.name}</td>
                <td>
                  {w.hostname} <span class="muted">pid {w.pid}</span>
                </td>
                <td>{(w.queues ?? []).join(', ')}</td>
                <td class="num">{concurrency(w.concurrency)}</td>
                <td class="num">{fmtInt(w.active)}</td>
                <td class="num">{fmtInt(w.processed)}</td>
                <td class="num">{fmtInt(w.failed)}</td>
                <td class="num">{fmtBytes(w.rss_bytes)}</td>
                <td>{w.alive ? fmtAgo(w.last_seen, now) : `gone · ${fmtAgo(w.last_seen, now)}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

async function pauseOrResume(name: string, paused: boolean): Promise<void> {
  const verb = paused ? 'resume' : 'pause';
  await withOutcome(
    `${verb} ${name}`,
    () => post<{ queue: string; paused: boolean }>(`${queuePath(name)}/${verb}`),
    (r) => `${r.queue} ${r.paused ? 'paused' : 'resumed'}`,
  );
}

async function purge(name: string, waiting: number): Promise<void> {
  const yes = await confirmAction(
    `Purge ${name}?`,
    `This removes the ${fmtInt(waiting)} waiting and delayed task(s) of ${name}. Running tasks go on. It cannot be undone.`,
    'Purge',
  );
  if (!yes) {
    toast('ok', `${name} not purged`);
    return;
  }
  await withOutcome(
    `purge ${name}`,
    () => post<{ removed: number }>(`${queuePath(name)}/purge`),
    (r) => `${name} purged: ${fmtInt(r.removed)} task(s) removed`,
  );
}

function Queues() {
  const queues = frame.value?.queues ?? [];
  return (
    <section class="card">
      <h2>Queues</h2>
      <div class="table-scroll">
        <table class="table" data-table="queues">
          <thead>
            <tr>
              <th>Queue</th>
              <th class="num">Waiting</th>
              <th class="num">Delayed</th>
              <th class="num">Active</th>
              <th class="num">Failed</th>
              <th>State</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {queues.map((q) => (
              <tr key={q.name} data-queue={q.name}>
                <td>
                  <a href={tasksHref({ queue: q.name })}>{q.name}</a>
                </td>
                <td class="num">{fmtInt(q.waiting)}</td>
                <td class="num">{fmtInt(q.delayed)}</td>
                <td class="num">{fmtInt(q.active)}</td>
                <td class="num">{fmtInt(q.failed)}</td>
                <td>
                  {q.paused ? (
                    <span class="badge badge-paused">paused</span>
                  ) : (
                    <span class="muted">running</span>
                  )}
                </td>
                <td>
                  <div class="actions">
                    <button
                      type="button"
                      class="btn btn-small"
                      onClick={() => void pauseOrResume(q.name, q.paused)}
                    >
                      {q.paused ? 'Resume' : 'Pause'}
                    </button>
                    <button
                      type="button"
                      class="btn btn-small btn-danger"
                      onClick={() => void purge(q.name, q.waiting + q.delayed)}
                    >
                      Purge
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Charts() {
  const points = history.value;
  const names = [...new Set(points.flatMap((p) => Object.keys(p.queues)))].sort();
  const xs = points.map((p) => p.at / 1000);
  const perS = intervalMs.value / 1000;
  const throughput: Series[] = names.map((n) => ({
    label: n,
    values: points.map((p) => {
      const q = p.queues[n];
      return q ? (q.completed + q.failed) / perS : 0;
    }),
  }));
  const p95: Series[] = names.map((n) => ({
    label: n,
    values: points.map((p) => p.queues[n]?.p95_ms ?? null),
  }));
  return (
    <div class="grid-2">
      <section class="card">
        <h2>Throughput</h2>
        <Chart title="tasks finished per second, last hour" unit="/s" xs={xs} series={throughput} />
      </section>
      <section class="card">
        <h2>Duration p95</h2>
        <Chart title="p95 task duration, last hour" unit=" ms" xs={xs} series={p95} />
      </section>
    </div>
  );
}

function Totals({ f }: { f: StatsFrame }) {
  const since = f.since !== undefined ? fmtTime(f.since) : 'the gateway started';
  return (
    <section class="card">
      <h2>
        Totals <span class="muted">since {since}</span>
      </h2>
      <div class="stats">
        {STATUSES.map((s) => (
          <a key={s} class={`stat stat-${s}`} href={tasksHref({ status: s })} data-total={s}>
            <span class="stat-value">{fmtInt(f.totals[s])}</span>
            <span class="stat-label">{s.replace('_', ' ')}</span>
          </a>
        ))}
        <div class="stat">
          <span class="stat-value">{fmtInt(f.tokens.total)}</span>
          <span class="stat-label">
            tokens ({fmtInt(f.tokens.prompt)} in / {fmtInt(f.tokens.completion)} out)
          </span>
        </div>
        <div class="stat">
          <span class="stat-value">{fmtCost(f.cost_usd)}</span>
          <span class="stat-label">cost</span>
        </div>
      </div>
    </section>
  );
}

export function Overview() {
  useSocket<StatsFrame>('stats', onStats, {
    start: watchStats,
    stop: (s) => s.emit('unwatch_stats', {}),
  });
  const f = frame.value;
  if (problem.value)
    return (
      <main class="page">
        <p class="notice notice-error">The gateway refused the stats: {problem.value}</p>
      </main>
    );
  return (
    <main class="page" data-view="overview">
      {!f ? (
        <p class="muted">Waiting for the first stats frame… (every {fmtDuration(intervalMs.value)})</p>
      ) : (
        <>
          <Totals f={f} />
          <Queues />
          <Charts />
          <Workers workers={f.workers} />
        </>
      )}
    </main>
  );
}
