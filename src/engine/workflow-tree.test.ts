import { describe, expect, it } from 'vitest';
import { WorkflowInvalidError, WorkflowTooLargeError } from '../core/errors.js';
import type { StoredTaskData } from '../core/task.js';
import type { WorkflowNode } from '../core/workflow.js';
import { AWAIT_JOB, AWAIT_MIN_WAIT_MS, GATHER_JOB } from '../core/workflow-links.js';
import { compileWorkflow } from './workflow-tree.js';

const LIMITS = { maxTasks: 100, maxDepth: 4, maxInputBytes: 1 << 20, maxAttempts: 3 };
const t = (id: string, extra: Record<string, unknown> = {}, heavy = false): WorkflowNode => ({
  task: {
    queue: heavy ? 'heavy_tasks' : 'fast_tasks',
    request: { task_name: 'echo', user_id: 'u', mode: 'test', service: 'probe', task_id: id, ...extra },
  },
});
const invalid = (tree: WorkflowNode, limits = LIMITS) => {
  try {
    compileWorkflow(tree, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(WorkflowInvalidError);
    return (error as WorkflowInvalidError).issues;
  }
  throw new Error('compiled');
};
const data = (job: { data?: unknown }) => job.data as StoredTaskData;

describe('compileWorkflow', () => {
  it('makes a chain one flow whose root is the last step, each step the child of the next', () => {
    const c = compileWorkflow({ chain: [t('a'), t('b', {}, true), t('c')] }, LIMITS);
    expect(c.rootId).toBe('c');
    expect(c.flows).toHaveLength(1);
    const root = c.flows[0]!;
    const b = root.children![0]!;
    const a = b.children![0]!;
    expect([root.opts!.jobId, b.opts!.jobId, a.opts!.jobId]).toEqual(['c', 'b', 'a']);
    expect(b.queueName).toBe('heavy_tasks');
    expect(a.children).toBeUndefined();
    // step counts along the chain; every member knows the root; only the root holds the tree.
    expect([a, b, root].map((j) => data(j).step ?? 0)).toEqual([0, 1, 2]);
    expect([a, b, root].map((j) => data(j).wf!.root)).toEqual(['c', 'c', 'c']);
    expect(data(root).wf!.ids).toEqual(c.ids);
    expect(data(b).wf!.ids).toBeUndefined();
    expect(data(b).wf!.in).toEqual({ as: 'previous', from: 'a' });
    // No child is ever left to hold its parent forever: BullMQ records its failure and releases.
    expect(a.opts!.ignoreDependencyOnFailure).toBe(true);
  });

  it('makes a chord body the parent of its header, its inputs in order; nested groups stay nested', () => {
    const c = compileWorkflow(
      { chord: { header: [{ chain: [t('x1'), t('x2')] }, { group: [t('y'), t('z')] }], body: t('cb') } },
      LIMITS,
    );
    expect(c.rootId).toBe('cb');
    const body = c.flows[0]!;
    expect(body.children!.map((j) => j.opts!.jobId)).toEqual(['x2', 'y', 'z']);
    expect(data(body).wf!.in).toEqual({ as: 'results', from: ['x2', ['y', 'z']] });
  });

  it('queues a group at the top as one flow per member, the first member as root', () => {
    const c = compileWorkflow({ group: [t('g0'), { chain: [t('g1a'), t('g1b')] }] }, LIMITS);
    expect(c.flows.map((f) => f.opts!.jobId)).toEqual(['g0', 'g1b']);
    expect(c.rootId).toBe('g0');
    expect(c.members.map((m) => m.data.task_id)).toEqual(['g0', 'g1a', 'g1b']);
  });

  it('feeds a group after a step: the first member natively, each other through an await job', () => {
    const c = compileWorkflow({ chain: [t('a'), { group: [t('b'), t('c', {}, true)] }, t('d')] }, LIMITS);
    expect(c.rootId).toBe('d');
    const [b, cc] = c.flows[0]!.children!;
    expect(b!.children!.map((j) => j.opts!.jobId)).toEqual(['a']);
    const a = b!.children![0]!;
    const wait = cc!.children![0]!;
    expect(wait.name).toBe(AWAIT_JOB);
    // On the queue of the task it feeds; no member, no user; it names the task it waits for.
    expect(wait.queueName).toBe('heavy_tasks');
    expect(wait.opts!.jobId).toMatch(/^c~await~/);
    expect(wait.data).toEqual({ root: 'd', of: { id: 'a', queue: 'fast_tasks' } });
    expect(wait.opts!.ignoreDependencyOnFailure).toBe(true);
    // Its first look waits: the end of what it awaits wakes it sooner.
    expect(wait.opts!.delay).toBe(AWAIT_MIN_WAIT_MS);
    // The awaited task lists its await jobs (its end wakes them); both read a's result alike.
    expect(data(a).wf!.awaits).toEqual([{ id: wait.opts!.jobId, queue: 'heavy_tasks' }]);
    expect([b, cc].map((j) => data(j!).wf!.in)).toEqual([
      { as: 'previous', from: 'a' },
      { as: 'previous', from: 'a' },
    ]);
    expect(c.members.map((m) => m.data.task_id)).toEqual(['a', 'b', 'c', 'd']);
    // A group of one is no fan-out.
    const one = compileWorkflow({ chain: [t('x'), { group: [t('y')] }] }, LIMITS);
    expect(one.flows[0]!.children!.map((j) => j.opts!.jobId)).toEqual(['x']);
    expect(data(one.flows[0]!.children![0]!).wf!.awaits).toBeUndefined();
  });

  it('gathers a group before a fan-out: the first follower takes the gather job, the others await it', () => {
    const c = compileWorkflow(
      { chain: [{ group: [t('a1'), t('a2')] }, { chord: { header: [t('b1'), t('b2')], body: t('cb') } }] },
      LIMITS,
    );
    const [b1, b2] = c.flows[0]!.children!;
    const gather = b1!.children![0]!;
    expect(gather.name).toBe(GATHER_JOB);
    expect(gather.opts!.jobId).toMatch(/^b1~gather~/);
    expect(gather.children!.map((j) => j.opts!.jobId)).toEqual(['a1', 'a2']);
    const wait = b2!.children![0]!;
    expect(wait.data).toMatchObject({ of: { id: gather.opts!.jobId, queue: 'fast_tasks' } });
    expect(gather.data).toEqual({
      root: 'cb',
      ids: ['a1', 'a2'],
      awaits: [{ id: wait.opts!.jobId, queue: 'fast_tasks' }],
    });
    expect(data(b2!).wf!.in).toEqual({ as: 'previous', from: ['a1', 'a2'] });
    expect(data(c.flows[0]!).wf!.in).toEqual({ as: 'results', from: ['b1', 'b2'] });
  });

  it('names every bad leaf, repeated id and empty node by its path; nothing compiles', () => {
    const issues = invalid({
      chain: [{ group: [t('a'), t('a'), t('b', { extra: 1 }), t('c', { mode: '' })] }, { chain: [] }],
    });
    expect(issues.map((i) => i.field)).toEqual([
      'chain[0].group[1].task_id',
      'chain[0].group[2]',
      'chain[0].group[3].mode',
      'chain[1].chain',
    ]);
    expect(invalid({ group: [] }).map((i) => i.field)).toEqual(['group']);
  });

  it('holds the task and depth limits', () => {
    expect(() => compileWorkflow({ group: [t('a'), t('b'), t('c')] }, { ...LIMITS, maxTasks: 2 })).toThrow(
      WorkflowTooLargeError,
    );
    let deep: WorkflowNode = t('leaf');
    for (let i = 0; i < 5; i++) deep = { chain: [deep] };
    expect(invalid(deep)[0]!.message).toContain('AIECS_WORKFLOW_MAX_DEPTH');
  });
});
