/**
 * Issue 18's rows of the report: aiecs on a real PostgreSQL, a large backlog, worker processes
 * scaled out, and Celery beside us. Tables for people and named figures for the JSON line (a
 * contract, as in report.ts); a section that could not run (no PostgreSQL, no Python with Celery)
 * says so in its table, and its figures are null rather than missing.
 */
import type { BacklogResult } from './backlog.js';
import type { CeleryDirectResult } from './celery-direct.js';
import {
  HEADER,
  compareRow,
  fmt,
  runList,
  skippedTable,
  table,
  verdict,
  type Cell,
} from './report-format.js';
import { OPTION_SIDES, type OptionCostsResult } from './option-costs.js';
import type { ScaleoutResult } from './scaleout.js';
import { meets, pairedRatioMedian, ratio, round } from './stats.js';
import type { IoResult, LatencyResult, ThroughputResult } from './workloads.js';

/** The sections of this module; report.ts's Results carries them. */
export interface ScaleSections {
  /** Raw BullMQ on Redis with none, each and both of the job options aiecs sets: what each costs. */
  options?: OptionCostsResult;
  /** aiecs's PostgreSQL store against raw BullMQ's PostgreSQL backend, no-op tasks. */
  postgres?: ThroughputResult | { skipped: string };
  backlog?: BacklogResult;
  scaleout?: ScaleoutResult;
  /** Celery's no-op, latency and I/O figures, set beside aiecs's own of the same run. */
  celeryDirect?: CeleryDirectResult;
}

/** aiecs's own rows of the same run, which the Celery figures are set beside. */
export interface AiecsRows {
  redis?: ThroughputResult;
  latency?: LatencyResult;
  io?: IoResult;
}

/** Issue 18's goals, judged on the figures as printed (two decimals). */
export const SCALE_GOALS = {
  postgresRatio: { atLeast: 1 },
  backlogFlatness: { atLeast: 0.9 },
  backlogBytesRatio: { atMost: 1.1 },
  celeryThroughputRatio: { atLeast: 10 },
  celeryIoRatio: { atLeast: 5 },
  /** The I/O ratio is judged at the 2,000 tasks only: below gevent's 1,000 they all run at once. */
  celeryIoTasks: 2_000,
} as const;

type Figures = Record<string, number | null | undefined>;

const POSTGRES_TITLE = 'PostgreSQL store throughput (aiecs vs raw BullMQ on its PostgreSQL backend)';

function postgresTable(r: ThroughputResult | { skipped: string }): string {
  if ('skipped' in r) return skippedTable(POSTGRES_TITLE, r.skipped);
  const q = ratio(r.aiecs, r.bullmq);
  return table(
    `PostgreSQL store throughput (${fmt(r.count)} no-op tasks, aiecs's PostgreSQL store vs raw BullMQ's PostgreSQL` +
      ` backend, a schema per round; best of ${r.runs.aiecs.length} after ${r.warmupRounds} warm-up rounds; higher is better)`,
    HEADER,
    [
      compareRow(
        'jobs/s',
        r.aiecs,
        r.bullmq,
        0,
        'ratio >= 1.0',
        verdict(meets(round(q, 2), SCALE_GOALS.postgresRatio)),
      ),
      ['all runs', runList(r.runs.aiecs), runList(r.runs.bullmq), '', '', ''],
      [
        'paired rounds',
        '',
        '',
        fmt(pairedRatioMedian(r.runs.aiecs, r.runs.bullmq), 2),
        'median, no goal',
        '',
      ],
      compareRow('CPU us/task', r.cpuUsPerTask.aiecs, r.cpuUsPerTask.bullmq),
    ],
  );
}

function backlogTable(r: BacklogResult): string {
  const { aiecs: a, bullmq: b } = r;
  const bytes = round(ratio(a.bytesPerTask, b.bytesPerTask), 2);
  return table(
    `Backlog on Redis (${fmt(r.count)} no-op tasks submitted in chunks of 1,000 before one worker starts, then drained` +
      ` by it at concurrency 100; one run per side; flatness = last tenth's rate / first tenth's)`,
    HEADER,
    [
      compareRow('submit tasks/s', a.submitPerS, b.submitPerS, 0, 'no goal'),
      compareRow(
        'Redis bytes per waiting task',
        a.bytesPerTask,
        b.bytesPerTask,
        0,
        'ratio <= 1.1',
        verdict(meets(bytes, SCALE_GOALS.backlogBytesRatio)),
      ),
      compareRow('drain tasks/s', a.perS, b.perS, 0, 'no goal'),
      compareRow('  first tenth, tasks/s', a.firstTenthPerS, b.firstTenthPerS, 0),
      compareRow('  last tenth, tasks/s', a.lastTenthPerS, b.lastTenthPerS, 0),
      [
        '  flatness',
        fmt(a.flatness, 2),
        fmt(b.flatness, 2),
        '',
        'aiecs >= 0.9',
        verdict(meets(round(a.flatness, 2), SCALE_GOALS.backlogFlatness)),
      ],
      compareRow('worker start ms (not in the drain)', a.workerStartMs, b.workerStartMs, 0),
    ],
  );
}

function scaleoutTable(r: ScaleoutResult): string {
  const one = r.points.find((p) => p.workers === 1);
  const rows: Cell[][] = r.points.flatMap((p): Cell[][] => [
    [
      `${p.workers} process${p.workers === 1 ? '' : 'es'}, tasks/s`,
      fmt(p.aiecs),
      fmt(p.bullmq),
      fmt(ratio(p.aiecs, p.bullmq), 2),
      fmt(ratio(p.aiecs, one?.aiecs), 2),
      fmt(ratio(p.bullmq, one?.bullmq), 2),
    ],
    ['  all runs', runList(p.runs.aiecs), runList(p.runs.bullmq), '', '', ''],
  ]);
  return table(
    `Worker scale-out on Redis (this machine has ${r.cores} cores, shared by the workers, redis-server and the producer;` +
      ` ${fmt(r.count)} no-op tasks per round through N worker processes of concurrency 100, best of ${r.rounds}` +
      ` after a warm-up batch; higher is better; no goal)`,
    ['', 'aiecs', 'BullMQ', 'aiecs/BullMQ', 'aiecs vs 1', 'BullMQ vs 1'],
    rows,
  );
}

const CELERY_TITLE = 'Celery 5 beside aiecs on the same Redis (no-op, latency and I/O workloads)';

/** Celery's figures against aiecs's: every ratio reads > 1 where aiecs is the faster. */
function celeryDirectTable(r: CeleryDirectResult, aiecs: AiecsRows): string {
  if ('skipped' in r) return skippedTable(CELERY_TITLE, r.skipped);
  const q = celeryRatios(r, aiecs);
  const io = r.io;
  const ioRow: Cell[] =
    'skipped' in io
      ? [`I/O wall s`, fmt(aiecs.io?.aiecsS, 2), `skipped: ${io.skipped}`, '-', '', '']
      : [
          `I/O wall s (${fmt(io.count)} x ${io.waitMs} ms)`,
          fmt(aiecs.io?.aiecsS, 2),
          fmt(io.wallS, 2),
          fmt(q.io, 2),
          io.count >= SCALE_GOALS.celeryIoTasks ? 'Celery/aiecs >= 5' : 'judged at 2,000 tasks',
          io.count >= SCALE_GOALS.celeryIoTasks
            ? verdict(meets(round(q.io, 2), SCALE_GOALS.celeryIoRatio))
            : '',
        ];
  const p = (k: 'p50' | 'p99'): Cell[] => [
    `latency ${k} ms (${fmt(r.latency.count)} sequential)`,
    fmt(aiecs.latency?.aiecs[k], 2),
    fmt(r.latency[k], 2),
    fmt(ratio(r.latency[k], aiecs.latency?.aiecs[k]), 2),
    'Celery/aiecs, no goal',
    '',
  ];
  return table(
    `${CELERY_TITLE}: Celery from a Python producer, prefork -c 2 for no-op and latency, gevent -c 1000 for I/O;` +
      ` aiecs: this run's redis, latency and io rows. Ratio > 1: aiecs faster (aiecs/Celery for tasks/s, Celery/aiecs for times)`,
    ['', 'aiecs', 'Celery', 'ratio', 'goal', ''],
    [
      [
        `no-op tasks/s (${fmt(r.throughput.count)} per round)`,
        fmt(aiecs.redis?.aiecs),
        fmt(r.throughput.best),
        fmt(q.throughput, 2),
        'aiecs/Celery >= 10',
        verdict(meets(round(q.throughput, 2), SCALE_GOALS.celeryThroughputRatio)),
      ],
      ['  all runs', '', runList(r.throughput.runs), '', '', ''],
      p('p50'),
      p('p99'),
      ioRow,
      ['Celery results not completed', '', fmt(r.notCompleted), '', '0', verdict(r.notCompleted === 0)],
    ],
  );
}

function optionsTable(r: OptionCostsResult): string {
  return table(
    `What aiecs's job options cost raw BullMQ on Redis (${fmt(r.count)} no-op tasks, no aiecs code; ` +
      `${r.runs.plain.length} rounds after ${r.warmupRounds} warm-up, every side once a round; higher is better)`,
    ['', 'plain', 'priority', 'job id (UUID)', 'both', ''],
    [
      ['jobs/s, best', ...OPTION_SIDES.map((side) => fmt(r.best[side])), 'no goal'],
      [
        'vs plain, paired median',
        '1.00',
        fmt(r.ratioVsPlain.priority, 2),
        fmt(r.ratioVsPlain.job_id, 2),
        fmt(r.ratioVsPlain.both, 2),
        'no goal',
      ],
      ['CPU us/task, lowest', ...OPTION_SIDES.map((side) => fmt(Math.min(...r.cpuRuns[side]))), ''],
      ['redis-server us/task, median', ...OPTION_SIDES.map((side) => fmt(r.redisUsPerTask[side], 1)), ''],
    ],
  );
}

/** aiecs's no-op rate over Celery's, and Celery's I/O wall time over aiecs's: > 1 is aiecs ahead. */
export function celeryRatios(
  r: CeleryDirectResult,
  aiecs: AiecsRows,
): { throughput: number | undefined; io: number | undefined } {
  if ('skipped' in r) return { throughput: undefined, io: undefined };
  return {
    throughput: ratio(aiecs.redis?.aiecs, r.throughput.best),
    io: 'skipped' in r.io ? undefined : ratio(r.io.wallS, aiecs.io?.aiecsS),
  };
}

/** This module's tables, in section order, for the sections that ran. */
export function scaleTables(r: ScaleSections, aiecs: AiecsRows): string[] {
  return [
    r.options && optionsTable(r.options),
    r.postgres && postgresTable(r.postgres),
    r.backlog && backlogTable(r.backlog),
    r.scaleout && scaleoutTable(r.scaleout),
    r.celeryDirect && celeryDirectTable(r.celeryDirect, aiecs),
  ].filter((t): t is string => typeof t === 'string');
}

/** Every key of `keys` as null: the figures of a section (or side) that could not run. */
const nulls = (keys: readonly string[]): Figures => Object.fromEntries(keys.map((k) => [k, null]));

export const POSTGRES_KEYS = [
  'postgres_aiecs_jobs_s',
  'postgres_bullmq_jobs_s',
  'postgres_ratio_vs_bullmq',
  'postgres_paired_ratio_median',
] as const;
export const CELERY_IO_KEYS = ['celery_io_wall_s', 'celery_io_ratio'] as const;
export const CELERY_DIRECT_KEYS = [
  'celery_jobs_s',
  'celery_throughput_ratio',
  'celery_latency_p50_ms',
  'celery_latency_p99_ms',
  ...CELERY_IO_KEYS,
] as const;

/** The named figures of the sections that ran (null for one that could not). */
export function scaleFigures(r: ScaleSections, aiecs: AiecsRows): Figures {
  const out: Figures = {};
  const { options, postgres, backlog, scaleout, celeryDirect } = r;
  if (options) {
    out.options_plain_jobs_s = round(options.best.plain);
    out.options_priority_jobs_s = round(options.best.priority);
    out.options_job_id_jobs_s = round(options.best.job_id);
    out.options_both_jobs_s = round(options.best.both);
    out.options_priority_ratio = round(options.ratioVsPlain.priority, 2);
    out.options_job_id_ratio = round(options.ratioVsPlain.job_id, 2);
    out.options_both_ratio = round(options.ratioVsPlain.both, 2);
    for (const side of OPTION_SIDES)
      out[`options_${side}_redis_us_per_task`] = round(options.redisUsPerTask[side], 1);
  }
  if (postgres && 'skipped' in postgres) Object.assign(out, nulls(POSTGRES_KEYS));
  else if (postgres) {
    out.postgres_aiecs_jobs_s = round(postgres.aiecs);
    out.postgres_bullmq_jobs_s = round(postgres.bullmq);
    out.postgres_ratio_vs_bullmq = round(ratio(postgres.aiecs, postgres.bullmq), 2);
    out.postgres_paired_ratio_median = round(pairedRatioMedian(postgres.runs.aiecs, postgres.runs.bullmq), 2);
  }
  if (backlog) {
    const { aiecs: a, bullmq: b } = backlog;
    out.backlog_tasks = backlog.count;
    out.backlog_aiecs_submit_tasks_s = round(a.submitPerS);
    out.backlog_bullmq_submit_tasks_s = round(b.submitPerS);
    out.backlog_submit_ratio_vs_bullmq = round(ratio(a.submitPerS, b.submitPerS), 2);
    out.backlog_aiecs_drain_tasks_s = round(a.perS);
    out.backlog_bullmq_drain_tasks_s = round(b.perS);
    out.backlog_drain_ratio_vs_bullmq = round(ratio(a.perS, b.perS), 2);
    out.backlog_drain_flatness = round(a.flatness, 2);
    out.backlog_bullmq_drain_flatness = round(b.flatness, 2);
    out.backlog_bytes_per_task = round(a.bytesPerTask);
    out.backlog_bullmq_bytes_per_task = round(b.bytesPerTask);
    out.backlog_bytes_per_task_ratio_vs_bullmq = round(ratio(a.bytesPerTask, b.bytesPerTask), 2);
  }
  if (scaleout) {
    out.scaleout_cores = scaleout.cores;
    for (const p of scaleout.points) {
      out[`scaleout_aiecs_${p.workers}`] = round(p.aiecs);
      out[`scaleout_bullmq_${p.workers}`] = round(p.bullmq);
      out[`scaleout_ratio_${p.workers}`] = round(ratio(p.aiecs, p.bullmq), 2);
    }
  }
  if (celeryDirect && 'skipped' in celeryDirect) Object.assign(out, nulls(CELERY_DIRECT_KEYS));
  else if (celeryDirect) {
    const q = celeryRatios(celeryDirect, aiecs);
    out.celery_jobs_s = round(celeryDirect.throughput.best);
    out.celery_throughput_ratio = round(q.throughput, 2) ?? null;
    out.celery_latency_p50_ms = round(celeryDirect.latency.p50, 2);
    out.celery_latency_p99_ms = round(celeryDirect.latency.p99, 2);
    if ('skipped' in celeryDirect.io) Object.assign(out, nulls(CELERY_IO_KEYS));
    else {
      out.celery_io_wall_s = round(celeryDirect.io.wallS, 2);
      out.celery_io_ratio = round(q.io, 2) ?? null;
    }
  }
  return out;
}
