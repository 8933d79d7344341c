import { describe, expect, it } from 'vitest';
import { figures, historyProblems, metricsCostUs, metricsCpuCostPct, renderTables } from './report.js';
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
