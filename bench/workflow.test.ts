import { describe, expect, it } from 'vitest';
import { figures, renderTables } from './report.js';
import type { WorkflowResult } from './workflow.js';

const result: WorkflowResult = {
  groupSize: 1_000,
  chainLength: 100,
  warmupRounds: 1,
  runs: {
    group: { aiecs: [900, 1_000], bullmq: [1_100, 1_200] },
    chain: { aiecs: [300, 280], bullmq: [400, 420] },
  },
  group: { aiecs: 1_000, bullmq: 1_200 },
  chain: { aiecs: 300, bullmq: 420 },
};

describe('the workflow section of the report', () => {
  it('names its figures and ratios under the keys the issue asks for', () => {
    expect(figures({ quick: false, workflow: result })).toMatchObject({
      workflow_group_tasks: 1_000,
      workflow_group_aiecs_tasks_s: 1_000,
      workflow_group_bullmq_tasks_s: 1_200,
      workflow_group_ratio_vs_bullmq: 0.83,
      workflow_chain_steps: 100,
      workflow_chain_ratio_vs_bullmq: 0.71,
      // Rounds paired by index: 900/1,100 with 1,000/1,200; 300/400 with 280/420.
      workflow_group_paired_ratio_median: 0.83,
      workflow_chain_paired_ratio_median: 0.71,
    });
  });

  it('judges each ratio against 0.8', () => {
    const table = renderTables({ quick: false, workflow: result });
    expect(table).toMatch(/group of 1,000 +1,000 +1,200 +0\.83 +ratio >= 0\.8 +PASS/);
    expect(table).toMatch(/chain of 100 +300 +420 +0\.71 +ratio >= 0\.8 +MISS/);
  });
});
