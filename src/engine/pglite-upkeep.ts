/**
 * The upkeep a PostgreSQL server's background processes do, for the embedded store. PGlite runs
 * PostgreSQL as a single-user backend: there is no autovacuum and no checkpointer. Without them an
 * embedded store grows for as long as it runs, whatever its queues hold. Measured (PGlite 0.5.16,
 * no-op tasks, nothing of this): after 30,000 tasks BullMQ's event table held its 10,000 kept events
 * and 109,000 dead ones in 28 MB, growing about 0.9 MB per 1,000 tasks; the job table had 61,000
 * dead row versions beside its 30,000 jobs; and the write-ahead log was 218 MB in 13 segments
 * after 40,000 tasks, growing about 5 KB a task (with no checkpoint since the start, recovery
 * after a crash would redo all of it). With this, the event table stays at its size after the
 * first minute and the log at a few segments.
 *
 * What runs, every `intervalMs` (default 15 s; an unref'd timer, so it never keeps a process up):
 * - Nothing more than one query when the log has not moved since the last pass (an idle store),
 *   or less than 256 KiB of it was written since the last pass that read the statistics. An idle
 *   `aiecs up` still writes a little (heartbeats, stalled-job checks: about 8 KB a minute), and
 *   reading the statistics every pass cost it three queries each time for nothing; 256 KiB is
 *   about 50 no-op tasks, far below what makes a table worth a vacuum, and a store under load
 *   writes it within one interval.
 * - VACUUM and ANALYZE of each table of the store's schema past the thresholds PostgreSQL's own
 *   autovacuum uses by default: dead rows over 50 + 20 % of the live ones (or, for tables that
 *   only grow, rows inserted since the last vacuum over 1,000 + 20 %), rows changed since the last
 *   analyze over 50 + 10 %.
 * - CHECKPOINT once a segment's worth of log (16 MB) was written since the last one, or five
 *   minutes passed with any: PostgreSQL then recycles the segments before it (min_wal_size).
 *
 * PGlite is one session, so each statement holds the store's other queries while it runs. Under a
 * no-op load of 500-700 tasks/s (50,000 tasks, 15 s passes): VACUUM 10-70 ms a table, ANALYZE of
 * the job table 50 ms (it was 80-560 ms, growing with the table, before default_statistics_target
 * 10: pglite-start.ts), CHECKPOINT 5-10 ms; no throughput lost that the run's noise showed. A
 * failed pass is logged once and the next one tries again. Each statement's time is in the
 * `aiecs_embedded_upkeep_seconds{statement}` histogram where the process serves metrics.
 */
import type { Logger } from '../core/logger.js';
import { countingMetrics, type UpkeepStatement } from '../core/metrics.js';

/** What the upkeep needs of the store's pool. */
export interface UpkeepPool {
  query(text: string, params?: readonly unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

export interface UpkeepOptions {
  /** The schema whose tables are kept (the embedded store's, `bullmq`). */
  schema: string;
  logger: Logger;
  /** Time between two passes. Default 15 s. */
  intervalMs?: number;
}

export const DEFAULT_UPKEEP_INTERVAL_MS = 15_000;

/** PostgreSQL's autovacuum defaults (autovacuum_vacuum_threshold and the rest). */
const VACUUM_BASE = 50;
const VACUUM_SCALE = 0.2;
const INSERT_VACUUM_BASE = 1_000;
const INSERT_VACUUM_SCALE = 0.2;
const ANALYZE_BASE = 50;
const ANALYZE_SCALE = 0.1;
/** Log written since the last full pass below which a pass reads no statistics. */
export const UPKEEP_MIN_WAL_BYTES = 256 * 1024;
/** One WAL segment (PGlite's wal_segment_size). */
const CHECKPOINT_WAL_BYTES = 16 * 1024 * 1024;
/** PostgreSQL's checkpoint_timeout. */
const CHECKPOINT_TIMEOUT_MS = 5 * 60_000;

/** What one pass did; empty lists and no checkpoint on an idle store. */
export interface UpkeepReport {
  vacuumed: string[];
  analyzed: string[];
  /** Each statement run and how long it held the store (ms). */
  steps: Array<{ statement: string; ms: number }>;
  /** Bytes of log written since the checkpoint before, when one was taken. */
  checkpointedWalBytes?: number;
  ms: number;
}

interface TableStats {
  relname: string;
  live: number;
  dead: number;
  insertedSinceVacuum: number;
  changedSinceAnalyze: number;
}

/** An identifier as PostgreSQL reads it quoted: any name a table may have. */
const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** Which of VACUUM and ANALYZE a table is due for, by autovacuum's default thresholds. */
export function dueFor(t: TableStats): { vacuum: boolean; analyze: boolean } {
  return {
    vacuum:
      t.dead > VACUUM_BASE + VACUUM_SCALE * t.live ||
      t.insertedSinceVacuum > INSERT_VACUUM_BASE + INSERT_VACUUM_SCALE * t.live,
    analyze: t.changedSinceAnalyze > ANALYZE_BASE + ANALYZE_SCALE * t.live,
  };
}

const STATS_SQL = `SELECT relname,
    n_live_tup::float8 AS live, n_dead_tup::float8 AS dead,
    n_ins_since_vacuum::float8 AS inserted, n_mod_since_analyze::float8 AS changed
  FROM pg_stat_user_tables WHERE schemaname = $1`;

/**
 * The log's position, how much of it was written since a position ($1) and since the last
 * checkpoint began, and when that was.
 */
const WAL_SQL = `SELECT pg_current_wal_insert_lsn()::text AS lsn,
    pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::float8 AS since_pass,
    pg_wal_lsn_diff(pg_current_wal_insert_lsn(), redo_lsn)::float8 AS since_checkpoint,
    (EXTRACT(EPOCH FROM checkpoint_time) * 1000)::float8 AS checkpoint_ms
  FROM pg_control_checkpoint()`;

interface WalState {
  lsn: string;
  /** Bytes of log written since the last full pass. */
  sincePass: number;
  sinceCheckpoint: number;
  checkpointMs: number;
}

export class PgliteUpkeep {
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  /** The log's position after the last pass: unchanged means nothing was written since. */
  private seenLsn: string | undefined;
  /** The log's position after the last full pass (one that read the statistics). */
  private fullPassLsn = '0/0';
  private failing = false;
  private closed = false;

  constructor(
    private readonly pool: UpkeepPool,
    private readonly options: UpkeepOptions,
  ) {
    this.intervalMs = options.intervalMs ?? DEFAULT_UPKEEP_INTERVAL_MS;
  }

  /** Passes every intervalMs until close(). */
  start(): this {
    this.schedule();
    return this;
  }

  /** One pass now (after the one under way, if any). */
  async runOnce(): Promise<UpkeepReport> {
    const previous = this.running;
    const pass = (async () => {
      await previous?.catch(() => undefined);
      return this.pass();
    })();
    this.running = pass;
    return pass;
  }

  /** Stops the timer and waits for a pass under way: the pool may be ended after. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.runOnce()
        .then((report) => this.logged(report))
        .catch((error: unknown) => this.failed(error))
        .finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  private async pass(): Promise<UpkeepReport> {
    const started = performance.now();
    const report: UpkeepReport = { vacuumed: [], analyzed: [], steps: [], ms: 0 };
    const wal = await this.wal();
    if (wal.lsn === this.seenLsn) return this.finished(report, started);
    const full = wal.sincePass >= UPKEEP_MIN_WAL_BYTES;
    if (full) await this.vacuumAndAnalyze(report);
    await this.checkpointIfDue(report, wal);
    // Reading statistics writes no log; a statement run here does, so the next pass starts after it.
    this.seenLsn = report.steps.length > 0 ? (await this.wal()).lsn : wal.lsn;
    if (full) this.fullPassLsn = this.seenLsn;
    return this.finished(report, started);
  }

  private async vacuumAndAnalyze(report: UpkeepReport): Promise<void> {
    const schema = this.options.schema;
    // The session's own counts reach the statistics at the end of its next transaction (this one).
    await this.pool.query('SELECT pg_stat_force_next_flush()');
    const { rows } = await this.pool.query(STATS_SQL, [schema]);
    for (const row of rows) {
      const table: TableStats = {
        relname: String(row.relname),
        live: Number(row.live),
        dead: Number(row.dead),
        insertedSinceVacuum: Number(row.inserted),
        changedSinceAnalyze: Number(row.changed),
      };
      const due = dueFor(table);
      if (!due.vacuum && !due.analyze) continue;
      const name = `${quoteIdent(schema)}.${quoteIdent(table.relname)}`;
      // One statement each, so the store's other queries get in between. Closed meanwhile: the
      // pool is about to end, and the next start does the rest.
      if (due.vacuum && !this.closed) {
        await this.timed(report, 'vacuum', `VACUUM ${name}`);
        report.vacuumed.push(table.relname);
      }
      if (due.analyze && !this.closed) {
        await this.timed(report, 'analyze', `ANALYZE ${name}`);
        report.analyzed.push(table.relname);
      }
    }
  }

  private finished(report: UpkeepReport, started: number): UpkeepReport {
    report.ms = performance.now() - started;
    return report;
  }

  private async checkpointIfDue(report: UpkeepReport, wal: WalState): Promise<void> {
    const age = Date.now() - wal.checkpointMs;
    if (
      !this.closed &&
      (wal.sinceCheckpoint >= CHECKPOINT_WAL_BYTES ||
        (wal.sinceCheckpoint > 0 && age >= CHECKPOINT_TIMEOUT_MS))
    ) {
      await this.timed(report, 'checkpoint', 'CHECKPOINT');
      report.checkpointedWalBytes = wal.sinceCheckpoint;
    }
  }

  private async timed(report: UpkeepReport, kind: UpkeepStatement, statement: string): Promise<void> {
    const started = performance.now();
    await this.pool.query(statement);
    const ms = performance.now() - started;
    report.steps.push({ statement, ms: Math.round(ms) });
    countingMetrics()?.embeddedUpkeep(kind, ms / 1000);
  }

  private async wal(): Promise<WalState> {
    const { rows } = await this.pool.query(WAL_SQL, [this.fullPassLsn]);
    const row = rows[0] ?? {};
    return {
      lsn: String(row.lsn),
      sincePass: Number(row.since_pass),
      sinceCheckpoint: Number(row.since_checkpoint),
      checkpointMs: Number(row.checkpoint_ms),
    };
  }

  private logged(report: UpkeepReport): void {
    if (this.failing) {
      this.failing = false;
      this.options.logger.info('embedded store upkeep works again');
    }
    if (report.steps.length === 0) return;
    this.options.logger.debug(
      {
        steps: report.steps,
        checkpoint_wal_bytes: report.checkpointedWalBytes,
        ms: Math.round(report.ms),
      },
      'embedded store upkeep',
    );
  }

  private failed(error: unknown): void {
    if (this.closed || this.failing) return;
    this.failing = true;
    this.options.logger.warn(
      { err: error },
      'embedded store upkeep (vacuum, checkpoint) failed; it is tried again every interval',
    );
  }
}
