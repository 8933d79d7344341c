import { describe, expect, it } from 'vitest';
import {
  branchChildren,
  isWorkflowBranch,
  mapWorkflow,
  workflowLeaves,
  workflowTaskIds,
  type WorkflowIds,
  type WorkflowShape,
} from './workflow.js';

const leaf = (task: string): WorkflowIds => ({ task, queue: 'fast_tasks' });
const ids: WorkflowIds = {
  chain: [leaf('a'), { group: [leaf('b'), leaf('c')] }, { chord: { header: [leaf('d')], body: leaf('e') } }],
};

describe('the workflow tree walk', () => {
  it('tells branches from leaves, null and non-objects included', () => {
    expect(isWorkflowBranch(ids)).toBe(true);
    expect(isWorkflowBranch({ group: [] })).toBe(true);
    expect(isWorkflowBranch(leaf('a'))).toBe(false);
    expect(isWorkflowBranch(null)).toBe(false);
    expect(isWorkflowBranch(3)).toBe(false);
  });

  it('gives a chord its header before its body, and a leaf no children', () => {
    const chord: WorkflowIds = { chord: { header: [leaf('d'), leaf('f')], body: leaf('e') } };
    expect(branchChildren(chord)).toEqual([leaf('d'), leaf('f'), leaf('e')]);
    expect(branchChildren(leaf('a'))).toEqual([]);
  });

  it('lists the leaves in tree order', () => {
    expect(workflowLeaves(ids).map((l) => l.task)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(workflowTaskIds(ids).map((l) => l.task)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('maps each leaf and keeps the shape', () => {
    const mapped: WorkflowShape<string> = mapWorkflow(ids, (l) => l.task.toUpperCase());
    expect(mapped).toEqual({
      chain: ['A', { group: ['B', 'C'] }, { chord: { header: ['D'], body: 'E' } }],
    });
  });
});
