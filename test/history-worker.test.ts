// The task history's consumer in an `aiecs worker` process (src/engine/history/run-history.ts): a
// worker on Redis with AIECS_HISTORY_URL records its tasks, logs the consumer's lines as its own,
// stops it on SIGTERM, and refuses to start, with one clear line, on a history schema newer than
// it knows.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, it, inject } from 'vitest';
import { historyMigrations } from '../src/engine/history/history-db.js';
import { migrate } from '../src/engine/migrate.js';
import { TestEnv, killAll, until } from './harness.js';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../dist/cli/main.js');
const envs: TestEnv[] = [];
const procs: ChildProcess[] = [];
const schemas: string[] = [];

afterEach(async () => {
  await killAll(procs.splice(0));
  await Promise.allSettled(envs.splice(0).map((e) => e.cleanup()));
  if (schemas.length > 0) {
    const client = new pg.Client({ connectionString: inject('postgresUrl') });
    await client.connect();
    for (const schema of schemas.splice(0)) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  }
});

async function redisWithHistory() {
  const env = await TestEnv.create('redis', { AIECS_HISTORY_URL: inject('postgresUrl') });
  envs.push(env);
  schemas.push(env.namespace);
  return env;
}

function startWorker(env: TestEnv) {
  const child = spawn(
    process.execPath,
    [MAIN, 'worker', '--broker', inject('redisUrl'), '--namespace', env.namespace, '-Q', 'fast_tasks'],
    {
      env: {
        PATH: process.env.PATH,
        AIECS_HISTORY_URL: inject('postgresUrl'),
        AIECS_LOG_FORMAT: 'json',
        AIECS_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  procs.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, out, exited };
}

const logLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the task history consumer in an aiecs worker on Redis', () => {
  it('records a worker’s tasks, logs as the worker, and stops with it', async () => {
    const env = await redisWithHistory();
    const { child, out, exited } = startWorker(env);
    await until(async () => out.stdout.includes('aiecs worker:'), 30_000, 'the ready line');
    // No "history off" line: it is on.
    expect(out.stdout).not.toMatch(/history off/);

    const app = env.app();
    const handles = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        app.executeTask.delay({
          taskName: 'analyze_text',
          userId: `u${i % 2}`,
          mode: 'chat',
          service: 'text_analyzer',
          inputData: { text: `good ${i}` },
        }),
      ),
    );
    await Promise.all(handles.map((h) => h.get({ timeout: 30 })));
    for (const h of handles) {
      await until(
        async () => (await app.history.task(h.id)).some((e) => e.status === 'completed'),
        30_000,
        `the history of ${h.id}`,
      );
      const kinds = (await app.history.task(h.id)).map((e) => e.kind);
      expect([kinds[0], kinds[1], kinds.at(-1)]).toEqual(['queued', 'running', 'completed']);
    }

    // The consumer's line, by the worker's logger: the worker process's line, its format.
    const active = logLines(out.stderr).find((l) => l.msg === 'task history consumer active');
    expect(active).toBeDefined();
    expect(active!.pid).toBe(child.pid);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 90_000);

  it('refuses to start on a history schema newer than it knows, in one line', async () => {
    const env = await redisWithHistory();
    const pool = new pg.Pool({ connectionString: inject('postgresUrl'), max: 1 });
    try {
      await pool.query(`CREATE SCHEMA IF NOT EXISTS "${env.namespace}"`);
      const known = historyMigrations();
      const next = { version: Math.max(...known.map((m) => m.version)) + 1, name: 'future', sql: 'SELECT 1' };
      await migrate(pool, env.namespace, [...known, next], { table: 'aiecs_history_migrations' });
    } finally {
      await pool.end();
    }
    const { out, exited } = startWorker(env);
    expect(await exited).not.toBe(0);
    expect(out.stderr).toMatch(/schema version \d+, newer than this aiecs knows/);
    expect(out.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
