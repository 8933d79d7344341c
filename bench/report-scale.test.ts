import { describe, expect, it } from 'vitest';
import type { BacklogResult, BacklogSide } from './backlog.js';
import type { CeleryDirectMeasured } from './celery-direct.js';
import { figures, renderTables, type Results } from './report.js';
import { commandUsec } from './option-costs.js';
import { CELERY_DIRECT_KEYS, POSTGRES_KEYS } from './report-scale.js';
import type { ThroughputResult } from './workloads.js';

/** A throughput section: aiecs `aiecs` jobs/s, BullMQ `bullmq`, two rounds each. */
function throughput(aiecs: number, bullmq: number): ThroughputResult {
  return {
    count: 3_000,
    warmupRounds: 3,
    runs: { aiecs: [aiecs, aiecs - 100], bullmq: [bullmq, bullmq - 100] },
    aiecs,
    bullmq,
    cpuUsPerTask: { aiecs: 200, bullmq: 180 },
    cpuRuns: { aiecs: [200, 210], bullmq: [180, 190] },
  };
}

const run = (extra: Partial<Results>): Results => ({ quick: false, ...extra });

describe('the postgres section', () => {
  it('reports both sides and judges aiecs/BullMQ >= 1.0', () => {
    const r = run({ postgres: throughput(1_000, 1_000) });
    expect(figures(r)).toMatchObject({
      postgres_aiecs_jobs_s: 1_000,
      postgres_bullmq_jobs_s: 1_000,
      postgres_ratio_vs_bullmq: 1,
      postgres_paired_ratio_median: 1,
    });
    expect(renderTables(r)).toMatch(
      /PostgreSQL store throughput .*\n.*\n.*\njobs\/s +1,000 +1,000 +1\.00 +ratio >= 1\.0 +PASS/,
    );
    expect(renderTables(run({ postgres: throughput(990, 1_000) }))).toMatch(
      /jobs\/s .* 0\.99 +ratio >= 1\.0 +MISS/,
    );
  });

  it('is skipped with its reason, every key null, when PostgreSQL is not there', () => {
    const r = run({ postgres: { skipped: 'PostgreSQL at postgres://x unavailable: refused' } });
    const f = figures(r);
    for (const key of POSTGRES_KEYS) expect(f[key]).toBeNull();
    expect(JSON.parse(JSON.stringify(f))).toHaveProperty('postgres_ratio_vs_bullmq', null);
    expect(renderTables(r)).toMatch(
      /^PostgreSQL store .*\nskipped: PostgreSQL at postgres:\/\/x unavailable: refused$/,
    );
  });
});

describe('the backlog section', () => {
  function side(over: Partial<BacklogSide>): BacklogSide {
    return {
      perS: 10_000,
      firstTenthPerS: 10_000,
      lastTenthPerS: 10_000,
      flatness: 1,
      submitPerS: 20_000,
      memoryBytes: 100_000_000,
      bytesPerTask: 1_000,
      workerStartMs: 5,
      samples: 1_000,
      ...over,
    };
  }
  const backlog = (aiecs: Partial<BacklogSide>, bullmq: Partial<BacklogSide> = {}): BacklogResult => ({
    count: 100_000,
    aiecs: side(aiecs),
    bullmq: side(bullmq),
  });

  it('reports the rates, the flatness of both sides and the bytes per task, with their ratios', () => {
    const r = run({
      backlog: backlog(
        { submitPerS: 15_000, perS: 8_000, flatness: 0.9, bytesPerTask: 1_100 },
        { flatness: 0.5, bytesPerTask: 1_000 },
      ),
    });
    expect(figures(r)).toMatchObject({
      backlog_tasks: 100_000,
      backlog_submit_ratio_vs_bullmq: 0.75,
      backlog_drain_ratio_vs_bullmq: 0.8,
      backlog_drain_flatness: 0.9,
      backlog_bullmq_drain_flatness: 0.5,
      backlog_bytes_per_task: 1_100,
      backlog_bullmq_bytes_per_task: 1_000,
      backlog_bytes_per_task_ratio_vs_bullmq: 1.1,
    });
    const table = renderTables(r);
    expect(table).toMatch(/Redis bytes per waiting task +1,100 +1,000 +1\.10 +ratio <= 1\.1 +PASS/);
    expect(table).toMatch(/flatness +0\.90 +0\.50 +aiecs >= 0\.9 +PASS/);
  });

  it('misses when the drain slows by more than a tenth or a task takes over 1.1x the bytes', () => {
    const table = renderTables(run({ backlog: backlog({ flatness: 0.89, bytesPerTask: 1_120 }) }));
    expect(table).toMatch(/bytes per waiting task +1,120 +1,000 +1\.12 +ratio <= 1\.1 +MISS/);
    expect(table).toMatch(/flatness +0\.89 +1\.00 +aiecs >= 0\.9 +MISS/);
  });
});

describe('the scaleout section', () => {
  it('reports each worker count beside BullMQ, the speed-up over one process and the cores', () => {
    const point = (workers: number, aiecs: number, bullmq: number) => ({
      workers,
      aiecs,
      bullmq,
      runs: { aiecs: [aiecs], bullmq: [bullmq] },
    });
    const r = run({
      scaleout: {
        count: 10_000,
        rounds: 1,
        cores: 2,
        points: [point(1, 5_000, 6_000), point(2, 8_000, 9_000), point(4, 7_500, 9_000)],
      },
    });
    expect(figures(r)).toMatchObject({
      scaleout_cores: 2,
      scaleout_aiecs_1: 5_000,
      scaleout_bullmq_1: 6_000,
      scaleout_ratio_1: 0.83,
      scaleout_aiecs_2: 8_000,
      scaleout_ratio_2: 0.89,
      scaleout_aiecs_4: 7_500,
      scaleout_bullmq_4: 9_000,
    });
    const table = renderTables(r);
    expect(table).toMatch(/this machine has 2 cores/);
    expect(table).toMatch(/2 processes, tasks\/s +8,000 +9,000 +0\.89 +1\.60 +1\.50/);
  });
});

describe('the celery_direct section', () => {
  /** Celery at 1,000 tasks/s, p50 2 ms, 2,000 x 500 ms in 5 s; aiecs's rows of the same run. */
  function measured(io: CeleryDirectMeasured['io'], notCompleted = 0): CeleryDirectMeasured {
    return {
      throughput: { count: 10_000, runs: [900, 1_000], best: 1_000 },
      latency: { count: 500, n: 500, p50: 2, p99: 5, mean: 2.5 },
      io,
      notCompleted,
    };
  }
  const aiecs: Partial<Results> = {
    redis: throughput(12_000, 14_000),
    latency: {
      count: 500,
      warmup: 2_000,
      aiecs: { n: 500, p50: 1, p99: 6, mean: 1.2 },
      bullmq: { n: 500, p50: 0.5, p99: 4, mean: 0.7 },
      bullmqTaskOptions: { n: 500, p50: 0.6, p99: 4.5, mean: 0.8 },
    },
    io: {
      count: 2_000,
      waitMs: 500,
      warmupRounds: 1,
      aiecsS: 1,
      bullmqS: 0.9,
      runs: { aiecs: [1], bullmq: [0.9] },
    },
  };

  it('sets Celery beside aiecs: throughput aiecs/Celery, I/O Celery/aiecs, both > 1 when aiecs is faster', () => {
    const io = { count: 2_000, waitMs: 500, wallS: 5, submitS: 1 };
    const r = run({ ...aiecs, celeryDirect: measured(io) });
    expect(figures(r)).toMatchObject({
      celery_jobs_s: 1_000,
      celery_throughput_ratio: 12,
      celery_latency_p50_ms: 2,
      celery_io_wall_s: 5,
      celery_io_ratio: 5,
    });
    const table = renderTables(r);
    expect(table).toMatch(/Ratio > 1: aiecs faster/);
    expect(table).toMatch(/no-op tasks\/s .* +12,000 +1,000 +12\.00 +aiecs\/Celery >= 10 +PASS/);
    expect(table).toMatch(/I\/O wall s \(2,000 x 500 ms\) +1\.00 +5\.00 +5\.00 +Celery\/aiecs >= 5 +PASS/);
    expect(table).toMatch(/latency p50 ms .* +1\.00 +2\.00 +2\.00/);
  });

  it('judges the I/O ratio at 2,000 tasks only', () => {
    const io = { count: 200, waitMs: 500, wallS: 1, submitS: 0.2 };
    const table = renderTables(run({ ...aiecs, celeryDirect: measured(io) }));
    expect(table).toMatch(/I\/O wall s \(200 x 500 ms\) .* 1\.00 +judged at 2,000 tasks$/m);
  });

  it('nulls every key when no Python has Celery, and only the I/O keys without gevent', () => {
    const skipped = figures(run({ ...aiecs, celeryDirect: { skipped: 'python3 with celery not found' } }));
    for (const key of CELERY_DIRECT_KEYS) expect(skipped[key]).toBeNull();
    expect(renderTables(run({ celeryDirect: { skipped: 'python3 with celery not found' } }))).toMatch(
      /^Celery 5 beside aiecs .*\nskipped: python3 with celery not found$/,
    );
    const noGevent = run({ ...aiecs, celeryDirect: measured({ skipped: 'python3 without gevent' }) });
    expect(figures(noGevent)).toMatchObject({
      celery_jobs_s: 1_000,
      celery_io_wall_s: null,
      celery_io_ratio: null,
    });
    expect(renderTables(noGevent)).toMatch(/I\/O wall s +1\.00 +skipped: python3 without gevent/);
  });
});

describe('the options section', () => {
  const r = run({
    options: {
      count: 10_000,
      warmupRounds: 2,
      runs: {
        plain: [12_000, 11_000],
        priority: [11_000, 10_300],
        job_id: [11_700, 10_600],
        both: [10_500, 9_600],
      },
      cpuRuns: { plain: [60, 62], priority: [68, 70], job_id: [65, 64], both: [74, 73] },
      redisRuns: { plain: [76, 77], priority: [88, 89], job_id: [82, 83], both: [89, 90] },
      best: { plain: 12_000, priority: 11_000, job_id: 11_700, both: 10_500 },
      ratioVsPlain: { priority: 0.93, job_id: 0.97, both: 0.87 },
      redisUsPerTask: { plain: 76.1, priority: 88.2, job_id: 82.4, both: 89.3 },
    },
  });

  it('names the jobs/s of every side and each option against plain BullMQ', () => {
    expect(figures(r)).toMatchObject({
      options_plain_jobs_s: 12_000,
      options_priority_jobs_s: 11_000,
      options_job_id_jobs_s: 11_700,
      options_both_jobs_s: 10_500,
      options_priority_ratio: 0.93,
      options_job_id_ratio: 0.97,
      options_both_ratio: 0.87,
      options_plain_redis_us_per_task: 76.1,
      options_priority_redis_us_per_task: 88.2,
      options_job_id_redis_us_per_task: 82.4,
      options_both_redis_us_per_task: 89.3,
    });
  });

  it('prints the paired ratios and the lowest CPU per task of each side', () => {
    const text = renderTables(r);
    expect(text).toMatch(/What aiecs's job options cost raw BullMQ on Redis \(10,000 no-op tasks/);
    expect(text).toMatch(/vs plain, paired median +1\.00 +0\.93 +0\.97 +0\.87 +no goal/);
    expect(text).toMatch(/CPU us\/task, lowest +60 +68 +64 +73/);
    expect(text).toMatch(/redis-server us\/task, median +76\.1 +88\.2 +82\.4 +89\.3/);
  });

  it('sums the time of every command INFO commandstats lists', () => {
    const info =
      '# Commandstats\r\ncmdstat_evalsha:calls=20,usec=1500,usec_per_call=75.00,rejected_calls=0,failed_calls=0\r\n' +
      'cmdstat_xadd:calls=40,usec=120,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n';
    expect(commandUsec(info)).toBe(1620);
    expect(commandUsec('# Commandstats\r\n')).toBe(0);
  });
});
