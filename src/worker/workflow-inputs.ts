/**
 * What a workflow step gets from the tasks it waited for (its BullMQ children), read before its
 * service runs (docs/design.md §9). Every child is added with ignoreDependencyOnFailure, so BullMQ
 * releases the step once all of them ended: a completed child's envelope is among the processed
 * values, any other end among the ignored failures (its failed reason). All completed: their
 * results, in submission order, go into `input_data.previous` (a chain step) or
 * `input_data.results` (a chord's body). Otherwise the step does not run.
 */
import type { TaskErrorInfo } from '../core/errors.js';
import { ChordMemberFailedError, UpstreamFailedError } from '../core/errors.js';
import type { InputShape, StoredWorkflow, TaskJobData } from '../core/task.js';
import { TaskStatus } from '../core/task.js';
import type { LinkValues } from '../core/workflow-links.js';
import { decodeLinkFailure, flattenShape, isLinkJobId, linkValues } from '../core/workflow-links.js';
import type { ResultEnvelope, TaskJob } from '../engine/task-record.js';
import type { StepResults } from './step-results.js';

export type GatheredInputs =
  { ok: true; data: TaskJobData } | { ok: false; status: TaskStatus; error: TaskErrorInfo };

/** A dependency key names the child's queue and id (`<prefix>:<queue>:<id>` on Redis, `<queue>:<id>` on PostgreSQL); ids hold no ':'. */
const idOfKey = (key: string) => key.slice(key.lastIndexOf(':') + 1);

function assemble(shape: InputShape, values: Map<string, unknown>): unknown {
  return typeof shape === 'string' ? values.get(shape) : shape.map((s) => assemble(s, values));
}

type Processed = Record<string, ResultEnvelope | LinkValues> | undefined;
type Ignored = Record<string, string> | undefined;

/**
 * Each completed child's result by task id. A hidden link child (core/workflow-links.ts) stands
 * for the tasks it awaited: its values.
 */
function valuesOf(processed: Processed): Map<string, unknown> {
  const values = new Map<string, unknown>();
  for (const [key, value] of Object.entries(processed ?? {})) {
    const id = idOfKey(key);
    const linked = isLinkJobId(id) ? linkValues(value) : undefined;
    if (linked) for (const [task, result] of Object.entries(linked)) values.set(task, result);
    else values.set(id, (value as ResultEnvelope | undefined)?.result);
  }
  return values;
}

/** Each other end's reason by task id; a failed link child names the awaited task that did not complete. */
function failuresOf(ignored: Ignored): Map<string, string> {
  const failures = new Map<string, string>();
  for (const [key, reason] of Object.entries(ignored ?? {})) {
    const id = idOfKey(key);
    const linked = isLinkJobId(id) ? decodeLinkFailure(String(reason)) : undefined;
    if (linked) failures.set(linked.task_id, linked.error);
    else failures.set(id, String(reason));
  }
  return failures;
}

/** What a job's children gave: each completed task's result and each other end's reason, by task id. */
export async function readChildren(
  job: TaskJob,
): Promise<{ values: Map<string, unknown>; failures: Map<string, string> }> {
  const [processed, ignored] = await Promise.all([
    job.getChildrenValues() as Promise<Processed>,
    job.getIgnoredChildrenFailures() as Promise<Ignored>,
  ]);
  return { values: valuesOf(processed), failures: failuresOf(ignored) };
}

/**
 * `handed`: results of members that completed in this process (step-results.ts). When it holds
 * every input, the store is not read; the step was released, so they are all it waits for.
 */
export async function gatherInputs(
  job: TaskJob,
  data: TaskJobData,
  wanted: NonNullable<StoredWorkflow['in']>,
  handed?: StepResults,
): Promise<GatheredInputs> {
  const ids = flattenShape(wanted.from);
  // The results first, and the failures only when one is missing: a step whose inputs all
  // completed (every step of a workflow that goes well) costs one read, as a raw BullMQ chain step
  // does. The parent was released once every child ended, so the two reads see the same ends.
  const values = handed?.take(ids) ?? valuesOf((await job.getChildrenValues()) as Processed);

  // The first member, in submission order, that did not complete names the cause. A failed link
  // child hands on only that cause, not the results before it: a recorded failure comes first.
  const missing = ids.filter((id) => !values.has(id));
  if (missing.length > 0) {
    const failures = failuresOf((await job.getIgnoredChildrenFailures()) as Ignored);
    const id = missing.find((m) => failures.has(m)) ?? missing[0]!;
    const upstream = { task_id: id, error: failures.get(id) ?? 'its result is gone' };
    const error =
      wanted.as === 'results'
        ? new ChordMemberFailedError(data.task_id, upstream).toInfo()
        : new UpstreamFailedError(data.task_id, upstream).toInfo();
    delete error.stack;
    return {
      ok: false,
      status: wanted.as === 'results' ? TaskStatus.FAILED : TaskStatus.CANCELLED,
      error,
    };
  }
  const input = assemble(wanted.from, values);
  return { ok: true, data: { ...data, input_data: { ...data.input_data, [wanted.as]: input } } };
}
