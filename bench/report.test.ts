import { describe, expect, it } from 'vitest';
import { celeryProblems, type CeleryMeasured } from './celery.js';
import { figures, historyProblems, metricsCostUs, metricsCpuCostPct, renderTables } from './report.js';
import type { FanoutResult } from './fanout.js';
import type { ThroughputResult } from './workloads.js';

/** A Redis section with metrics on: 100 us of CPU per task without them, 2,000 jobs/s with. */
function redis(metricsCost: ThroughputResult['metricsCost']): ThroughputResult {
  return {
    count: 10_000,
    warmupRounds: 3,
    runs: { aiecs: [2_100, 2_000], bullmq: [2_200, 2_300], aiecsMetrics: [1_900, 2_000] },
    aiecs: 2_100,
    bullmq: 2_300,
    aiecsMetrics: 2_000,
    cpuUsPerTask: { aiecs: 100, bullmq: 90, aiecsMetrics: 104 },
    cpuRuns: { aiecs: [100, 110], bullmq: [90, 95], aiecsMetrics: [104, 121] },
    ...(metricsCost ? { metricsCost } : {}),
  };
}

describe('the cost of metrics in the Redis section', () => {
  it('is the hooks plus a scrape shared by the tasks of one interval, against CPU per task', () => {
    // 1 us, plus 1.5 ms over the 2,000 x 15 tasks of one 15 s interval.
    const r = redis({ hookUs: 1, scrapeUs: 1_500, scrapeMs: 15_000 });
    expect(metricsCostUs(r)).toBeCloseTo(1.05, 10);
    expect(metricsCpuCostPct(r)).toBeCloseTo(1.05, 10);
    expect(figures({ quick: false, redis: r })).toMatchObject({
      redis_metrics_cpu_cost_pct: 1.05,
      redis_metrics_ab_cpu_cost_pct: 4,
      redis_metrics_ab_cpu_cost_paired_pct: 7,
      redis_metrics_hook_us_per_task: 1,
      redis_metrics_scrape_ms: 1.5,
    });
    expect(renderTables({ quick: false, redis: r })).toMatch(/metrics per task, measured .* 1\.1 % .* PASS/);
  });

  it('misses its goal at 3 % and over', () => {
    const r = redis({ hookUs: 3, scrapeUs: 0, scrapeMs: 15_000 });
    expect(metricsCpuCostPct(r)).toBe(3);
    expect(renderTables({ quick: false, redis: r })).toMatch(/metrics per task, measured .* 3\.0 % .* MISS/);
  });

  it('is absent when the section ran without metrics', () => {
    const r = redis(undefined);
    expect(metricsCpuCostPct(r)).toBeUndefined();
    expect(figures({ quick: false, redis: r })).not.toHaveProperty('redis_metrics_cpu_cost_pct');
  });
});

describe('the history section', () => {
  /** History on at 1,800 jobs/s against 2,000 off; `recorded` tasks held after each round. */
  function history(recorded: number[]): ThroughputResult {
    return {
      count: 10_000,
      warmupRounds: 3,
      runs: { aiecs: [2_000, 1_900], bullmq: [2_300, 2_200], aiecsHistory: [1_800, 1_700] },
      aiecs: 2_000,
      bullmq: 2_300,
      aiecsHistory: 1_800,
      cpuUsPerTask: { aiecs: 100, bullmq: 90, aiecsHistory: 110 },
      cpuRuns: { aiecs: [100, 105], bullmq: [90, 95], aiecsHistory: [110, 115] },
      history: recorded.map((n) => ({ entries: 3 * n, recorded: n, catchUpMs: 500 })),
    };
  }

  it('judges history on against off, and every round holding every task', () => {
    const r = history([10_000, 10_000]);
    expect(figures({ quick: false, history: r })).toMatchObject({
      history_ratio: 0.9,
      history_on_jobs_s: 1_800,
      history_off_jobs_s: 2_000,
      history_tasks_recorded_min: 10_000,
      history_entries: '30000,30000',
    });
    expect(historyProblems(r)).toEqual([]);
    expect(renderTables({ quick: false, history: r })).toMatch(/jobs\/s .* 0\.90 .* PASS/);
  });

  it('fails a round whose tasks the history does not all hold', () => {
    const r = { ...history([10_000, 9_999]), aiecsHistory: 1_700 };
    expect(historyProblems(r)).toEqual(['the history held 9999 of 10000 tasks after a round']);
    const table = renderTables({ quick: false, history: r });
    expect(table).toMatch(/jobs\/s .* 0\.85 .* MISS/);
    expect(table).toMatch(/tasks in the history, worst round .* 9,999 .* MISS/);
  });
});

describe('the celery section', () => {
  /** aiecs at 1,500 then 1,200 tasks/s, Celery at 1,000 then 800; `bad` results not completed in aiecs's second round. */
  function celery(bad = 0): CeleryMeasured {
    return {
      count: 5_000,
      warmup: 500,
      runs: {
        aiecs: [
          { tasksPerS: 1_500, submitS: 0.61, totalS: 3.33, notCompleted: 0 },
          { tasksPerS: 1_200, submitS: 0.7, totalS: 4.17, notCompleted: bad },
        ],
        celery: [
          { tasksPerS: 1_000, submitS: 0.55, totalS: 5, notCompleted: 0 },
          { tasksPerS: 800, submitS: 0.6, totalS: 6.25, notCompleted: 0 },
        ],
      },
      aiecs: 1_500,
      celery: 1_000,
      submitS: { aiecs: 0.61, celery: 0.55 },
      drainS: { aiecs: 2.72, celery: 4.45 },
    };
  }

  it('reports both sides, the ratio aiecs/Celery and the submit times', () => {
    const r = celery();
    expect(figures({ quick: false, celery: r })).toMatchObject({
      celery_tasks: 5_000,
      celery_aiecs_tasks_s: 1_500,
      celery_celery_tasks_s: 1_000,
      celery_ratio_vs_celery: 1.5,
      celery_paired_ratio_median: 1.5,
      celery_aiecs_submit_s: 0.61,
      celery_celery_submit_s: 0.55,
      celery_aiecs_drain_s: 2.72,
      celery_celery_drain_s: 4.45,
    });
    const table = renderTables({ quick: false, celery: r });
    expect(table).toMatch(/tasks\/s +1,500 +1,000 +1\.50/);
    expect(table).toMatch(/all runs +1,500, 1,200 +1,000, 800/);
    expect(table).toMatch(/submit s, best round +0\.61 +0\.55/);
    expect(table).toMatch(/then until all ready, s +2\.72 +4\.45/);
    expect(table).toMatch(/results not completed +0 +0 +0 +PASS/);
    expect(celeryProblems(r)).toEqual([]);
  });

  it('fails a round whose results are not all completed bodies', () => {
    const r = celery(3);
    expect(celeryProblems(r)).toEqual(['aiecs: 3 results not completed in a round']);
    expect(renderTables({ quick: false, celery: r })).toMatch(/results not completed +3 +0 +0 +MISS/);
  });

  it('says it was skipped, with no figures, when no Python has Celery', () => {
    const skipped = { skipped: 'python3 with celery not found' };
    expect(renderTables({ quick: false, celery: skipped })).toMatch(
      /\nskipped: python3 with celery not found$/,
    );
    expect(figures({ quick: false, celery: skipped })).toMatchObject({ celery_skipped: true });
    expect(figures({ quick: false, celery: skipped })).not.toHaveProperty('celery_aiecs_tasks_s');
    expect(celeryProblems(skipped)).toEqual([]);
  });
});

describe('the idle `aiecs up` rows (issue 18)', () => {
  const startup = (rssMb: number, cpuPct: number) => ({
    firstMs: 3_000,
    secondMs: 1_200,
    idle: {
      rssMb,
      processes: [{ pid: 42, command: 'main.js up --broker embedded:/tmp/x', rssMb }],
      cpuPct,
      wakeupsPerS: 3.4,
      settleS: 30,
      windowS: 30,
    },
  });

  it('reports the tree RSS and CPU against their goals, and the JSON keys', () => {
    const r = { quick: false, startup: startup(149.96, 0.3) };
    expect(figures(r)).toMatchObject({
      up_idle_rss_mb: 150,
      up_idle_cpu_pct: 0.3,
      up_idle_wakeups_per_s: 3.4,
    });
    const text = renderTables(r);
    expect(text).toMatch(/RSS MB, process tree, end of window +150\.0 .* <= 150 +PASS/);
    expect(text).toMatch(/pid 42 main\.js up --broker embedded:\/tmp\/x +150\.0/);
    expect(text).toMatch(/CPU % of one core, window +0\.30 .* <= 0\.3 +PASS/);
  });

  it('misses above 150 MB or 0.3 %', () => {
    const text = renderTables({ quick: false, startup: startup(150.1, 0.31) });
    expect(text).toMatch(/RSS MB, process tree, end of window +150\.1 .* MISS/);
    expect(text).toMatch(/CPU % of one core, window +0\.31 .* MISS/);
  });
});

describe('the latency section', () => {
  const latency = {
    count: 500,
    warmup: 2_000,
    aiecs: { n: 500, p50: 0.9, p99: 5, mean: 1.1 },
    bullmq: { n: 500, p50: 0.75, p99: 4.5, mean: 1 },
    bullmqTaskOptions: { n: 500, p50: 0.8, p99: 4.8, mean: 1 },
  };

  it("sets raw BullMQ with aiecs's job options beside plain BullMQ", () => {
    expect(figures({ quick: false, latency })).toMatchObject({
      redis_latency_p50_ms: 0.9,
      bullmq_latency_p50_ms: 0.75,
      bullmq_task_options_latency_p50_ms: 0.8,
      bullmq_task_options_latency_p99_ms: 4.8,
    });
    const table = renderTables({ quick: false, latency });
    expect(table).toMatch(/500 sequential tasks a side after 2,000 unmeasured/);
    expect(table).toMatch(/p50 ms, BullMQ with aiecs's job options +0\.90 +0\.80 +1\.13/);
    expect(table).toMatch(/options alone, p50 .* 1\.07 +vs plain BullMQ/);
  });
});

describe('the I/O row', () => {
  const io = (aiecs: number[], bullmq: number[]) => ({
    count: 2_000,
    waitMs: 500,
    warmupRounds: 1,
    aiecsS: [...aiecs].sort((a, b) => a - b)[1] as number,
    bullmqS: [...bullmq].sort((a, b) => a - b)[1] as number,
    runs: { aiecs, bullmq },
  });

  it('passes within 5 % of raw BullMQ and lists every batch', () => {
    const r = io([0.97, 1.02, 1.0], [0.96, 0.95, 1.1]);
    expect(figures({ quick: false, io: r })).toMatchObject({
      io_2000x500ms_wall_s: 1,
      io_2000x500ms_bullmq_wall_s: 0.96,
      io_ratio_vs_bullmq: 1.04,
    });
    const tables = renderTables({ quick: false, io: r });
    expect(tables).toMatch(/median of 3 batches a side taking turns after 1 warm-up/);
    expect(tables).toMatch(/wall s .* 1\.04 .* PASS/);
    expect(tables).toMatch(/all runs +0\.97, 1\.02, 1\.00 +0\.96, 0\.95, 1\.10/);
  });

  it('misses beyond 5 % of raw BullMQ, though under 3 s', () => {
    const r = io([1.1, 1.12, 1.2], [1.0, 0.98, 1.02]);
    expect(figures({ quick: false, io: r })).toMatchObject({ io_ratio_vs_bullmq: 1.12 });
    expect(renderTables({ quick: false, io: r })).toMatch(/wall s .* 1\.12 .* MISS/);
  });
});

describe('the fan-out table', () => {
  /** A paced run of 2,000 clients that meets every goal but, maybe, the gateway's RSS. */
  const paced = (rssPeakMb: number): FanoutResult => ({
    pacing: 'paced',
    clients: 2_000,
    steps: 20,
    intervalMs: 160,
    connectS: 1.7,
    submitS: 0.25,
    delivered: 40_000,
    expected: 40_000,
    missing: 0,
    missingSteps: 0,
    missingTerminal: 0,
    duplicates: 0,
    eventsPerS: 12_400,
    latency: { n: 40_000, p50: 2, p99: 40, mean: 4, max: 55 },
    rounds: 3,
    roundsP99: [40, 15, 47],
    stepP99: Array.from({ length: 20 }, () => 40),
    stages: undefined,
    rssIdleMb: 116,
    rssPeakMb,
    rssAfterMb: rssPeakMb,
    isolationViolations: 0,
    disconnects: 0,
    unsuccessful: 0,
    startedBeforeFirstStep: 2_000,
    slowClientDrops: 0,
    clientLoopDelayP99Ms: 15,
    clientLoopDelayMaxMs: 35,
  });

  it("judges the gateway's peak RSS against issue 18's 250 MB", () => {
    expect(renderTables({ quick: false, fanout: paced(249.9) })).toMatch(
      /gateway RSS MB, peak +249\.9 +<= 250 MB +PASS/,
    );
    expect(renderTables({ quick: false, fanout: paced(296.2) })).toMatch(
      /gateway RSS MB, peak +296\.2 +<= 250 MB +MISS/,
    );
  });
});
