/**
 * The PostgreSQL server of the sections that need one (history, postgres): which one, whether it
 * answers, and the removal of a side's schema. AIECS_BENCH_POSTGRES_URL, by default the test
 * suite's; it is not ours, so every side works in a schema of its own and drops it after.
 */
import pg from 'pg';

/** The server both the history and the postgres sections use: the test suite's by default. */
export const BENCH_POSTGRES_URL =
  process.env.AIECS_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** How long a server may take to answer before the section is skipped. */
const CONNECT_TIMEOUT_MS = 5_000;

/** The URL without its password, for lines on stderr. */
export function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

/**
 * Why PostgreSQL at `url` cannot be used (it does not answer, or refuses us), or undefined when
 * it answers a query.
 */
export async function postgresUnavailable(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // A failed connect may also emit 'error'; the rejection below says why.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return `PostgreSQL at ${redactPassword(url)} unavailable: ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Removes a side's schema and everything in it (its queues, and aiecs's tables beside them). */
export async function dropSchema(url: string, schema: string): Promise<void> {
  // Schema names come from the bench's own prefixes; quoted all the same.
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`not a bench schema name: ${schema}`);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
