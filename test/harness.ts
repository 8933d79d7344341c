import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { inject } from 'vitest';
import { loadConfig, type AiecsConfig } from '../src/core/config.js';
import type { TaskRequest } from '../src/core/task.js';
import { silentLogger } from '../src/core/logger.js';
import { AiecsApp } from '../src/engine/app.js';
import { openStore } from '../src/engine/open-store.js';
import type { Store, StoreKind } from '../src/engine/store.js';
import { ServiceRegistry } from '../src/registry/registry.js';
import { registerBuiltinServices } from '../src/services/builtin.js';
import { AiecsWorker, type WorkerOptions } from '../src/worker/worker.js';

export const STORE_KINDS: StoreKind[] = ['embedded', 'postgres', 'redis'];
export const PROBE_SERVICES = fileURLToPath(new URL('./fixtures/probe-services.mjs', import.meta.url));
const WORKER_PROCESS = fileURLToPath(new URL('./fixtures/worker-process.mjs', import.meta.url));
const EMBEDDED_PROCESS = fileURLToPath(new URL('./fixtures/embedded-process.mjs', import.meta.url));

/** Short limits so failure paths take milliseconds, not minutes. */
export const TEST_ENV: Record<string, string> = {
  AIECS_LOG_LEVEL: 'silent',
  AIECS_LOCK_DURATION_MS: '2000',
  AIECS_STALLED_INTERVAL_MS: '500',
  AIECS_RETRY_BACKOFF_MS: '50',
  AIECS_CANCEL_GRACE_MS: '300',
  AIECS_HEARTBEAT_INTERVAL_MS: '200',
  AIECS_SHUTDOWN_TIMEOUT_S: '5',
  CELERY_WORKER_CONCURRENCY: 'fast_tasks=20,heavy_tasks=2',
};

export function testConfig(overrides: Record<string, string> = {}): AiecsConfig {
  return loadConfig({ ...TEST_ENV, ...overrides });
}

let template: Promise<string> | undefined;

/** initdb takes seconds; a copy of a migrated, closed data directory takes milliseconds. */
function embeddedTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aiecs-template-'));
    const store = await openStore(`embedded:${dir}`, { logger: silentLogger });
    await store.close();
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  })();
  return template;
}

/**
 * One isolated deployment on one store: its own Redis prefix, PostgreSQL schema or embedded
 * directory. Everything it opens is closed and removed by `cleanup()`.
 */
export class TestEnv {
  private sharedStore: Store | undefined;
  private readonly apps: AiecsApp[] = [];
  private readonly workers: AiecsWorker[] = [];
  private readonly procs: ChildProcess[] = [];

  private constructor(
    readonly kind: StoreKind,
    readonly brokerUrl: string,
    readonly namespace: string,
    readonly config: AiecsConfig,
    private readonly dir?: string,
  ) {}

  static async create(kind: StoreKind, overrides: Record<string, string> = {}): Promise<TestEnv> {
    const namespace = `t_${randomBytes(5).toString('hex')}`;
    const config = testConfig(overrides);
    if (kind === 'embedded') {
      const dir = mkdtempSync(join(tmpdir(), 'aiecs-test-'));
      cpSync(await embeddedTemplate(), dir, { recursive: true });
      const env = new TestEnv(kind, `embedded:${dir}`, namespace, config, dir);
      env.sharedStore = await openStore(env.brokerUrl, { logger: silentLogger, role: 'worker' });
      return env;
    }
    const url = kind === 'redis' ? inject('redisUrl') : inject('postgresUrl');
    return new TestEnv(kind, url, namespace, config);
  }

  /** Whether separate processes can share this store (the embedded one belongs to one process). */
  get shared(): boolean {
    return this.kind !== 'embedded';
  }

  app(): AiecsApp {
    const app = new AiecsApp({
      broker: this.brokerUrl,
      namespace: this.namespace,
      config: this.config,
      logger: silentLogger,
      ...(this.sharedStore ? { store: this.sharedStore } : {}),
    });
    this.apps.push(app);
    return app;
  }

  async worker(options: Partial<WorkerOptions> = {}): Promise<AiecsWorker> {
    const worker = new AiecsWorker({
      broker: this.brokerUrl,
      namespace: this.namespace,
      config: this.config,
      logger: silentLogger,
      ...(this.sharedStore ? { store: this.sharedStore } : {}),
      // What `aiecs worker` runs: the built-in services, and the probe services by default.
      registry: registerBuiltinServices(new ServiceRegistry()),
      ...options,
      worker: { services: [PROBE_SERVICES], ...options.worker },
    });
    this.workers.push(worker);
    return worker.start();
  }

  /** A worker in its own process (shared stores only). Resolves once it consumes. */
  async workerProcess(
    env: Record<string, string> = {},
  ): Promise<{ proc: ChildProcess; id: string; output: () => string; errors: () => string }> {
    if (!this.shared) throw new Error('the embedded store cannot be shared between processes');
    const proc = spawn(process.execPath, [WORKER_PROCESS], {
      env: { ...process.env, ...TEST_ENV, BROKER: this.brokerUrl, NAMESPACE: this.namespace, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.procs.push(proc);
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const id = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker process did not start: ${err}`)), 30_000);
      proc.stdout!.on('data', () => {
        const m = /ready (\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`worker process exited with ${code}: ${err}`));
      });
    });
    return { proc, id, output: () => out, errors: () => err };
  }

  /**
   * A worker killed mid-run (shared stores): starts a worker process, calls `submit`, SIGKILLs the
   * process once `started` holds and starts an in-process worker to take over.
   */
  async killWorkerMidRun<H>(
    submit: () => Promise<H>,
    started: () => boolean,
  ): Promise<{ handle: H; victimPid: number }> {
    const victim = await this.workerProcess();
    const handle = await submit();
    await until(async () => started(), 20_000, 'the run to start');
    await killNow(victim.proc);
    await this.worker();
    return { handle, victimPid: victim.proc.pid! };
  }

  async cleanup(): Promise<void> {
    for (const proc of this.procs)
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await Promise.allSettled(this.workers.map((w) => w.close(1)));
    await Promise.allSettled(this.apps.map((a) => a.close()));
    await this.sharedStore?.close();
    if (this.kind === 'redis') {
      const redis = new Redis(this.brokerUrl);
      const keys = await redis.keys(`${this.namespace}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    } else if (this.kind === 'postgres') {
      const client = new pg.Client({ connectionString: this.brokerUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${this.namespace}" CASCADE`);
      await client.end();
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A request for the probe services (test/fixtures/probe-services.mjs). */
export const probe = (
  taskName: string,
  inputData: Record<string, unknown> = {},
  extra: Partial<TaskRequest> = {},
): TaskRequest => ({
  taskName,
  userId: 'user-1',
  mode: 'test',
  service: 'probe',
  inputData,
  ...extra,
});

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` returns a value (test helper: waiting on another process's effect). */
export async function until<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** SIGKILLs every process of `procs` still running, waits for each to exit, and empties the list. */
export async function killAll(procs: ChildProcess[]): Promise<void> {
  for (const proc of procs.splice(0))
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
    }
}

/** SIGKILLs `proc` and waits for it to exit. */
export async function killNow(proc: ChildProcess): Promise<void> {
  proc.kill('SIGKILL');
  await new Promise((r) => proc.once('exit', r));
}

/**
 * A worker killed mid-run on the embedded store, which belongs to one process: runs
 * fixtures/embedded-process.mjs on `broker` with `first` (it submits and works), SIGKILLs it once
 * `started` holds, runs it again on the same store with `then` (it works and waits), and returns
 * the JSON that run printed after `prefix` (`record`, `tree`). Both processes go in `procs`.
 */
export async function killEmbeddedMidRun<T>(
  procs: ChildProcess[],
  broker: string,
  first: Record<string, string>,
  started: () => boolean,
  then: Record<string, string>,
  prefix: string,
): Promise<{ value: T; victimPid: number }> {
  const victim = spawn(process.execPath, [EMBEDDED_PROCESS], {
    env: { ...process.env, ...TEST_ENV, BROKER: broker, ...first },
    stdio: 'ignore',
  });
  procs.push(victim);
  await until(async () => started(), 60_000, 'the run to start');
  await killNow(victim);
  const second = spawn(process.execPath, [EMBEDDED_PROCESS], {
    env: { ...process.env, ...TEST_ENV, BROKER: broker, ...then },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push(second);
  let out = '';
  second.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => second.once('exit', r));
  const line = out.split('\n').find((l) => l.startsWith(`${prefix} `));
  if (!line) throw new Error(`no "${prefix}" line from the restarted process: ${out}`);
  return { value: JSON.parse(line.slice(prefix.length + 1)) as T, victimPid: victim.pid! };
}
