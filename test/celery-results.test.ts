/**
 * The Celery results relay (issue 17): tasks carrying the bridge's Celery marker, read back with
 * Python's own `AsyncResult` on the Redis result backend (Debian's python3-celery), and the
 * relay's reliability: catching up after being down, and one write per result with two relays.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../src/core/logger.js';
import type { QueueKind } from '../src/core/task.js';
import type { AiecsApp } from '../src/engine/app.js';
import { openStore } from '../src/engine/open-store.js';
import type { Store } from '../src/engine/store.js';
import { startCeleryResults, type CeleryResults } from '../src/worker/celery/celery-results.js';
import { TestEnv, killAll, until } from './harness.js';
import { runPython } from './celery/python.js';
import { startCeleryWorker } from './celery/celery-worker.js';

/** This file's own Redis database for Celery's keys (Celery's keys are not namespaced). */
const BACKEND_DB = 12;

interface PyGet {
  result?: Record<string, unknown>;
  raised?: string;
  module?: string;
  args?: string[];
}
interface PyState {
  state: string;
  info: Record<string, unknown> | null;
  ready: boolean;
}

const pyGet = async (backend: string, id: string): Promise<PyGet> =>
  JSON.parse(await runPython('async_result.py', ['get', backend, id, '30'])) as PyGet;
const pyState = async (backend: string, id: string): Promise<PyState> =>
  JSON.parse(await runPython('async_result.py', ['state', backend, id])) as PyState;

// The relay follows the aiecs store's task events: a Redis store, and a PostgreSQL one (its
// Celery result backend is Redis either way).
describe.each(['redis', 'postgres'] as const)('Celery results relay on a %s store', (kind) => {
  let env: TestEnv;
  let store: Store;
  let app: AiecsApp;
  let backendUrl: string;
  let backend: Redis;
  const relays: CeleryResults[] = [];

  const relay = (options: { raiseFailures?: boolean; lockTtlMs?: number } = {}) => {
    const started = startCeleryResults({
      store,
      logger: silentLogger,
      backendUrl,
      expiresS: 600,
      raiseFailures: options.raiseFailures ?? false,
      lockTtlMs: options.lockTtlMs ?? 1_000,
      standbyPollMs: 100,
      retryMs: { min: 50, max: 500 },
    });
    relays.push(started);
    return started;
  };

  /** Submits a probe task as the bridge does: with the Celery marker; returns its Celery id. */
  const submit = async (
    taskName: string,
    input: Record<string, unknown> = {},
    options: Record<string, unknown> = {},
    queue: QueueKind = 'fast_tasks',
  ): Promise<string> => {
    const id = randomUUID();
    await app.submitWire({
      queue,
      request: {
        task_name: taskName,
        user_id: 'user-1',
        task_id: id,
        step: 1,
        mode: 'test',
        service: 'probe',
        input_data: input,
      },
      options,
      celery: { id },
    });
    return id;
  };

  const meta = async (id: string) => {
    const text = await backend.get(`celery-task-meta-${id}`);
    return text === null ? undefined : (JSON.parse(text) as Record<string, unknown>);
  };

  beforeEach(async () => {
    env = await TestEnv.create(kind);
    const url = new URL(inject('redisUrl'));
    url.pathname = `/${BACKEND_DB}`;
    backendUrl = url.toString();
    backend = new Redis(backendUrl);
    store = await openStore(env.brokerUrl, {
      namespace: env.namespace,
      logger: silentLogger,
      role: 'worker',
    });
    app = env.app();
    await env.worker();
  });

  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.close()));
    await store.close();
    await env.cleanup();
    backend.disconnect();
  });

  afterAll(async () => {
    const url = new URL(inject('redisUrl'));
    url.pathname = `/${BACKEND_DB}`;
    const client = new Redis(url.toString());
    await client.flushdb();
    client.disconnect();
  });

  it("writes a completed task as Celery's RedisBackend does, and AsyncResult.get() returns the original worker's body", async () => {
    relay();
    const id = await submit('echo', { text: 'hi' });
    const got = await pyGet(backendUrl, id);
    expect(got.result).toMatchObject({ status: 'completed', task: 'echo', result: { echo: { text: 'hi' } } });
    const stored = await meta(id);
    expect(Object.keys(stored!).sort()).toEqual(
      ['children', 'date_done', 'result', 'status', 'task_id', 'traceback'].sort(),
    );
    expect(stored).toMatchObject({ status: 'SUCCESS', task_id: id, traceback: null, children: [] });
    expect(stored!.date_done).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    const ttl = await backend.ttl(`celery-task-meta-${id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(600);
    const state = await pyState(backendUrl, id);
    expect(state).toMatchObject({ state: 'SUCCESS', ready: true });
  });

  it('by default a failure is a SUCCESS carrying {status: "failed", task, error}, as the original worker returned', async () => {
    relay();
    const id = await submit('fail', { message: 'went wrong' });
    const got = await pyGet(backendUrl, id);
    expect(got.raised).toBeUndefined();
    expect(got.result).toEqual({ status: 'failed', task: 'fail', error: 'went wrong' });
  });

  it('shows STARTED while a task runs and PROGRESS with the step in .info; a cancel ends it REVOKED with --celery-raise-failures', async () => {
    relay({ raiseFailures: true });
    const sleeping = await submit('sleep', { ms: 60_000 });
    await until(async () => (await meta(sleeping))?.status === 'STARTED', 20_000, 'STARTED');
    const started = await pyState(backendUrl, sleeping);
    expect(started).toMatchObject({ state: 'STARTED', ready: false });

    const stepping = await submit('progress_steps', { steps: 3, ms: 60_000 });
    await until(async () => (await meta(stepping))?.status === 'PROGRESS', 20_000, 'PROGRESS');
    const progress = await pyState(backendUrl, stepping);
    expect(progress.state).toBe('PROGRESS');
    expect(progress.ready).toBe(false);
    expect(progress.info).toMatchObject({
      status: 'running',
      task: 'progress_steps',
      step: 1,
      progress: 33,
      message: 'step 1/3',
    });

    await app.cancel(stepping);
    const got = await pyGet(backendUrl, stepping);
    expect(got.raised).toBe('TaskRevokedError');
    expect((await pyState(backendUrl, stepping)).state).toBe('REVOKED');
    await app.cancel(sleeping);
  });

  it("with --celery-raise-failures a failure raises in Python with the remote error's type name", async () => {
    relay({ raiseFailures: true });
    const typeError = await submit('fail', { message: 'boom here' });
    const invalid = await submit('fail', { validation: true });
    const [a, b] = await Promise.all([pyGet(backendUrl, typeError), pyGet(backendUrl, invalid)]);
    expect(a).toMatchObject({ raised: 'TypeError', args: ['boom here'] });
    expect(b.raised).toBe('ValidationError');
    expect(await meta(invalid)).toMatchObject({
      status: 'FAILURE',
      result: { exc_type: 'ValidationError', exc_module: 'aiecs.errors' },
    });
    expect(((await meta(invalid))!.result as { exc_message: unknown }).exc_message).toBeInstanceOf(Array);
    expect(typeof (await meta(typeError))!.traceback).toBe('string');
  });

  it('a timed-out task raises TimeLimitExceeded with --celery-raise-failures, and is {status: "timed_out"} without', async () => {
    relay({ raiseFailures: true });
    const id = await submit('sleep', { ms: 30_000 }, { soft_time_limit: 0.3, time_limit: 1 });
    const got = await pyGet(backendUrl, id);
    expect(got).toMatchObject({ raised: 'TimeLimitExceeded', module: 'billiard.exceptions' });
    await Promise.all(relays.splice(0).map((r) => r.close()));

    relay({ raiseFailures: false });
    const plain = await submit('sleep', { ms: 30_000 }, { soft_time_limit: 0.3, time_limit: 1 });
    expect((await pyGet(backendUrl, plain)).result).toMatchObject({ status: 'timed_out', task: 'sleep' });
  });

  it('a relay that was down catches up from its saved position', async () => {
    const first = relay();
    const before = await submit('echo', { n: 0 });
    await until(async () => (await meta(before))?.status === 'SUCCESS', 20_000, 'the first result');
    await first.close();
    const saved = await backend.get(`aiecs:celery:relay:${env.namespace}:fast_tasks`);
    // A stream id on Redis; PostgreSQL's event id, after its epoch when the stream was restarted.
    expect(saved).toMatch(kind === 'redis' ? /^\d+-\d+$/ : /^(\d+:)?\d+$/);
    // Gone (as if expired): a relay that read the stream from its start would write it again.
    await backend.del(`celery-task-meta-${before}`);

    const handles = await Promise.all([1, 2, 3].map((n) => submit('echo', { n })));
    // Ended while no relay ran: nothing written for them yet.
    await until(async () => {
      const records = await Promise.all(handles.map((id) => app.getTask(id, 'fast_tasks')));
      return records.every((r) => r?.status === 'completed');
    });
    for (const id of handles) expect(await meta(id)).toBeUndefined();

    const published: string[] = [];
    const subscriber = new Redis(backendUrl);
    subscriber.on('pmessage', (_p, channel: string) => published.push(channel));
    await subscriber.psubscribe('celery-task-meta-*');
    try {
      relay();
      const results = await Promise.all(handles.map((id) => pyGet(backendUrl, id)));
      results.forEach((r, n) =>
        expect(r.result).toMatchObject({ status: 'completed', result: { echo: { n: n + 1 } } }),
      );
      // The task before the outage is not read again: its position was saved.
      expect(published).not.toContain(`celery-task-meta-${before}`);
      expect(await meta(before)).toBeUndefined();
      expect(await backend.get(`aiecs:celery:relay:${env.namespace}:fast_tasks`)).not.toBe(saved);
    } finally {
      subscriber.disconnect();
    }
  });

  it('with two relays one is active, each result is published once, and the other takes over when it goes', async () => {
    const published = new Map<string, string[]>();
    const subscriber = new Redis(backendUrl);
    subscriber.on('pmessage', (_p, channel: string, message: string) => {
      const list = published.get(channel) ?? [];
      list.push((JSON.parse(message) as { status: string }).status);
      published.set(channel, list);
    });
    await subscriber.psubscribe('celery-task-meta-*');
    try {
      const a = relay();
      const b = relay();
      await until(
        async () =>
          (a.state === 'active' && b.state === 'standby') || (b.state === 'active' && a.state === 'standby'),
      );
      const ids = await Promise.all(Array.from({ length: 20 }, (_, n) => submit('echo', { n })));
      // The meta key is read on another connection than the subscriber's: its message may come after.
      const heard = (id: string) => async () =>
        published.get(`celery-task-meta-${id}`)?.includes('SUCCESS') ?? false;
      await Promise.all(ids.map((id) => until(async () => (await meta(id))?.status === 'SUCCESS')));
      await Promise.all(ids.map((id) => until(heard(id))));
      for (const id of ids)
        expect(published.get(`celery-task-meta-${id}`)?.filter((s) => s === 'SUCCESS')).toEqual(['SUCCESS']);

      const [active, standby] = a.state === 'active' ? [a, b] : [b, a];
      await active.close();
      await until(async () => standby.state === 'active', 20_000, 'the standby relay to take over');
      const after = await submit('echo', { n: 'after' });
      expect((await pyGet(backendUrl, after)).result).toMatchObject({ status: 'completed' });
      await until(heard(after));
      expect(published.get(`celery-task-meta-${after}`)?.filter((s) => s === 'SUCCESS')).toEqual(['SUCCESS']);
      // The takeover read from the saved position: no result before it was published again.
      for (const id of ids)
        expect(published.get(`celery-task-meta-${id}`)?.filter((s) => s === 'SUCCESS')).toEqual(['SUCCESS']);
    } finally {
      subscriber.disconnect();
    }
  });

  it('through `aiecs worker --celery --celery-raise-failures`: a Python producer .get()s results and failures raise', async () => {
    // Celery's lists and results in this file's database, as a Celery app with one URL has them.
    await backend.flushdb();
    const procs: ChildProcess[] = [];
    try {
      const worker = await startCeleryWorker({
        brokerUrl: env.brokerUrl,
        namespace: env.namespace,
        celeryUrl: backendUrl,
        args: ['--celery-result-expires', '120', '--celery-raise-failures'],
        ready: [/celery results: /],
        procs,
      });
      const out = worker.output();
      expect(out).toMatch(/celery results: redis:\/\/.*\/12 \(kept 120 s, failures raise\)/);
      const call = (taskName: string, input: Record<string, unknown>) => ({
        name: 'aiecs.tasks.worker.execute_task',
        args: [taskName, 'user-1', null, 0, 'test', 'probe', input, {}],
      });
      const ids = JSON.parse(
        await runPython('produce.py', [
          backendUrl,
          JSON.stringify([call('echo', { e: 1 }), call('fail', {})]),
        ]),
      ) as string[];
      const [ok, failed] = await Promise.all(ids.map((id) => pyGet(backendUrl, id)));
      expect(ok!.result).toMatchObject({ status: 'completed', task: 'echo', result: { echo: { e: 1 } } });
      expect(failed!.raised).toBe('TypeError');
      const ttl = await backend.ttl(`celery-task-meta-${ids[0]}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(120);
    } finally {
      await killAll(procs);
    }
  });
});
