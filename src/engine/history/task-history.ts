/**
 * The task history as the library offers it (`app.history`): a page of entries by user, status
 * and time, one task's entries, and a user's erasure. The database is found (and its tables
 * migrated) on the first call, so an app that never reads the history never loads pg for it.
 */
import { HistoryDisabledError, ValidationError, type FieldIssue } from '../../core/errors.js';
import { TaskStatus } from '../../core/task.js';
import type { Store } from '../store.js';
import type { AiecsConfig } from '../../core/config.js';
import type { HistoryEntry, HistoryPage } from './history-db.js';
import type { HistoryTarget } from './history-target.js';

export type { HistoryEntry, HistoryKind, HistoryPage } from './history-db.js';

/** A time bound: epoch ms, a Date or an ISO 8601 string. */
export type TimeBound = number | Date | string;

export interface HistoryListOptions {
  /** Whose tasks; every user's when left out. */
  user?: string;
  status?: TaskStatus;
  /** Changes at or after this time. */
  since?: TimeBound;
  /** Changes at or before this time. */
  until?: TimeBound;
  /** A page's `next_cursor`, for the next (older) page. */
  cursor?: string;
  /** 1..500 (default 50). */
  limit?: number;
}

export const HISTORY_DEFAULT_LIMIT = 50;
export const HISTORY_MAX_LIMIT = 500;
/** A task's entries returned at most (a task has a few per run, more with progress steps). */
export const HISTORY_TASK_LIMIT = 10_000;

const STATUSES: ReadonlySet<string> = new Set(Object.values(TaskStatus));

/** Epoch ms of a bound, or undefined when it is not a time. */
export function timeBoundMs(value: TimeBound): number | undefined {
  const ms =
    value instanceof Date
      ? value.getTime()
      : typeof value === 'number'
        ? value
        : /^\d+$/.test(value)
          ? Number(value)
          : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

export class TaskHistory {
  private target: Promise<HistoryTarget> | undefined;

  constructor(
    private readonly config: AiecsConfig,
    private readonly store: () => Promise<Store>,
  ) {}

  private async db() {
    this.target ??= (async () => {
      const { historyTarget } = await import('./history-target.js');
      return historyTarget(this.config, await this.store());
    })().catch((error: unknown) => {
      this.target = undefined;
      throw error;
    });
    const target = await this.target;
    if (!target.enabled) throw new HistoryDisabledError(target.reason);
    return target.db;
  }

  /** Whether the history is kept in this deployment (false: every call throws HistoryDisabledError). */
  async enabled(): Promise<boolean> {
    return this.db().then(
      () => true,
      (error: unknown) => {
        if (error instanceof HistoryDisabledError) return false;
        throw error;
      },
    );
  }

  /** One page of entries, newest first. */
  async list(options: HistoryListOptions = {}): Promise<HistoryPage> {
    const issues: FieldIssue[] = [];
    const limit = options.limit ?? HISTORY_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > HISTORY_MAX_LIMIT)
      issues.push({ field: 'limit', message: `must be a whole number from 1 to ${HISTORY_MAX_LIMIT}` });
    if (options.status !== undefined && !STATUSES.has(options.status))
      issues.push({ field: 'status', message: `must be one of ${[...STATUSES].join(', ')}` });
    const bound = (field: 'since' | 'until') => {
      const value = options[field];
      if (value === undefined) return undefined;
      const ms = timeBoundMs(value);
      if (ms === undefined) issues.push({ field, message: 'must be a date, epoch milliseconds or ISO 8601' });
      return ms;
    };
    const since = bound('since');
    const until = bound('until');
    const { isHistoryCursor } = await import('./history-db.js');
    if (options.cursor !== undefined && !isHistoryCursor(options.cursor))
      issues.push({ field: 'cursor', message: "is not a cursor of this list (pass a page's next_cursor)" });
    if (issues.length > 0) throw new ValidationError(issues, 'invalid history query');
    const db = await this.db();
    return db.list(
      {
        ...(options.user !== undefined ? { user: options.user } : {}),
        ...(options.status !== undefined ? { status: options.status } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
      },
      limit,
      options.cursor,
    );
  }

  /** A task's entries, oldest first (empty when the history holds none of it). */
  async task(taskId: string): Promise<HistoryEntry[]> {
    return (await this.db()).task(taskId, HISTORY_TASK_LIMIT);
  }

  /** Deletes every entry of a user's tasks (a user's right to erase); resolves to how many. */
  async erase(userId: string): Promise<{ deleted: number }> {
    if (userId === '') throw new ValidationError([{ field: 'user', message: 'must not be empty' }]);
    return { deleted: await (await this.db()).eraseUser(userId) };
  }

  async close(): Promise<void> {
    const target = await this.target?.catch(() => undefined);
    this.target = undefined;
    if (target?.enabled) await target.db.close();
  }
}
