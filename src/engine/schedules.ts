/**
 * Periodic tasks on BullMQ job schedulers (`upsertJobScheduler`): the store holds every schedule,
 * so any number of workers, gateways and `aiecs beat` processes may run and a tick fires once.
 *
 * Each schedule is two things in the store:
 * - its record, a job with the schedule's name as id in the queue `aiecs_schedules` (no worker
 *   consumes it): the definition as given, who made it (a schedule file or the API) and whether
 *   it is paused. It is what lists, pauses and resumes read, and what `aiecs beat` compares.
 * - while not paused, a BullMQ job scheduler `beat:<name>` on the task's queue, whose template is
 *   the task's stored data (with `schedule: <name>`) and job options. BullMQ has no pause per
 *   scheduler: pausing removes the scheduler (and its next job); resuming upserts it again.
 */
import { randomBytes, randomUUID, createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { AiecsConfig } from '../core/config.js';
import { ScheduleInvalidError, ScheduleNotFoundError, ValidationError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { WireSubmitOptions } from '../core/submission.js';
import { prepareSubmission } from '../core/submission.js';
import type { QueueKind, StoredTaskData } from '../core/task.js';
import { QUEUE_KINDS, canonicalJson, toBullPriority, toStoredData } from '../core/task.js';
import { SCHEDULER_PREFIX } from './schedules-fired.js';
import type { Store } from './store.js';

/** The queue that holds the schedules' records (never consumed). */
export const SCHEDULES_QUEUE = 'aiecs_schedules';
/** A name is a job id (the record's) and part of a scheduler id: no ':' and not an integer. */
export const SCHEDULE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
export type ScheduleSource = 'file' | 'api';

/** A schedule as written in a schedule file or sent to POST /api/schedules (wire form). */
export interface ScheduleSpec {
  name: string;
  cron?: string;
  tz?: string;
  /** Seconds between runs. */
  every?: number;
  /** ISO 8601: no run before it. */
  start?: string;
  /** ISO 8601: no run after it. */
  end?: string;
  /** Runs at most. */
  limit?: number;
  paused?: boolean;
  /** The task request as POST /api/tasks takes it. */
  task: Record<string, unknown>;
}

/** A checked schedule: its spec plus the task split into queue, wire request and options. */
export interface ScheduleDefinition {
  spec: ScheduleSpec;
  queue: QueueKind;
  request: Record<string, unknown>;
  options: WireSubmitOptions;
}

/** What a schedule's record holds. */
interface ScheduleRecord extends ScheduleDefinition {
  source: ScheduleSource;
  paused: boolean;
  /** The definition's hash when it was last applied (see definitionHash). */
  hash: string;
  updated_at: string;
}

/** A schedule as listed: its spec as written, where it came from, and its state in the store. */
export interface ScheduleInfo extends Omit<ScheduleSpec, 'paused'> {
  source: ScheduleSource;
  /** Paused by its spec or by hand. */
  paused: boolean;
  queue: QueueKind;
  /** When the next task fires (ISO 8601); null when paused, ended or past its limit. */
  next_run: string | null;
  /** Tasks fired so far by the current scheduler (BullMQ's iteration count). */
  runs: number;
  updated_at: string;
}

export interface SyncResult {
  added: string[];
  updated: string[];
  removed: string[];
  unchanged: string[];
}

/** How long one `aiecs beat` may hold the sync lease: ample for a file of schedules. */
const SYNC_LEASE_MS = 30_000;

/** The schedules of one store: list, add, pause, resume, remove, run now, and sync to a file. */
export class Schedules {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly store: Store,
    private readonly config: AiecsConfig,
    private readonly logger: Logger,
  ) {}

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = this.store.createQueue(name);
      queue.on('error', (error) => this.logger.warn({ err: error.message, queue: name }, 'queue error'));
      this.queues.set(name, queue);
    }
    return queue;
  }

  private async records(): Promise<Map<string, ScheduleRecord>> {
    const jobs = await this.queue(SCHEDULES_QUEUE).getJobs(['waiting', 'prioritized', 'delayed'], 0, -1);
    const byName = new Map<string, ScheduleRecord>();
    for (const job of jobs) if (job?.id) byName.set(job.id, job.data as ScheduleRecord);
    return byName;
  }

  private async record(name: string): Promise<ScheduleRecord> {
    const job = SCHEDULE_NAME.test(name) ? await this.queue(SCHEDULES_QUEUE).getJob(name) : undefined;
    if (!job) throw new ScheduleNotFoundError(name);
    return job.data as ScheduleRecord;
  }

  private async writeRecord(record: ScheduleRecord): Promise<void> {
    const defs = this.queue(SCHEDULES_QUEUE);
    const job = await defs.getJob(record.spec.name);
    if (job) await job.updateData(record);
    else await defs.add('schedule', record, { jobId: record.spec.name });
  }

  /** Every schedule with its next run time, by name. */
  async list(): Promise<ScheduleInfo[]> {
    const [records, ...schedulers] = await Promise.all([
      this.records(),
      ...QUEUE_KINDS.map((kind) => this.queue(kind).getJobSchedulers(0, -1)),
    ]);
    const live = new Map<string, { next?: number; iterationCount?: number }>();
    for (const list of schedulers) for (const s of list) live.set(s.key, s);
    return [...records.values()]
      .map((r) => info(r, r.paused ? undefined : live.get(SCHEDULER_PREFIX + r.spec.name)))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<ScheduleInfo> {
    const record = await this.record(name);
    const scheduler = record.paused
      ? undefined
      : await this.queue(record.queue).getJobScheduler(SCHEDULER_PREFIX + name);
    return info(record, scheduler);
  }

  /** Adds a schedule, or replaces the one of that name; says which. */
  async put(definition: ScheduleDefinition, source: ScheduleSource): Promise<{ created: boolean }> {
    const template = this.template(definition);
    const name = definition.spec.name;
    const old = await this.queue(SCHEDULES_QUEUE).getJob(name);
    const previous = old?.data as ScheduleRecord | undefined;
    const paused = definition.spec.paused ?? false;
    const record: ScheduleRecord = {
      ...definition,
      source,
      paused,
      hash: definitionHash(definition),
      updated_at: new Date().toISOString(),
    };
    // The record first: a scheduler never exists without one (a crash in between is repaired by
    // the next sync, which upserts what a record says is running).
    await this.writeRecord(record);
    if (previous && previous.queue !== definition.queue)
      await this.queue(previous.queue).removeJobScheduler(SCHEDULER_PREFIX + name);
    if (paused) await this.queue(definition.queue).removeJobScheduler(SCHEDULER_PREFIX + name);
    else await this.upsert(definition, template);
    return { created: previous === undefined };
  }

  async remove(name: string): Promise<void> {
    const record = await this.record(name);
    await this.queue(record.queue).removeJobScheduler(SCHEDULER_PREFIX + name);
    await this.queue(SCHEDULES_QUEUE).remove(name);
  }

  /** Pauses (or resumes) a schedule: a paused one fires nothing, and resuming replays no missed tick. */
  async setPaused(name: string, paused: boolean): Promise<ScheduleInfo> {
    const record = await this.record(name);
    if (record.paused !== paused) {
      await this.writeRecord({ ...record, paused, updated_at: new Date().toISOString() });
      if (paused) await this.queue(record.queue).removeJobScheduler(SCHEDULER_PREFIX + name);
      else await this.upsert(record, this.template(record));
    }
    return this.get(name);
  }

  /** Fires the schedule's task now, as one more ordinary task (its own id), leaving the schedule be. */
  async runNow(name: string): Promise<{ task_id: string; queue: QueueKind }> {
    const record = await this.record(name);
    const { data, opts } = this.template(record);
    const taskId = randomUUID();
    await this.queue(record.queue).add(data.task_name, data, { ...opts, jobId: taskId });
    return { task_id: taskId, queue: record.queue };
  }

  /**
   * Makes the schedules a file owns match `definitions`: adds and updates what changed since it
   * was last applied, removes file schedules the list no longer has, and leaves schedules made
   * through the API alone (unless the file names one: the file then owns it). One process syncs
   * at a time (a lease on the store), so two `aiecs beat` processes never race on one schedule.
   */
  async sync(definitions: ScheduleDefinition[]): Promise<SyncResult> {
    for (const d of definitions) this.template(d); // every entry checked before anything changes
    const holder = randomBytes(8).toString('hex');
    for (let waited = 0; !(await this.store.acquireLease('beat-sync', holder, 1, SYNC_LEASE_MS));) {
      if ((waited += 100) > SYNC_LEASE_MS) throw new Error('another aiecs beat holds the sync lease');
      await new Promise((r) => setTimeout(r, 100));
    }
    try {
      const result: SyncResult = { added: [], updated: [], removed: [], unchanged: [] };
      const records = await this.records();
      const wanted = new Set(definitions.map((d) => d.spec.name));
      for (const definition of definitions) {
        const name = definition.spec.name;
        const record = records.get(name);
        const same = record?.source === 'file' && record.hash === definitionHash(definition);
        if (same && (record.paused || (await this.running(record)))) result.unchanged.push(name);
        else {
          await this.put(definition, 'file');
          (record ? result.updated : result.added).push(name);
        }
      }
      for (const [name, record] of records)
        if (record.source === 'file' && !wanted.has(name)) {
          await this.remove(name);
          result.removed.push(name);
        }
      return result;
    } finally {
      await this.store.releaseLease('beat-sync', holder);
    }
  }

  private async running(record: ScheduleRecord): Promise<boolean> {
    const id = SCHEDULER_PREFIX + record.spec.name;
    return (await this.queue(record.queue).getJobScheduler(id)) !== undefined;
  }

  private async upsert(definition: ScheduleDefinition, template: Template): Promise<void> {
    const { spec } = definition;
    await this.queue(definition.queue).upsertJobScheduler(
      SCHEDULER_PREFIX + spec.name,
      {
        ...(spec.cron !== undefined ? { pattern: spec.cron } : {}),
        ...(spec.tz !== undefined ? { tz: spec.tz } : {}),
        ...(spec.every !== undefined ? { every: Math.round(spec.every * 1000) } : {}),
        ...(spec.start !== undefined ? { startDate: spec.start } : {}),
        ...(spec.end !== undefined ? { endDate: spec.end } : {}),
        ...(spec.limit !== undefined ? { limit: spec.limit } : {}),
      },
      { name: template.data.task_name, data: template.data, opts: template.opts },
    );
  }

  /** The job every tick makes: the task's stored data naming the schedule, and its job options. */
  private template(definition: ScheduleDefinition): Template {
    const { spec, queue } = definition;
    let prepared;
    try {
      prepared = prepareSubmission(queue, definition.request, definition.options, this.config.maxInputBytes);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      const where = (field: string) => `${spec.name}.task.${field.replace(/^options\./, '')}`;
      throw new ScheduleInvalidError(
        error.issues.map((i) => ({ field: where(i.field), message: i.message })),
      );
    }
    const data: StoredTaskData = { ...toStoredData(queue, prepared.data), schedule: spec.name };
    const opts = {
      priority: toBullPriority(prepared.data.options.priority),
      attempts: prepared.attempts ?? this.config.maxAttempts,
    };
    return { data, opts };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}

interface Template {
  data: StoredTaskData;
  opts: { priority: number; attempts: number };
}

/**
 * What decides whether a schedule's definition changed, canonically. `paused` as written is part
 * of it (a file that pauses an entry is an edit); a pause by hand is the record's own flag.
 */
function definitionHash(definition: ScheduleDefinition): string {
  return createHash('sha1')
    .update(canonicalJson([definition.spec, definition.queue]))
    .digest('base64url');
}

/** Past its limit or end, BullMQ keeps a scheduler but makes no next job. */
function ended(spec: ScheduleSpec, scheduler: { next?: number; iterationCount?: number }): boolean {
  const next = scheduler.next ?? 0;
  return (
    (spec.limit !== undefined && (scheduler.iterationCount ?? 0) >= spec.limit && next < Date.now()) ||
    (spec.end !== undefined && next > Date.parse(spec.end))
  );
}

function info(
  record: ScheduleRecord,
  scheduler: { next?: number; iterationCount?: number } | undefined,
): ScheduleInfo {
  const { spec } = record;
  const optional = Object.fromEntries(
    (['cron', 'tz', 'every', 'start', 'end', 'limit'] as const)
      .filter((k) => spec[k] !== undefined)
      .map((k) => [k, spec[k]]),
  );
  const over = scheduler?.next === undefined || ended(spec, scheduler);
  return {
    name: spec.name,
    source: record.source,
    paused: record.paused,
    queue: record.queue,
    ...optional,
    task: spec.task,
    next_run: over || !scheduler?.next ? null : new Date(scheduler.next).toISOString(),
    runs: scheduler?.iterationCount ?? 0,
    updated_at: record.updated_at,
  };
}
