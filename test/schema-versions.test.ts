// Schema versions (issue 14 §5): our PostgreSQL and PGlite tables come from numbered migrations
// recorded in aiecs_migrations, applied once under a lock; our Redis keys carry a version key.
// A store a newer aiecs wrote is refused at start with SCHEMA_TOO_NEW, on every store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { SchemaTooNewError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/logger.js';
import { bundledMigrations, migrate, type Migration } from '../src/engine/migrate.js';
import { openStore } from '../src/engine/open-store.js';
import { openMigratedPglite } from '../src/engine/pglite-pool.js';
import { REDIS_SCHEMA_VERSION, schemaKey } from '../src/engine/redis-schema.js';
import { TestEnv } from './harness.js';

const envs: TestEnv[] = [];
const pools: pg.Pool[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.allSettled(pools.splice(0).map((p) => p.end()));
  await Promise.allSettled(envs.splice(0).map((e) => e.cleanup()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function postgres(): Promise<{ env: TestEnv; pool: pg.Pool }> {
  const env = await TestEnv.create('postgres');
  envs.push(env);
  const pool = new pg.Pool({ connectionString: env.brokerUrl, max: 2 });
  pools.push(pool);
  return { env, pool };
}

const versions = async (pool: pg.Pool, schema: string) =>
  (await pool.query(`SELECT version FROM "${schema}".aiecs_migrations ORDER BY version`)).rows.map((r) =>
    Number(r.version),
  );

const latest = () => Math.max(...bundledMigrations().map((m) => m.version));

/** A later release's migration: not idempotent, so running it twice would fail or count twice. */
const next = (version: number): Migration => ({
  version,
  name: 'test-once',
  sql: 'CREATE TABLE :"schema".aiecs_test_once (n integer NOT NULL); INSERT INTO :"schema".aiecs_test_once VALUES (1);',
});

describe('PostgreSQL migrations', () => {
  it('numbers the bundled migrations from 001 without gaps, first of all the tables of 001', () => {
    const bundled = bundledMigrations();
    expect(bundled.map((m) => m.version)).toEqual(bundled.map((_, i) => i + 1));
    expect(bundled[0]?.sql).toMatch(/CREATE TABLE IF NOT EXISTS :"schema"\.aiecs_task_index/);
  });

  it('a store opened at version N is brought to N+1 by code that knows N+1, once', async () => {
    const { env, pool } = await postgres();
    const store = await openStore(env.brokerUrl, { namespace: env.namespace, logger: silentLogger });
    await store.close();
    const n = latest();
    expect(await versions(pool, env.namespace)).toEqual(bundledMigrations().map((m) => m.version));

    const newer = [...bundledMigrations(), next(n + 1)];
    expect(await migrate(pool, env.namespace, newer)).toEqual([n + 1]);
    expect(await migrate(pool, env.namespace, newer)).toEqual([]);
    expect(await versions(pool, env.namespace)).toContain(n + 1);
    const rows = await pool.query(`SELECT count(*)::int AS n FROM "${env.namespace}".aiecs_test_once`);
    expect(rows.rows[0].n).toBe(1);
  });

  it('upgrades a store made before migrations (the tables, no aiecs_migrations), keeping its rows', async () => {
    const { env, pool } = await postgres();
    const schema = env.namespace;
    await pool.query(`CREATE SCHEMA "${schema}"`);
    await pool.query(bundledMigrations()[0]!.sql.replaceAll(':"schema"', `"${schema}"`));
    await pool.query(
      `INSERT INTO "${schema}".aiecs_task_index (task_id, user_id, queue, created_at_ms) VALUES ('t1', 'u1', 'fast_tasks', 1)`,
    );
    const store = await openStore(env.brokerUrl, { namespace: schema, logger: silentLogger });
    try {
      expect((await store.listTasks('u1', 10)).items.map((t) => t.task_id)).toEqual(['t1']);
    } finally {
      await store.close();
    }
    expect(await versions(pool, schema)).toEqual(bundledMigrations().map((m) => m.version));
  });

  it('stores starting at once on a fresh schema migrate it once; the others wait and find it done', async () => {
    const { env } = await postgres();
    const starters = Array.from({ length: 4 }, () => {
      const pool = new pg.Pool({ connectionString: env.brokerUrl, max: 1 });
      pools.push(pool);
      return pool;
    });
    const migrations = [...bundledMigrations(), next(latest() + 1)];
    const applied = await Promise.all(starters.map((pool) => migrate(pool, env.namespace, migrations)));
    expect(applied.filter((a) => a.length > 0)).toEqual([migrations.map((m) => m.version)]);
    const check = starters[0]!;
    const rows = await check.query(`SELECT count(*)::int AS n FROM "${env.namespace}".aiecs_test_once`);
    expect(rows.rows[0].n).toBe(1);

    // Through openStore too: two stores opened together on another fresh schema both open.
    const other = await postgres();
    const opened = await Promise.all(
      [0, 1].map(() =>
        openStore(other.env.brokerUrl, { namespace: other.env.namespace, logger: silentLogger }),
      ),
    );
    await Promise.all(opened.map((s) => s.close()));
    expect(await versions(other.pool, other.env.namespace)).toEqual(
      bundledMigrations().map((m) => m.version),
    );
  });

  it('refuses a schema a newer aiecs migrated further, naming both versions', async () => {
    const { env, pool } = await postgres();
    const store = await openStore(env.brokerUrl, { namespace: env.namespace, logger: silentLogger });
    await store.close();
    const newer = latest() + 5;
    await pool.query(
      `INSERT INTO "${env.namespace}".aiecs_migrations (version, name) VALUES ($1, 'future')`,
      [newer],
    );
    const refused = await openStore(env.brokerUrl, { namespace: env.namespace, logger: silentLogger }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(SchemaTooNewError);
    expect((refused as SchemaTooNewError).code).toBe('SCHEMA_TOO_NEW');
    expect((refused as Error).message).toContain(`schema version ${newer}`);
    expect((refused as Error).message).toContain(`(${latest()})`);
    expect((refused as Error).message).toMatch(/upgrade aiecs/);
  });
});

describe('embedded store', () => {
  it('records its migrations in PGlite and refuses a newer schema', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aiecs-schema-'));
    dirs.push(dir);
    const store = await openStore(`embedded:${dir}`, { logger: silentLogger });
    await store.close();

    const { db } = await openMigratedPglite(join(dir, 'pgdata'));
    try {
      const { rows } = await db.query<{ version: number }>(
        'SELECT version FROM bullmq.aiecs_migrations ORDER BY version',
      );
      expect(rows.map((r) => r.version)).toEqual(bundledMigrations().map((m) => m.version));
      await db.query(`INSERT INTO bullmq.aiecs_migrations (version, name) VALUES ($1, 'future')`, [
        latest() + 1,
      ]);
    } finally {
      await db.close();
    }

    const refused = await openStore(`embedded:${dir}`, { logger: silentLogger }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(SchemaTooNewError);
    expect((refused as Error).message).toContain(`schema version ${latest() + 1}`);
    // The refusal let go of the directory: a store that knows the version could open it.
    const { db: again } = await openMigratedPglite(join(dir, 'pgdata'));
    await again.close();
  });
});

describe('Redis', () => {
  it('stamps the version key when absent, keeps it, and refuses a newer one', async () => {
    const env = await TestEnv.create('redis');
    envs.push(env);
    const redis = new Redis(env.brokerUrl);
    try {
      const key = schemaKey(env.namespace);
      expect(await redis.get(key)).toBeNull();
      const store = await openStore(env.brokerUrl, { namespace: env.namespace, logger: silentLogger });
      await store.close();
      expect(await redis.get(key)).toBe(String(REDIS_SCHEMA_VERSION));

      await redis.set(key, String(REDIS_SCHEMA_VERSION + 1));
      const refused = await openStore(env.brokerUrl, { namespace: env.namespace, logger: silentLogger }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(SchemaTooNewError);
      expect((refused as SchemaTooNewError).code).toBe('SCHEMA_TOO_NEW');
      expect((refused as Error).message).toContain(`Redis prefix ${env.namespace}`);
      // Refusing changed nothing.
      expect(await redis.get(key)).toBe(String(REDIS_SCHEMA_VERSION + 1));
    } finally {
      redis.disconnect();
    }
  });
});
