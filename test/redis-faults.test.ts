import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/logger.js';
import { AiecsApp } from '../src/engine/app.js';
import { openStore } from '../src/engine/open-store.js';
import { AiecsWorker } from '../src/worker/worker.js';
import { PROBE_SERVICES, testConfig, until } from './harness.js';
import { freePort } from '../bench/lifecycle.js';

/** A redis-server of this test's own, so it can be stopped and started again on the same port. */
class OwnRedis {
  proc: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'aiecs-fault-'));
  constructor(readonly port: number) {}
  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
      ],
      { stdio: 'ignore' },
    );
    const probe = await openStore(this.url, { logger: silentLogger }).catch(() => undefined);
    if (probe) return probe.close();
    await until(
      async () => {
        const store = await openStore(this.url, { logger: silentLogger }).catch(() => undefined);
        await store?.close();
        return store !== undefined;
      },
      10_000,
      'redis-server to start',
    );
  }
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    proc.kill('SIGKILL');
    await new Promise((r) => proc.once('exit', r));
  }
}

describe('Redis faults', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  // It rejects (after the connect timeout) instead of waiting for Redis forever.
  it('fails a producer fast when Redis is down at start', async () => {
    const port = await freePort();
    const error = await openStore(`redis://127.0.0.1:${port}`, {
      logger: silentLogger,
      role: 'producer',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
  });

  it('refuses submits while Redis is down, and the worker reconnects and serves when it is back', async () => {
    const redis = new OwnRedis(await freePort());
    cleanups.push(
      () => redis.stop(),
      async () => rmSync(redis.dir, { recursive: true, force: true }),
    );
    await redis.start();
    const config = testConfig();
    const worker = new AiecsWorker({
      broker: redis.url,
      namespace: 'fault',
      config,
      logger: silentLogger,
      worker: { services: [PROBE_SERVICES] },
    });
    await worker.start();
    const app = new AiecsApp({ broker: redis.url, namespace: 'fault', config, logger: silentLogger });
    cleanups.push(
      () => app.close(),
      () => worker.close(1),
    );
    const request = { taskName: 'echo', userId: 'u', mode: 'test', service: 'probe', inputData: { n: 1 } };
    expect((await (await app.executeTask.delay(request)).get({ timeout: 20 })).status).toBe('completed');

    await redis.stop();
    // The producer does not queue commands while Redis is away: the caller hears about it now.
    await expect(app.executeTask.delay(request)).rejects.toThrow();

    await redis.start();
    // Data did not survive (no persistence in this test), but the worker's connections came back.
    const again = await until(
      async () => app.executeTask.delay(request).catch(() => undefined),
      30_000,
      'producer to reconnect',
    );
    expect((await again.get({ timeout: 30 })).status).toBe('completed');
  });

  it('fixes where an event reader starts only once Redis is back, so nothing after ready is lost', async () => {
    const redis = new OwnRedis(await freePort());
    cleanups.push(
      () => redis.stop(),
      async () => rmSync(redis.dir, { recursive: true, force: true }),
    );
    await redis.start();
    const store = await openStore(redis.url, { logger: silentLogger, namespace: 'fault_events' });
    cleanups.push(() => store.close());
    const producer = store.createEventsProducer('fast_tasks');
    producer.on('error', () => undefined);
    cleanups.push(() => producer.close());
    await producer.publishEvent({ eventName: 'marker', n: 'before the outage' });

    await redis.stop();
    // Created while Redis is away: the stream's last entry cannot be read yet.
    const events = store.createQueueEvents('fast_tasks');
    events.on('error', () => undefined);
    cleanups.push(() => events.close());
    const seen: string[] = [];
    events.on('marker' as 'progress', (e: unknown) => seen.push((e as { n: string }).n));
    const ready = events.waitUntilReady();
    await redis.start();
    await ready;
    // Right after ready, as a caller would: the reader must already have its starting point.
    await until(
      async () =>
        producer.publishEvent({ eventName: 'marker', n: 'after ready' }).then(
          () => true,
          () => false,
        ),
      10_000,
      'the producer to reconnect',
    );
    await until(async () => seen.length > 0, 10_000, 'the event published right after ready');
    expect(seen).toEqual(['after ready']);
  });
});
