/**
 * Fan-out in a workflow (docs/design.md §9, "Fan-out"): a BullMQ flow is a tree (a job has one
 * parent), so when several tasks follow one node (`chain(a, group([b, c]))`) only the first takes
 * the node's jobs as its children. Each other one gets a hidden *await* job as its only child,
 * which ends as soon as the awaited job has ended: it returns the awaited results, or fails naming
 * the awaited task and its error, and BullMQ then releases its parent exactly as a native child
 * would. When the node has several output jobs (a group), they are first collected by one hidden
 * *gather* job (their common parent) which the first follower takes as its child and the others
 * await. Hidden jobs are never members: no record, no events, no place in the tree.
 *
 * Their names and ids hold '~', which no task name or task id may hold, so no request can make one.
 */
import type { InputShape, QueueKind } from './task.js';

/** The job names of hidden link jobs; the worker runs them before (and instead of) any task handling. */
export const AWAIT_JOB = 'aiecs~await';
export const GATHER_JOB = 'aiecs~gather';

const MARK = '~';

/** `nonce` tells one workflow's hidden jobs from an earlier one's under the same task ids. */
export const awaitJobId = (followerId: string, nonce: string) => `${followerId}${MARK}await${MARK}${nonce}`;
export const gatherJobId = (followerId: string, nonce: string) => `${followerId}${MARK}gather${MARK}${nonce}`;

export const isLinkJobName = (name: string | undefined) => name === AWAIT_JOB || name === GATHER_JOB;
export const isLinkJobId = (id: string | undefined) => id !== undefined && id.includes(MARK);

/**
 * A member's `parent_id` (the task that waits for it): a member collected by a gather job names
 * the follower that gather job feeds (its id is the gather job's, less the mark).
 */
export function memberParentId(parentId: string | null | undefined): string | null {
  if (!parentId) return null;
  const at = parentId.indexOf(MARK);
  return at < 0 ? parentId : parentId.slice(0, at);
}

/**
 * An await job's first look, and its shortest wait between two: it is added delayed by this much
 * (the end of what it awaits wakes it sooner), so a fan-out costs no run at submit.
 */
export const AWAIT_MIN_WAIT_MS = 250;

export interface LinkRef {
  id: string;
  queue: QueueKind;
}

/** What a hidden job stores. */
export interface LinkJobData {
  /** The workflow's root task id. */
  root: string;
  /** An await job: the one job it waits for (a task, or a gather job). */
  of?: LinkRef;
  /** A gather job: the task ids it collects (its children), in submission order. */
  ids?: string[];
  /** A gather job: the await jobs to wake when it ends (a task keeps its own in `wf.awaits`). */
  awaits?: LinkRef[];
}

/** What a hidden job that completed returns: the awaited results by task id. */
export interface LinkValues {
  values: Record<string, unknown>;
}

/** Why a hidden job failed: the first awaited task, in submission order, that did not complete. */
export interface LinkFailure {
  task_id: string;
  error: string;
}

const FAILURE_PREFIX = 'aiecs~upstream ';

/** The failed reason of a hidden job (what BullMQ hands its parent as the ignored failure). */
export const encodeLinkFailure = (failure: LinkFailure) => FAILURE_PREFIX + JSON.stringify(failure);

export function decodeLinkFailure(reason: string): LinkFailure | undefined {
  if (!reason.startsWith(FAILURE_PREFIX)) return undefined;
  try {
    const parsed = JSON.parse(reason.slice(FAILURE_PREFIX.length)) as Partial<LinkFailure>;
    if (typeof parsed.task_id === 'string' && typeof parsed.error === 'string')
      return { task_id: parsed.task_id, error: parsed.error };
  } catch {
    // not ours
  }
  return undefined;
}

/** A hidden job's return value, when it is one. */
export function linkValues(value: unknown): Record<string, unknown> | undefined {
  const values = (value as Partial<LinkValues> | null | undefined)?.values;
  return values && typeof values === 'object' ? values : undefined;
}

/** The task ids of an input shape, in submission order. */
export function flattenShape(shape: InputShape, out: string[] = []): string[] {
  if (typeof shape === 'string') out.push(shape);
  else for (const s of shape) flattenShape(s, out);
  return out;
}
