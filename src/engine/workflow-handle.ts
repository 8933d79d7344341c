/**
 * A submitted workflow: its root task id, the tree of its members' ids, waiting for its result,
 * reading its tree of records and cancelling every unfinished member (docs/design.md §9).
 */
import type { Queue } from 'bullmq';
import type { AiecsConfig } from '../core/config.js';
import { TaskNotFoundError } from '../core/errors.js';
import type { QueueKind, StoredTaskData, TaskRecord, TaskStatus } from '../core/task.js';
import { QUEUE_KINDS } from '../core/task.js';
import type { WorkflowIds, WorkflowRead, WorkflowTree } from '../core/workflow.js';
import { mapWorkflow, workflowTaskIds } from '../core/workflow.js';
import type { Store } from './store.js';
import type { GuardedCall } from './store-guard.js';
import type { ResultEnvelope } from './task-record.js';

interface MemberCancel {
  task_id: string;
  status: TaskStatus;
  cancelled: boolean;
}

/** What workflows need of the app (the app itself; an interface keeps the modules apart). */
export interface WorkflowDeps {
  readonly config: AiecsConfig;
  bounded<T>(what: string, call: (state: GuardedCall) => Promise<T>): Promise<T>;
  store(): Promise<Store>;
  queue(kind: QueueKind): Promise<Queue<StoredTaskData, ResultEnvelope>>;
  getTask(taskId: string, kind?: QueueKind): Promise<TaskRecord | undefined>;
  waitFor(taskId: string, kind: QueueKind, options?: { timeout?: number }): Promise<TaskRecord>;
  /** Cancels one task (not its workflow). */
  cancelOne(taskId: string): Promise<MemberCancel>;
}

/** A chain's or chord's result is one record; a group's, its members' in order (nested for nested groups). */
export type WorkflowResult = TaskRecord | WorkflowResult[];

export interface WorkflowCancelResult {
  /** The root task id. */
  root_id: string;
  /** Members that were still unfinished and are now cancelled (or being cancelled, when running). */
  cancelled: string[];
  /** Every member's status after the request, in tree order. */
  members: MemberCancel[];
}

/** Store calls a tree read or cancel keeps in flight at once: a 10,000-task tree is not 10,000 at once. */
const FAN_OUT = 16;

async function eachLimited<T, R>(items: T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await run(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(FAN_OUT, items.length) }, lane));
  return out;
}

export class WorkflowHandle {
  constructor(
    private readonly app: WorkflowDeps,
    /** The root task id: a chain's last step, a chord's body, a top group's first member. */
    readonly id: string,
    /** The members' ids, as the tree was given. */
    readonly children: WorkflowIds,
  ) {}

  /**
   * Waits for the workflow's result: a chain's last step's record, a chord's callback's record
   * (each rejects as a task handle's get does when it did not complete), a group's members'
   * records in order (resolved whatever each member's end: its status says it).
   */
  get(options: { timeout?: number } = {}): Promise<WorkflowResult> {
    const deadline = options.timeout === undefined ? undefined : Date.now() + options.timeout * 1000;
    return this.resultOf(this.children, deadline, true);
  }

  private async resultOf(
    ids: WorkflowIds,
    deadline: number | undefined,
    strict: boolean,
  ): Promise<WorkflowResult> {
    if ('chain' in ids) return this.resultOf(ids.chain[ids.chain.length - 1]!, deadline, strict);
    if ('chord' in ids) return this.resultOf(ids.chord.body, deadline, strict);
    // A few waits at a time: a 1,000-member group must not be 1,000 reads of the store at once.
    if ('group' in ids) return eachLimited(ids.group, (m) => this.resultOf(m, deadline, false));
    const timeout = deadline === undefined ? undefined : Math.max(0, (deadline - Date.now()) / 1000);
    try {
      return await this.app.waitFor(ids.task, ids.queue, timeout === undefined ? {} : { timeout });
    } catch (error) {
      // A group's member that did not complete is shown, not thrown: partial failure is visible.
      const record = (error as { record?: TaskRecord }).record;
      if (!strict && record) return record;
      throw error;
    }
  }

  /** Every member's record, in the tree's shape. */
  async tree(): Promise<WorkflowRead> {
    return { root_id: this.id, tree: await readTree(this.app, this.children) };
  }

  /** Cancels every unfinished member. */
  cancel(): Promise<WorkflowCancelResult> {
    return cancelMembers(this.app, this.id, this.children);
  }
}

async function readTree(app: WorkflowDeps, ids: WorkflowIds): Promise<WorkflowTree> {
  const leaves = workflowTaskIds(ids);
  const records = await eachLimited(leaves, (leaf) => app.getTask(leaf.task, leaf.queue));
  const byId = new Map(leaves.map((leaf, i) => [leaf.task, records[i] ?? null]));
  return mapWorkflow(ids, (leaf) => ({
    task_id: leaf.task,
    queue: leaf.queue,
    task: byId.get(leaf.task) ?? null,
  }));
}

async function cancelMembers(
  app: WorkflowDeps,
  rootId: string,
  ids: WorkflowIds,
): Promise<WorkflowCancelResult> {
  // Latest first (a chain's last step, a chord's body): each is marked before what it waits for ends.
  const leaves = workflowTaskIds(ids).reverse();
  const results = await eachLimited(leaves, async (leaf) => {
    try {
      return await app.cancelOne(leaf.task);
    } catch (error) {
      // Removed by retention since: nothing left to cancel.
      if (error instanceof TaskNotFoundError) return undefined;
      throw error;
    }
  });
  const members = results.filter((r): r is MemberCancel => r !== undefined).reverse();
  return { root_id: rootId, cancelled: members.filter((m) => m.cancelled).map((m) => m.task_id), members };
}

/** The workflow a task belongs to: its root id and the stored tree of member ids. */
export async function workflowOf(
  app: WorkflowDeps,
  taskId: string,
): Promise<{ rootId: string; ids: WorkflowIds } | undefined> {
  const job = await findJob(app, taskId);
  const root = job?.data.wf?.root;
  if (!root) return undefined;
  const rootJob = root === taskId ? job : await findJob(app, root);
  const ids = rootJob?.data.wf?.ids as WorkflowIds | undefined;
  return ids ? { rootId: root, ids } : undefined;
}

async function findJob(app: WorkflowDeps, taskId: string) {
  const jobs = await Promise.all(QUEUE_KINDS.map(async (kind) => (await app.queue(kind)).getJob(taskId)));
  return jobs.find((job) => job !== undefined);
}

/** GET /api/tasks/:id/tree: the tree of the workflow a task belongs to; undefined for a lone task. */
export async function readWorkflow(app: WorkflowDeps, taskId: string): Promise<WorkflowRead | undefined> {
  const found = await workflowOf(app, taskId);
  if (!found) return undefined;
  return { root_id: found.rootId, tree: await readTree(app, found.ids) };
}

/** Cancels every unfinished member of the workflow a task belongs to; undefined for a lone task. */
export async function cancelWorkflow(
  app: WorkflowDeps,
  taskId: string,
): Promise<WorkflowCancelResult | undefined> {
  const found = await workflowOf(app, taskId);
  return found && cancelMembers(app, found.rootId, found.ids);
}

/**
 * A cancel as `app.cancel` does it: the root of a workflow (or any member, with `tree`) cancels
 * every unfinished member; any other task, only itself. `workflow` says what the members did.
 */
export async function cancelWithWorkflow(
  app: WorkflowDeps,
  taskId: string,
  tree: boolean,
): Promise<MemberCancel & { workflow?: WorkflowCancelResult }> {
  const found = await app.bounded('cancel the task', () => workflowOf(app, taskId));
  if (!found || (!tree && found.rootId !== taskId)) return app.cancelOne(taskId);
  const workflow = await cancelMembers(app, found.rootId, found.ids);
  const own = workflow.members.find((m) => m.task_id === taskId) ?? (await app.cancelOne(taskId));
  return { ...own, workflow };
}
