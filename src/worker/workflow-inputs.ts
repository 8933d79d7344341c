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
import type { ResultEnvelope, TaskJob } from '../engine/task-record.js';

export type GatheredInputs =
  { ok: true; data: TaskJobData } | { ok: false; status: TaskStatus; error: TaskErrorInfo };

/** A dependency key names the child's queue and id (`<prefix>:<queue>:<id>` on Redis, `<queue>:<id>` on PostgreSQL); ids hold no ':'. */
const idOfKey = (key: string) => key.slice(key.lastIndexOf(':') + 1);

function flatten(shape: InputShape, out: string[] = []): string[] {
  if (typeof shape === 'string') out.push(shape);
  else for (const s of shape) flatten(s, out);
  return out;
}

function assemble(shape: InputShape, values: Map<string, unknown>): unknown {
  return typeof shape === 'string' ? values.get(shape) : shape.map((s) => assemble(s, values));
}

export async function gatherInputs(
  job: TaskJob,
  data: TaskJobData,
  wanted: NonNullable<StoredWorkflow['in']>,
): Promise<GatheredInputs> {
  const [processed, ignored] = await Promise.all([
    job.getChildrenValues() as Promise<Record<string, ResultEnvelope> | undefined>,
    job.getIgnoredChildrenFailures() as Promise<Record<string, string> | undefined>,
  ]);
  const values = new Map<string, unknown>();
  for (const [key, envelope] of Object.entries(processed ?? {})) values.set(idOfKey(key), envelope?.result);
  const failures = new Map<string, string>();
  for (const [key, reason] of Object.entries(ignored ?? {})) failures.set(idOfKey(key), String(reason));

  // The first member, in submission order, that did not complete names the cause.
  for (const id of flatten(wanted.from)) {
    if (values.has(id)) continue;
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
