/**
 * The task history's tables (docs/design.md, "Task history"): where they live, their numbered
 * migrations (src/engine/history/migrations, recorded in `aiecs_history_migrations`, apart from the
 * queue's own: the history may be another database), and every statement on them.
 */
import { createRequire } from 'node:module';
import type pg from 'pg';
import { inSchema, readQueries } from '../../core/script-files.js';
import { storableJsonText, storableText } from '../../core/storable-text.js';
import type { TaskStatus } from '../../core/task.js';
import { quoteSchemaName } from '../bullmq.js';
import { loadMigrations, migrate, type Migration } from '../migrate.js';
import type { SqlPool } from '../store.js';
import { decodeCursor, encodeCursor, redactUrl } from '../store.js';
import { copyIn, copyJson, copyString, copyValue, type CopyClient } from './copy-in.js';

export const HISTORY_MIGRATIONS_TABLE = 'aiecs_history_migrations';

let bundled: Migration[] | undefined;

/** The history's migrations shipped with this aiecs. */
export function historyMigrations(): Migration[] {
  bundled ??= loadMigrations(new URL('./migrations/', import.meta.url));
  return bundled;
}

const QUERIES = readQueries('./history.sql', import.meta.url, [
  'copy_entries',
  'insert_entries',
  'save_positions',
  'positions',
  'list',
  'list_all',
  'task',
  'erase_user',
  'sweep',
]);

/** Which event of a task an entry records. */
export type HistoryKind = 'queued' | 'running' | 'progress' | 'completed' | 'failed';

/** One row as the consumer writes it (snake_case, as stored). */
export interface HistoryRow {
  queue: string;
  event_id: string;
  task_id: string;
  user_id: string;
  task_name: string | null;
  mode: string | null;
  service: string | null;
  step: number | null;
  kind: HistoryKind;
  status: TaskStatus;
  seq: number;
  attempt: number;
  progress: number | null;
  message: string | null;
  result: unknown;
  error_code: string | null;
  error_message: string | null;
  worker: string | null;
  root_id: string | null;
  parent_id: string | null;
  schedule: string | null;
  at_ms: number;
  created_at_ms: number | null;
}

/** One state change of one task, as the API and the library return it. */
export interface HistoryEntry {
  task_id: string;
  user_id: string;
  task_name: string | null;
  mode: string | null;
  service: string | null;
  step: number | null;
  queue: string;
  kind: HistoryKind;
  status: TaskStatus;
  seq: number;
  attempt: number;
  progress: number | null;
  message: string | null;
  /** A completed task's result. */
  result?: unknown;
  /** A failure's (or a retry's) error. */
  error?: { code: string; message: string };
  worker: string | null;
  root_id?: string;
  parent_id?: string | null;
  schedule?: string;
  /** When the state changed (ISO 8601). */
  at: string;
  /** When the task was created (ISO 8601). */
  created_at: string | null;
}

export interface HistoryFilter {
  user?: string;
  status?: TaskStatus;
  /** Changes at or after this time (epoch ms). */
  since?: number;
  /** Changes at or before this time (epoch ms). */
  until?: number;
}

export interface HistoryPage {
  items: HistoryEntry[];
  /** Pass back as `cursor` for the next (older) page; absent on the last page. */
  next_cursor?: string;
}

/** A transaction's session: the consumer writes on the one that holds its lock. */
type Session = Awaited<ReturnType<SqlPool['connect']>>;

export class HistoryDb {
  private readonly sql: Record<keyof typeof QUERIES, string>;
  private migrated: Promise<void> | undefined;

  private constructor(
    readonly pool: SqlPool,
    readonly schema: string,
    /** Where it is, for logs: the store's database or the history URL (password hidden). */
    readonly where: string,
    private readonly end: (() => Promise<void>) | undefined,
    /** Its sessions are node-postgres clients, which run COPY (PGlite's are not). */
    private readonly copies: boolean,
  ) {
    this.sql = inSchema(QUERIES, quoteSchemaName(schema));
  }

  /** In this process (the embedded store's PGlite): its sessions cannot drop, nor their locks. */
  get inProcess(): boolean {
    return this.end === undefined;
  }

  /** The history in a database of its own (AIECS_HISTORY_URL), or in a PostgreSQL store's. */
  static atUrl(url: string, schema: string, connectTimeoutMs: number): HistoryDb {
    // Loaded here: beside the embedded store (onPool) node-postgres is never needed (2 MB of heap).
    const { Pool } = createRequire(import.meta.url)('pg') as typeof pg;
    const pool = new Pool({ connectionString: url, max: 4, connectionTimeoutMillis: connectTimeoutMs });
    // A dropped idle connection: the next query gets another. Reported by the queries that fail.
    pool.on('error', () => undefined);
    return new HistoryDb(pool as unknown as SqlPool, schema, redactUrl(url), () => pool.end(), true);
  }

  /** The history beside the embedded store, on its PGlite pool (the store closes it). */
  static onPool(pool: SqlPool, schema: string, where: string): HistoryDb {
    return new HistoryDb(pool, schema, where, undefined, false);
  }

  /** Migrates the history's tables once (tried again after a failure). */
  ready(): Promise<void> {
    this.migrated ??= migrate(this.pool, this.schema, historyMigrations(), {
      table: HISTORY_MIGRATIONS_TABLE,
      describe: (schema) => `the task history in schema ${schema} (${this.where})`,
    }).then(
      () => undefined,
      (error: unknown) => {
        this.migrated = undefined;
        throw error;
      },
    );
    return this.migrated;
  }

  /** Where the consumer has read to, per queue. */
  async positions(session: Session): Promise<Map<string, string>> {
    const { rows } = await session.query(this.sql.positions);
    return new Map(rows.map((r) => [String(r.queue), String(r.event_id)]));
  }

  /**
   * One batch and the positions it reached, in one transaction: by COPY where the session can; a
   * row written before (a batch read again) fails a COPY, and the batch is then written again by
   * an INSERT that skips the rows already there. A row the database refuses as data (a value out
   * of range: SQLSTATE class 22 or 54) would fail its batch on every retry and stop the history:
   * the batch then goes in row by row, and the rows refused are left out and returned.
   */
  async write(
    session: Session,
    rows: readonly HistoryRow[],
    positions: Record<string, string>,
  ): Promise<HistoryRow[]> {
    const copy = this.copies && rows.length > 0;
    try {
      await this.transaction(session, rows, positions, copy);
      return [];
    } catch (error) {
      if (copy && isDuplicate(error)) {
        try {
          await this.transaction(session, rows, positions, false);
          return [];
        } catch (again) {
          if (!isRowError(again)) throw again;
        }
      } else if (!isRowError(error)) throw error;
    }
    return this.rowByRow(session, rows, positions);
  }

  /** Each row under a savepoint of one transaction; the rows refused are rolled back and returned. */
  private async rowByRow(
    session: Session,
    rows: readonly HistoryRow[],
    positions: Record<string, string>,
  ): Promise<HistoryRow[]> {
    const refused: HistoryRow[] = [];
    await session.query('BEGIN');
    try {
      for (const row of rows) {
        await session.query('SAVEPOINT history_row');
        try {
          await session.query(this.sql.insert_entries, columnArrays([row]));
          await session.query('RELEASE SAVEPOINT history_row');
        } catch (error) {
          if (!isRowError(error)) throw error;
          await session.query('ROLLBACK TO SAVEPOINT history_row');
          refused.push(row);
        }
      }
      await session.query(this.sql.save_positions, [JSON.stringify(positions)]);
      await session.query('COMMIT');
      return refused;
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  private async transaction(
    session: Session,
    rows: readonly HistoryRow[],
    positions: Record<string, string>,
    copy: boolean,
  ): Promise<void> {
    await session.query('BEGIN');
    try {
      if (copy) await copyIn(session as unknown as CopyClient, this.sql.copy_entries, copyText(rows));
      else if (rows.length > 0) await session.query(this.sql.insert_entries, columnArrays(rows));
      await session.query(this.sql.save_positions, [JSON.stringify(positions)]);
      await session.query('COMMIT');
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /** One page, newest first. */
  async list(filter: HistoryFilter, limit: number, cursor?: string): Promise<HistoryPage> {
    await this.ready();
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const range = [filter.since ?? null, filter.until ?? null, after?.[0] ?? null, after?.[1] ?? null];
    // Everyone's rows have no index of their own (at_ms alone): list_all reads them by status.
    const { rows } =
      filter.user === undefined && filter.status === undefined
        ? await this.pool.query(this.sql.list_all, [limit + 1, ...range])
        : await this.pool.query(this.sql.list, [
            limit + 1,
            filter.user ?? null,
            filter.status ?? null,
            ...range,
          ]);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const items = page.map(toEntry);
    return rows.length > limit && last
      ? { items, next_cursor: encodeCursor(Number(last.at_ms), String(last.id)) }
      : { items };
  }

  /** A task's entries in order (at most `limit`). */
  async task(taskId: string, limit: number): Promise<HistoryEntry[]> {
    await this.ready();
    const { rows } = await this.pool.query(this.sql.task, [taskId, limit]);
    return rows.map(toEntry);
  }

  /** Deletes every entry of a user's tasks; resolves to how many. */
  async eraseUser(userId: string): Promise<number> {
    await this.ready();
    const { rows } = await this.pool.query(this.sql.erase_user, [userId]);
    return Number(rows[0]?.n ?? 0);
  }

  /** Deletes entries older than `cutoffMs`, `chunk` rows per statement; resolves to how many. */
  async sweep(cutoffMs: number, chunk = 5_000): Promise<number> {
    let total = 0;
    for (;;) {
      const { rows } = await this.pool.query(this.sql.sweep, [cutoffMs, chunk]);
      const n = Number(rows[0]?.n ?? 0);
      total += n;
      if (n < chunk) return total;
    }
  }

  async close(): Promise<void> {
    await this.end?.();
  }
}

const UNIQUE_VIOLATION = '23505';

const sqlState = (error: unknown) => (error as { code?: unknown } | null)?.code;
const isDuplicate = (error: unknown) => sqlState(error) === UNIQUE_VIOLATION;

/** The database refused a value (data exception, class 22; program limit, class 54), not the session. */
function isRowError(error: unknown): boolean {
  const code = sqlState(error);
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('54'));
}

/** The fields every row of a task repeats (read from its job once). */
const FIXED_COLUMNS = [
  'task_id',
  'user_id',
  'task_name',
  'mode',
  'service',
  'step',
  'root_id',
  'parent_id',
  'schedule',
  'created_at_ms',
] as const satisfies ReadonlyArray<keyof HistoryRow>;

/** Every column a batch writes, as history.sql lists them: the task's fixed fields first. */
const COLUMNS = [
  ...FIXED_COLUMNS,
  'queue',
  'event_id',
  'kind',
  'status',
  'seq',
  'attempt',
  'progress',
  'message',
  'result',
  'error_code',
  'error_message',
  'worker',
  'at_ms',
] as const satisfies ReadonlyArray<keyof HistoryRow>;

/**
 * The rows in COPY's text format (COLUMNS' order), one line each. The fixed fields' text is made
 * once per task of the batch: its rows carry the same values.
 */
function copyText(rows: readonly HistoryRow[]): string {
  const fixed = new Map<string, { row: HistoryRow; text: string }>();
  let out = '';
  for (const row of rows) {
    let known = fixed.get(row.task_id);
    if (!known || !sameTask(known.row, row)) {
      let text = '';
      for (const column of FIXED_COLUMNS) text += `${copyValue(row[column])}\t`;
      known = { row, text };
      fixed.set(row.task_id, known);
    }
    out +=
      known.text +
      `${copyString(row.queue)}\t${copyString(row.event_id)}\t${copyString(row.kind)}\t` +
      `${copyValue(row.status)}\t${copyValue(row.seq)}\t${copyValue(row.attempt)}\t` +
      `${copyValue(row.progress)}\t${copyValue(row.message)}\t${copyJson(row.result)}\t` +
      `${copyValue(row.error_code)}\t${copyValue(row.error_message)}\t${copyValue(row.worker)}\t` +
      `${copyValue(row.at_ms)}\n`;
  }
  return out;
}

function sameTask(a: HistoryRow, b: HistoryRow): boolean {
  for (const column of FIXED_COLUMNS) if (a[column] !== b[column]) return false;
  return true;
}

/** The rows as one array per column (COLUMNS' order) for insert_entries; results as JSON text. */
function columnArrays(rows: readonly HistoryRow[]): unknown[][] {
  return COLUMNS.map((column) =>
    rows.map((row) => {
      const value = row[column];
      if (column === 'result')
        return value === null || value === undefined ? null : storableJsonText(JSON.stringify(value));
      // As JSON.stringify writes them: a number that is not finite is null.
      if (typeof value === 'number') return Number.isFinite(value) ? value : null;
      // As copyString does: text PostgreSQL refuses (a NUL) would fail the whole batch.
      if (typeof value === 'string') return storableText(value);
      return value ?? null;
    }),
  );
}

/** A cursor `list` can read (the HTTP edge checks it before the query). */
export function isHistoryCursor(cursor: string): boolean {
  const decoded = decodeCursor(cursor);
  return decoded !== undefined && /^\d+$/.test(decoded[1]);
}

const iso = (ms: unknown) => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());

function toEntry(r: Record<string, unknown>): HistoryEntry {
  const entry: HistoryEntry = {
    task_id: String(r.task_id),
    user_id: String(r.user_id),
    task_name: (r.task_name as string | null) ?? null,
    mode: (r.mode as string | null) ?? null,
    service: (r.service as string | null) ?? null,
    step: r.step === null || r.step === undefined ? null : Number(r.step),
    queue: String(r.queue),
    kind: r.kind as HistoryKind,
    status: r.status as TaskStatus,
    seq: Number(r.seq),
    attempt: Number(r.attempt),
    progress: r.progress === null || r.progress === undefined ? null : Number(r.progress),
    message: (r.message as string | null) ?? null,
    worker: (r.worker as string | null) ?? null,
    at: iso(r.at_ms) ?? '',
    created_at: iso(r.created_at_ms),
  };
  if (r.kind === 'completed') entry.result = r.result ?? null;
  if (r.error_code !== null && r.error_code !== undefined)
    entry.error = { code: String(r.error_code), message: String(r.error_message ?? '') };
  if (r.root_id !== null && r.root_id !== undefined) {
    entry.root_id = String(r.root_id);
    entry.parent_id = (r.parent_id as string | null) ?? null;
  }
  if (r.schedule !== null && r.schedule !== undefined) entry.schedule = String(r.schedule);
  return entry;
}
