/**
 * Workflows (Celery's canvas): the tree shapes shared by the library API, the engine and the
 * HTTP/CLI side. Types and small pure helpers only, no dependencies: the gateway validates JSON
 * into WorkflowNode, the library's signatures build the same tree, the engine queues it as one
 * BullMQ flow (see docs/design.md, Workflows).
 */
import type { QueueKind, TaskRecord } from './task.js';

/**
 * A leaf: one task request as POST /api/tasks takes it, already split (the gateway's splitTask):
 * the queue (`heavy` → heavy_tasks), the wire request (snake_case, user_id filled in) and the
 * wire submit options (priority, countdown, eta, time limits, attempts).
 */
export interface WorkflowLeaf {
  queue: QueueKind;
  request: Record<string, unknown>;
  options?: Record<string, unknown>;
}

export type WorkflowNode =
  | { task: WorkflowLeaf }
  | { chain: WorkflowNode[] }
  | { group: WorkflowNode[] }
  | { chord: { header: WorkflowNode[]; body: WorkflowNode } };

/** The same tree with each leaf's task id and queue: a handle's `children`, the root's stored tree. */
export type WorkflowIds =
  | { task: string; queue: QueueKind }
  | { chain: WorkflowIds[] }
  | { group: WorkflowIds[] }
  | { chord: { header: WorkflowIds[]; body: WorkflowIds } };

/** The same tree with each leaf's record (GET /api/tasks/:id/tree); a record is null once removed. */
export type WorkflowTree =
  | { task: TaskRecord | null; task_id: string; queue: QueueKind }
  | { chain: WorkflowTree[] }
  | { group: WorkflowTree[] }
  | { chord: { header: WorkflowTree[]; body: WorkflowTree } };

/** What a tree read returns: the workflow's root task id and its tree. */
export interface WorkflowRead {
  root_id: string;
  tree: WorkflowTree;
}

/** Defaults of AIECS_WORKFLOW_MAX_TASKS and AIECS_WORKFLOW_MAX_DEPTH. */
export const DEFAULT_WORKFLOW_MAX_TASKS = 10_000;
export const DEFAULT_WORKFLOW_MAX_DEPTH = 32;

// One walk for every tree above: they differ only in their leaves (a request, an id, a record,
// the wire's forms of those), so the chain/group/chord recursion is written once, here.

/** The inner nodes every workflow tree has, whatever its leaves. */
export type WorkflowBranch<T> = { chain: T[] } | { group: T[] } | { chord: { header: T[]; body: T } };

/** A workflow tree whose leaves are `L` (what mapWorkflow builds). */
export type WorkflowShape<L> =
  | L
  | { chain: Array<WorkflowShape<L>> }
  | { group: Array<WorkflowShape<L>> }
  | { chord: { header: Array<WorkflowShape<L>>; body: WorkflowShape<L> } };

/** The children of a branch type (a chain's steps, a group's members, a chord's header and body). */
export type WorkflowChildOf<N> = N extends { chain: Array<infer C> }
  ? C
  : N extends { group: Array<infer C> }
    ? C
    : N extends { chord: { header: Array<infer H>; body: infer B } }
      ? H | B
      : never;

/** The leaves of a tree type: what is neither a chain, a group nor a chord, nor under one. */
export type WorkflowLeafOf<N> = Exclude<N | WorkflowChildOf<N>, WorkflowBranch<unknown>>;

/** A chain, group or chord (anything else, null included, is a leaf). */
export function isWorkflowBranch<N>(node: N): node is Extract<N, WorkflowBranch<unknown>> {
  return typeof node === 'object' && node !== null && ('chain' in node || 'group' in node || 'chord' in node);
}

/** A node's children in tree order (a chord's header before its body); a leaf has none. */
export function branchChildren<N>(node: N): Array<WorkflowChildOf<N>> {
  return childrenOf(node) as Array<WorkflowChildOf<N>>;
}

function childrenOf(node: unknown): unknown[] {
  if (!isWorkflowBranch(node)) return [];
  const branch = node as WorkflowBranch<unknown>;
  if ('chain' in branch) return branch.chain;
  if ('group' in branch) return branch.group;
  return [...branch.chord.header, branch.chord.body];
}

/** Every leaf of a tree, in tree order (a chord's header before its body). */
export function workflowLeaves<N>(node: N): Array<WorkflowLeafOf<N>> {
  const out: unknown[] = [];
  const walk = (n: unknown): void => {
    if (isWorkflowBranch(n)) for (const kid of childrenOf(n)) walk(kid);
    else out.push(n);
  };
  walk(node);
  return out as Array<WorkflowLeafOf<N>>;
}

/** The same tree with each leaf replaced by `leaf(it)`. */
export function mapWorkflow<N, R>(node: N, leaf: (node: WorkflowLeafOf<N>) => R): WorkflowShape<R> {
  const map = (n: unknown): WorkflowShape<R> => {
    if (!isWorkflowBranch(n)) return leaf(n as WorkflowLeafOf<N>);
    const branch = n as WorkflowBranch<unknown>;
    if ('chain' in branch) return { chain: branch.chain.map(map) };
    if ('group' in branch) return { group: branch.group.map(map) };
    return { chord: { header: branch.chord.header.map(map), body: map(branch.chord.body) } };
  };
  return map(node);
}

/** The member ids of a tree, in tree order (a chord's header before its body). */
export function workflowTaskIds(ids: WorkflowIds): Array<{ task: string; queue: QueueKind }> {
  return workflowLeaves(ids);
}
