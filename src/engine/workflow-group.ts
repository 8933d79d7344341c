/**
 * A group as one handle (issue 15's batch): `executeTask.batch([...])`, POST /api/tasks/batch and
 * a group workflow all answer with a `group_id` — the group's root task, its first member, whose
 * stored data holds the member ids (docs/design.md §9) — and progress: n done of m.
 */
import { ValidationError, type FieldIssue } from '../core/errors.js';
import { libraryToWire } from '../core/library-wire.js';
import type { QueueKind, SubmitOptions, TaskRequest, TaskStatus } from '../core/task.js';
import { TaskStatus as Status, isTerminal } from '../core/task.js';
import type { WorkflowRead } from '../core/workflow.js';
import { workflowLeaves } from '../core/workflow.js';
import type { WireSubmission } from './submit.js';
import type { TaskHandle } from './task-handle.js';
import { WorkflowHandle, type WorkflowDeps } from './workflow-handle.js';

export interface GroupMember {
  task_id: string;
  queue: string;
  /** null once the task was removed (retention). */
  status: TaskStatus | null;
}

export interface GroupProgress {
  group_id: string;
  /** Members that ended, whatever the end. */
  done: number;
  total: number;
  /** Members per status. */
  counts: Record<TaskStatus, number>;
  /** Every task of the group, in submission order (nested members flattened in tree order). */
  members: GroupMember[];
}

/** The progress of a group read as a tree; undefined when the workflow is not a group at its top. */
export function groupProgress(read: WorkflowRead): GroupProgress | undefined {
  if (!('group' in read.tree)) return undefined;
  const members = workflowLeaves(read.tree).map((leaf): GroupMember => ({
    task_id: leaf.task_id,
    queue: leaf.queue,
    status: leaf.task?.status ?? null,
  }));
  const counts = Object.fromEntries(Object.values(Status).map((s) => [s, 0])) as Record<TaskStatus, number>;
  let done = 0;
  for (const m of members) {
    // A removed member ended long ago: retention removes only ended tasks.
    if (m.status === null || isTerminal(m.status)) done += 1;
    if (m.status !== null) counts[m.status] += 1;
  }
  return { group_id: read.root_id, done, total: members.length, counts, members };
}

/** A submitted group: a workflow handle with its `group_id` and progress. */
export class GroupHandle extends WorkflowHandle {
  /** The group's id (its root task, the first member): what GET /api/groups/:id reads. */
  get group_id(): string {
    return this.id;
  }

  /** n done of m, and each member's status now. */
  async progress(): Promise<GroupProgress> {
    return groupProgress(await this.tree())!;
  }
}

/** `app.submitWire`'s two forms: one wire request and its handle, or a batch and a handle per request. */
export interface SubmitWire {
  (item: WireSubmission): Promise<TaskHandle>;
  (
    items: readonly WireSubmission[],
    itemName?: (index: number) => string,
    options?: { group?: boolean },
  ): Promise<TaskHandle[]>;
}

/** What a batch needs of the app (the app itself). */
export interface BatchDeps extends WorkflowDeps {
  readonly submitWire: SubmitWire;
}

/**
 * `executeTask.batch([...])`: many requests to one queue, accepted whole or refused whole as
 * POST /api/tasks/batch is, and one group (its handle: `group_id`, `progress()`, `get()` with the
 * records in order, `cancel()`). Errors name the item, `[3].task_name`.
 */
export async function submitBatch(
  app: BatchDeps,
  queue: QueueKind,
  requests: readonly TaskRequest[],
  options: SubmitOptions = {},
): Promise<GroupHandle> {
  if (requests.length === 0)
    throw new ValidationError([{ field: '(root)', message: 'a batch needs at least one task' }]);
  const issues: FieldIssue[] = [];
  const items: WireSubmission[] = [];
  for (const [i, request] of requests.entries()) {
    try {
      const wire = libraryToWire(request, options);
      items.push({ queue, request: wire.request, options: wire.options });
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      issues.push(...error.renamed((field) => `[${i}].${field}`).issues);
    }
  }
  if (issues.length) throw new ValidationError(issues, 'invalid batch');
  const handles = await app.submitWire(items, (i) => `[${i}]`, { group: true });
  return new GroupHandle(app, handles[0]!.id, {
    group: handles.map((h) => ({ task: h.id, queue: h.queue })),
  });
}
