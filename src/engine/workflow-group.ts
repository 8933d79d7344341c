/**
 * A group as one handle (issue 15's batch): `executeTask.batch([...])`, POST /api/tasks/batch and
 * a group workflow all answer with a `group_id` — the group's root task, its first member, whose
 * stored data holds the member ids (docs/design.md §9) — and progress: n done of m.
 */
import type { TaskStatus } from '../core/task.js';
import { TaskStatus as Status, isTerminal } from '../core/task.js';
import type { WorkflowRead, WorkflowTree } from '../core/workflow.js';
import { WorkflowHandle } from './workflow-handle.js';

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

function leavesOf(tree: WorkflowTree, out: GroupMember[] = []): GroupMember[] {
  if ('task_id' in tree)
    out.push({ task_id: tree.task_id, queue: tree.queue, status: tree.task?.status ?? null });
  else if ('chain' in tree) for (const n of tree.chain) leavesOf(n, out);
  else if ('group' in tree) for (const n of tree.group) leavesOf(n, out);
  else {
    for (const n of tree.chord.header) leavesOf(n, out);
    leavesOf(tree.chord.body, out);
  }
  return out;
}

/** The progress of a group read as a tree; undefined when the workflow is not a group at its top. */
export function groupProgress(read: WorkflowRead): GroupProgress | undefined {
  if (!('group' in read.tree)) return undefined;
  const members = leavesOf(read.tree);
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
