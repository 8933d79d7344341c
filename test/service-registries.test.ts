/**
 * No process-wide registry: each worker runs the services of the registry it is given, service
 * modules register into the registry of the loader importing them, and a process-pool child
 * loads its services without the engine.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, TaskFailedError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/logger.js';
import { ServiceRegistry, registerService } from '../src/registry/registry.js';
import { loadServiceModules } from '../src/registry/service-loader.js';
import { BUILTIN_SOURCE } from '../src/services/builtin.js';
import { ProcessExecutor } from '../src/worker/process-pool.js';
import { startFakeAi } from './fake-ai/server.js';
import { PROBE_SERVICES, TestEnv } from './harness.js';

const LIGHT_SERVICES = fileURLToPath(new URL('./fixtures/light-services.mjs', import.meta.url));

describe('service modules', () => {
  it('register into the registry of the loader, again for a second one; not into any other', async () => {
    const first = new ServiceRegistry();
    const second = new ServiceRegistry();
    const untouched = new ServiceRegistry();
    await loadServiceModules([PROBE_SERVICES], first);
    // Evaluated once per process: the second load gets what the module registered the first time.
    await loadServiceModules([PROBE_SERVICES], second);
    for (const registry of [first, second]) {
      expect(registry.names()).toEqual(['test/fallback', 'test/limited', 'test/probe']);
      expect(registry.sources).toEqual([PROBE_SERVICES]);
    }
    expect(untouched.names()).toEqual([]);
  });

  it('refuse registerService outside a load, saying where services go instead', () => {
    expect(() => registerService('stray', 'service', { run: () => 1 })).toThrow(ConfigError);
    expect(() => registerService('stray', 'service', { run: () => 1 })).toThrow(
      /outside a services module being loaded.*ServiceRegistry/,
    );
  });
});

describe('two apps in one process', () => {
  const envs: TestEnv[] = [];
  afterEach(async () => {
    await Promise.all(envs.splice(0).map((env) => env.cleanup()));
  });

  it('each worker runs and lists only the services of its own registry', async () => {
    const [a, b] = await Promise.all([TestEnv.create('embedded'), TestEnv.create('embedded')]);
    envs.push(a!, b!);
    const own = (name: string) => {
      const registry = new ServiceRegistry();
      registry.register('own', name, { who: () => name });
      return registry;
    };
    const workerA = await a!.worker({ registry: own('a') });
    const workerB = await b!.worker({ registry: own('b') });
    const listed = (services: { mode: string; service: string }[] | undefined) =>
      (services ?? []).map((s) => `${s.mode}/${s.service}`);
    // Both loaded the probe services module; each lists its own service and not the other's.
    expect(listed(workerA.heartbeat().services)).toEqual([
      'own/a',
      'test/fallback',
      'test/limited',
      'test/probe',
    ]);
    expect(listed(workerB.heartbeat().services)).toEqual([
      'own/b',
      'test/fallback',
      'test/limited',
      'test/probe',
    ]);

    const appA = a!.app();
    const ran = await appA.executeTask.delay({ taskName: 'who', userId: 'u', mode: 'own', service: 'a' });
    expect((await ran.get({ timeout: 20 })).result).toBe('a');
    const other = await appA.executeTask.delay({ taskName: 'who', userId: 'u', mode: 'own', service: 'b' });
    const error = await other.get({ timeout: 20 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect((error as TaskFailedError).remote).toMatchObject({ type: 'ServiceNotFoundError' });
  });

  it("each worker's tasks call providers with its own settings, whoever started last", async () => {
    const fake = await startFakeAi();
    try {
      // The key only in one worker's config: with a process-wide setting, the last worker's would win.
      const [withKey, without] = await Promise.all([
        TestEnv.create('embedded', { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl }),
        TestEnv.create('embedded'),
      ]);
      envs.push(withKey!, without!);
      await withKey!.worker();
      await without!.worker();
      const chat = {
        taskName: 'chat',
        userId: 'u',
        mode: 'chat',
        service: 'llm_chat',
        inputData: { prompt: 'hi' },
      };
      const answered = await withKey!.app().executeTask.delay({ ...chat, context: { model: 'gpt-4o-mini' } });
      expect((await answered.get({ timeout: 20 })).status).toBe('completed');
      const refused = await without!.app().executeTask.delay({ ...chat, context: { model: 'gpt-4o-mini' } });
      const error = await refused.get({ timeout: 20 }).catch((e: unknown) => e);
      expect((error as TaskFailedError).remote).toMatchObject({ type: 'ProviderNotConfiguredError' });
    } finally {
      await fake.stop();
    }
  });
});

describe('a process-pool child', () => {
  it("loads a services module importing 'aiecs' without PGlite, zod, Fastify, socket.io or the engine", async () => {
    const pool = new ProcessExecutor({
      size: 1,
      maxTasksPerChild: 0,
      maxMemoryPerChildKiB: 0,
      services: [BUILTIN_SOURCE, LIGHT_SERVICES],
      logger: silentLogger,
    });
    try {
      const execution = await pool.start(
        {
          task_name: 'packages',
          user_id: 'u',
          task_id: 'light',
          step: 0,
          mode: 'test',
          service: 'loaded',
          input_data: {},
          context: {},
          options: { priority: 1 },
          submitted_at: Date.now(),
        },
        1,
        { progress: () => undefined, stream: () => undefined },
        silentLogger,
        { acquire: async () => () => undefined },
      );
      const outcome = await execution.outcome;
      expect(outcome).toMatchObject({ ok: true });
      const { packages, scripts } = (outcome as { result: { packages: string[]; scripts: number } }).result;
      // The probe saw the child's own code, so an empty list is not an inspector that saw nothing.
      expect(scripts).toBeGreaterThan(50);
      for (const heavy of [
        '@electric-sql/pglite',
        'zod',
        'fastify',
        'socket.io',
        'bullmq',
        'ioredis',
        'pg',
        'pino',
        'prom-client',
      ])
        expect(packages).not.toContain(heavy);
    } finally {
      await pool.close();
    }
  });
});
