import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './lifecycle.js';
import { BENCH_POSTGRES_URL, dropSchema, postgresUnavailable, redactPassword } from './postgres-server.js';

describe("the bench's PostgreSQL server", () => {
  const schema = `bench_pgtest_${process.pid}`;
  const client = new pg.Client({ connectionString: BENCH_POSTGRES_URL });
  afterAll(async () => {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await client.end();
  });

  it('answers at the test URL, and a port nothing listens on is a reason to skip', async () => {
    expect(await postgresUnavailable(BENCH_POSTGRES_URL)).toBeUndefined();
    const port = await freePort();
    const why = await postgresUnavailable(`postgres://postgres:secret@127.0.0.1:${port}/test`);
    expect(why).toMatch(
      new RegExp(`^PostgreSQL at postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${port}/test unavailable: `),
    );
    expect(why).not.toContain('secret');
  });

  it("drops a side's schema with what is in it, and refuses a name it did not make", async () => {
    await client.connect();
    await client.query(`CREATE SCHEMA "${schema}"`);
    await client.query(`CREATE TABLE "${schema}".t (x int)`);
    await dropSchema(BENCH_POSTGRES_URL, schema);
    const { rows } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    expect(rows).toEqual([]);
    await expect(dropSchema(BENCH_POSTGRES_URL, 'x"; DROP TABLE y; --')).rejects.toThrow(
      /not a bench schema/,
    );
  });

  it('hides only the password of a URL', () => {
    expect(redactPassword('postgres://u:pw@h:5432/db')).toBe('postgres://u:***@h:5432/db');
    expect(redactPassword('postgres://u@h/db')).toBe('postgres://u@h/db');
  });
});
