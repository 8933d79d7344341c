import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/core/config.js';
import { silentLogger, type Logger } from '../src/core/logger.js';
import { disableMetrics, enableMetrics } from '../src/core/metrics.js';
import { openStore } from '../src/engine/open-store.js';
import { openMigratedPglite, type PglitePool } from '../src/engine/pglite-pool.js';
import { PgliteUpkeep, dueFor, type UpkeepPool } from '../src/engine/pglite-upkeep.js';
import { until } from './harness.js';

const SCHEMA = 'bullmq';
let dir: string;
let db: PGlite;
let pool: PglitePool;

/** The pool, counting the statements that go through it. */
function counted(): UpkeepPool & { statements: string[] } {
  const statements: string[] = [];
  return {
    statements,
    query: (text, params) => {
      statements.push(text);
      return pool.query(text, params);
    },
  };
}

async function tableStats(table: string) {
  // This backend's counts reach the statistics at the end of its next transaction, not at once.
  await pool.query('SELECT pg_stat_force_next_flush()');
  const { rows } = await pool.query<{ dead: number; last_vacuum: Date | null; last_analyze: Date | null }>(
    `SELECT n_dead_tup::int AS dead, last_vacuum, last_analyze FROM pg_stat_user_tables
     WHERE schemaname = $1 AND relname = $2`,
    [SCHEMA, table],
  );
  return rows[0]!;
}

/** Rows inserted, then most of them deleted: dead row versions only a vacuum reclaims. */
async function churn(table: string, rows: number, keep: number): Promise<void> {
  const name = `${SCHEMA}."${table.replaceAll('"', '""')}"`;
  await pool.query(`CREATE TABLE IF NOT EXISTS ${name} (id int, pad text)`);
  await pool.query(`INSERT INTO ${name} SELECT g, repeat('x', 100) FROM generate_series(1, $1) g`, [rows]);
  await pool.query(`DELETE FROM ${name} WHERE id > $1`, [keep]);
}

async function walSinceCheckpoint(): Promise<number> {
  const { rows } = await pool.query<{ bytes: number }>(
    'SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), redo_lsn)::float8 AS bytes FROM pg_control_checkpoint()',
  );
  return rows[0]!.bytes;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiecs-upkeep-'));
  ({ db, pool } = await openMigratedPglite(join(dir, 'pgdata')));
}, 120_000);

afterAll(async () => {
  await pool?.end();
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('dueFor: PostgreSQL autovacuum default thresholds', () => {
  const table = { relname: 't', live: 1_000, dead: 0, insertedSinceVacuum: 0, changedSinceAnalyze: 0 };
  it('vacuums past 50 + 20 % dead rows, or 1,000 + 20 % inserted ones', () => {
    expect(dueFor({ ...table, dead: 250 }).vacuum).toBe(false);
    expect(dueFor({ ...table, dead: 251 }).vacuum).toBe(true);
    expect(dueFor({ ...table, insertedSinceVacuum: 1_200 }).vacuum).toBe(false);
    expect(dueFor({ ...table, insertedSinceVacuum: 1_201 }).vacuum).toBe(true);
  });
  it('analyzes past 50 + 10 % changed rows', () => {
    expect(dueFor({ ...table, changedSinceAnalyze: 150 }).analyze).toBe(false);
    expect(dueFor({ ...table, changedSinceAnalyze: 151 }).analyze).toBe(true);
  });
});

describe('PgliteUpkeep when the store fails', () => {
  it('warns once while passes fail, says when they work again, and keeps passing', async () => {
    let failing = true;
    let walQueries = 0;
    const pool: UpkeepPool = {
      query: async (text) => {
        if (failing) throw new Error('store unavailable');
        if (text.includes('pg_current_wal_insert_lsn')) {
          walQueries++;
          return { rows: [{ lsn: '0/1', since_checkpoint: 0, checkpoint_ms: Date.now() }] };
        }
        return { rows: [] };
      },
    };
    const logger = { warn: vi.fn(), info: vi.fn(), debug: vi.fn() };
    const upkeep = new PgliteUpkeep(pool, {
      schema: SCHEMA,
      logger: logger as unknown as Logger,
      intervalMs: 5,
    }).start();
    await until(async () => (logger.warn.mock.calls.length > 0 ? true : undefined), 5_000, 'a warning');
    await new Promise((r) => setTimeout(r, 50));
    expect(logger.warn).toHaveBeenCalledTimes(1);
    failing = false;
    await until(async () => (walQueries >= 3 ? true : undefined), 5_000, 'passes after the failure');
    expect(logger.info).toHaveBeenCalledWith('embedded store upkeep works again');
    expect(logger.warn).toHaveBeenCalledTimes(1);
    await upkeep.close();
    const after = walQueries;
    await new Promise((r) => setTimeout(r, 50));
    expect(walQueries).toBe(after);
  });
});

describe('PgliteUpkeep on PGlite', () => {
  it('vacuums and analyzes a table with dead rows, then an idle pass is one query', async () => {
    await churn('churned', 5_000, 1_000);
    expect((await tableStats('churned')).dead).toBeGreaterThanOrEqual(4_000);
    const counting = counted();
    const upkeep = new PgliteUpkeep(counting, { schema: SCHEMA, logger: silentLogger });
    const metrics = enableMetrics();
    let exposition: string;
    try {
      const report = await upkeep.runOnce();
      expect(report.vacuumed).toContain('churned');
      expect(report.analyzed).toContain('churned');
      exposition = await metrics.registry.metrics();
    } finally {
      disableMetrics();
    }
    // Each statement's time, by kind, where the process serves metrics.
    expect(exposition).toMatch(/^aiecs_embedded_upkeep_seconds_count\{statement="vacuum"\} [1-9]/m);
    expect(exposition).toMatch(/^aiecs_embedded_upkeep_seconds_count\{statement="analyze"\} [1-9]/m);
    const after = await tableStats('churned');
    expect(after.dead).toBe(0);
    expect(after.last_vacuum).not.toBeNull();
    expect(after.last_analyze).not.toBeNull();

    // Nothing written since: the log's position alone says so.
    counting.statements.length = 0;
    const idle = await upkeep.runOnce();
    expect(idle).toMatchObject({ vacuumed: [], analyzed: [], steps: [] });
    expect(idle.checkpointedWalBytes).toBeUndefined();
    expect(counting.statements).toHaveLength(1);

    // A little written (an idle `aiecs up`'s heartbeats): still one query, though a small table
    // is past its threshold; it is vacuumed once 256 KiB of log were written since the full pass.
    await churn('trickle', 200, 10);
    counting.statements.length = 0;
    const small = await upkeep.runOnce();
    expect(small).toMatchObject({ vacuumed: [], analyzed: [], steps: [] });
    expect(counting.statements).toHaveLength(1);
    expect((await tableStats('trickle')).dead).toBeGreaterThan(150);
    await churn('bulk', 3_000, 3_000);
    const full = await upkeep.runOnce();
    expect(full.vacuumed).toContain('trickle');
    expect((await tableStats('trickle')).dead).toBe(0);
    await upkeep.close();
  });

  it('takes a checkpoint once a WAL segment was written since the last, so the log stops growing', async () => {
    const upkeep = new PgliteUpkeep(pool, { schema: SCHEMA, logger: silentLogger });
    await upkeep.runOnce();
    // About 20 MB of log: rows written, then rewritten.
    await churn('walled', 60_000, 60_000);
    await pool.query(`UPDATE ${SCHEMA}.walled SET pad = repeat('y', 100)`);
    expect(await walSinceCheckpoint()).toBeGreaterThan(16 * 1024 * 1024);
    const report = await upkeep.runOnce();
    expect(report.checkpointedWalBytes).toBeGreaterThan(16 * 1024 * 1024);
    expect(report.vacuumed).toContain('walled');
    expect(await walSinceCheckpoint()).toBeLessThan(1024 * 1024);
    await upkeep.close();
  }, 60_000);

  it('passes on its own every interval until closed, and quotes any table name', async () => {
    const upkeep = new PgliteUpkeep(pool, { schema: SCHEMA, logger: silentLogger, intervalMs: 20 }).start();
    await churn('odd "name"', 2_000, 100);
    await until(
      async () => ((await tableStats('odd "name"')).dead === 0 ? true : undefined),
      30_000,
      'a vacuum',
    );
    await upkeep.close();
    // Closed: no pass runs after, so nothing reclaims these.
    await churn('after close', 2_000, 100);
    await new Promise((r) => setTimeout(r, 200));
    expect((await tableStats('after close')).dead).toBeGreaterThan(1_000);
  }, 60_000);
});

describe('the embedded store', () => {
  it('runs the upkeep every AIECS_EMBEDDED_UPKEEP_INTERVAL_S while it is open', async () => {
    expect(loadConfig({}).embeddedUpkeepIntervalMs).toBe(15_000);
    expect(loadConfig({ AIECS_EMBEDDED_UPKEEP_INTERVAL_S: '2' }).embeddedUpkeepIntervalMs).toBe(2_000);
    expect(() => loadConfig({ AIECS_EMBEDDED_UPKEEP_INTERVAL_S: '0' })).toThrow(
      /AIECS_EMBEDDED_UPKEEP_INTERVAL_S/,
    );
    const storeDir = join(dir, 'store');
    const store = await openStore(`embedded:${storeDir}`, { logger: silentLogger, upkeepIntervalMs: 50 });
    try {
      const database = store.database;
      if (!database || !('pool' in database)) throw new Error('the embedded store has no pool');
      const sql = database.pool;
      await sql.query(`CREATE TABLE ${SCHEMA}.kept (id int, pad text)`);
      await sql.query(
        `INSERT INTO ${SCHEMA}.kept SELECT g, repeat('x', 100) FROM generate_series(1, 3000) g`,
      );
      await sql.query(`DELETE FROM ${SCHEMA}.kept WHERE id > 100`);
      await until(
        async () => {
          const { rows } = await sql.query(
            `SELECT last_vacuum FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'kept'`,
            [SCHEMA],
          );
          return rows[0]?.last_vacuum ? true : undefined;
        },
        30_000,
        "the store's own vacuum",
      );
    } finally {
      await store.close();
    }
  }, 120_000);
});
