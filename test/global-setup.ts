import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { freePort } from '../bench/lifecycle.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    postgresUrl: string;
  }
}

async function waitForRedis(port: number, proc: ChildProcess): Promise<void> {
  const { Redis } = await import('ioredis');
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
    const client = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch {
      client.disconnect();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('redis-server did not start');
}

/**
 * Starts a private redis-server for the run when one is on PATH (docs/design.md §6), else uses
 * AIECS_TEST_REDIS_URL; checks that PostgreSQL answers at AIECS_TEST_POSTGRES_URL.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let redis: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'aiecs-redis-'));
  let redisUrl = process.env.AIECS_TEST_REDIS_URL;
  if (!redisUrl) {
    const port = await freePort();
    redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      {
        stdio: 'ignore',
      },
    );
    const failed = new Promise<never>((_, reject) =>
      redis!.once('error', (e) =>
        reject(new Error(`cannot start redis-server (${e.message}); install it or set AIECS_TEST_REDIS_URL`)),
      ),
    );
    await Promise.race([waitForRedis(port, redis), failed]);
    redisUrl = `redis://127.0.0.1:${port}`;
  }
  const postgresUrl = process.env.AIECS_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const client = new pg.Client({ connectionString: postgresUrl });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${postgresUrl} (${(error as Error).message}); start it or set AIECS_TEST_POSTGRES_URL`,
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  project.provide('redisUrl', redisUrl);
  project.provide('postgresUrl', postgresUrl);
  return async () => {
    redis?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
}
