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

/** The member ids of a tree, in tree order (a chord's header before its body). */
export function workflowTaskIds(ids: WorkflowIds, out: Array<{ task: string; queue: QueueKind }> = []) {
  if ('task' in ids) out.push(ids);
  else if ('chain' in ids) for (const n of ids.chain) workflowTaskIds(n, out);
  else if ('group' in ids) for (const n of ids.group) workflowTaskIds(n, out);
  else {
    for (const n of ids.chord.header) workflowTaskIds(n, out);
    workflowTaskIds(ids.chord.body, out);
  }
  return out;
}
