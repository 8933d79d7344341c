/**
 * Numbered migrations of the tables aiecs keeps on PostgreSQL and PGlite (BullMQ migrates its own):
 * `migrations/NNN-name.sql`, applied in order at start and recorded in `aiecs_migrations`, as
 * graphile-worker and pg-boss do. A new table or column is a new file, never an edit of an old one.
 */
import { readdirSync } from 'node:fs';
import { SchemaTooNewError } from '../core/errors.js';
import { readScript } from '../core/script-files.js';
import { quoteSchemaName } from './bullmq.js';

export interface Migration {
  version: number;
  name: string;
  /** The statements, with `:"schema"` standing for the store's schema, quoted. */
  sql: string;
}

/** The part of a pg (or PGlite) pool a migration needs: one session for the transaction. */
export interface MigrationPool {
  connect(): Promise<{
    query(text: string, params?: readonly unknown[]): Promise<unknown>;
    release(): void;
  }>;
}

const FILE = /^(\d{3})-([a-z0-9-]+)\.sql$/;
const DIR = new URL('./migrations/', import.meta.url);

let bundled: Migration[] | undefined;

/** The `NNN-name.sql` files of a folder (`dir` ends with `/`), in version order. */
export function loadMigrations(dir: URL): Migration[] {
  return readdirSync(dir)
    .flatMap((file) => {
      const m = FILE.exec(file);
      return m ? [{ version: Number(m[1]), name: m[2]!, sql: readScript(file, dir.href) }] : [];
    })
    .sort((a, b) => a.version - b.version);
}

/** The migrations shipped with this aiecs (copied next to the compiled code by the build). */
export function bundledMigrations(): Migration[] {
  bundled ??= loadMigrations(DIR);
  return bundled;
}

/** Which set of migrations: its version table, and what a refusal calls the schema. */
export interface MigrationSet {
  /** Default `aiecs_migrations`; another set (the task history) keeps its own. */
  table?: string;
  /** Default `the PostgreSQL schema <schema>`. */
  describe?: (schema: string) => string;
}

/**
 * Brings `schema` to the last of `migrations`, in one transaction with their version rows.
 * Under a transaction-scoped advisory lock per schema: processes that start together wait for
 * the first, then find nothing left to do. Refuses a schema a newer aiecs migrated further.
 * Resolves to the versions it applied.
 */
export async function migrate(
  pool: MigrationPool,
  schema: string,
  migrations: readonly Migration[] = bundledMigrations(),
  set: MigrationSet = {},
): Promise<number[]> {
  const quoted = quoteSchemaName(schema);
  const table = set.table ?? 'aiecs_migrations';
  const known = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  const client = await pool.connect();
  // pg emits a dropped connection on a checked-out client as well as failing its query: unheard,
  // that event would crash the process (the history database may go away while it migrates).
  (client as { on?: (event: string, listener: () => void) => unknown }).on?.('error', () => undefined);
  try {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
        table === 'aiecs_migrations' ? `aiecs:migrate:${schema}` : `aiecs:migrate:${schema}:${table}`,
      ]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${quoted}.${table} (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const result = (await client.query(
        `SELECT coalesce(max(version), 0) AS version FROM ${quoted}.${table}`,
      )) as { rows: Array<{ version: unknown }> };
      const current = Number(result.rows[0]?.version ?? 0);
      if (current > known)
        throw new SchemaTooNewError(
          set.describe?.(schema) ?? `the PostgreSQL schema ${schema}`,
          current,
          known,
        );
      const applied: number[] = [];
      for (const migration of migrations) {
        if (migration.version <= current) continue;
        await client.query(migration.sql.replaceAll(':"schema"', quoted));
        await client.query(`INSERT INTO ${quoted}.${table} (version, name) VALUES ($1, $2)`, [
          migration.version,
          migration.name,
        ]);
        applied.push(migration.version);
      }
      await client.query('COMMIT');
      return applied;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } finally {
    client.release();
  }
}
