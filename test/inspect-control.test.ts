/**
 * Celery's inspect, control, purge and events verbs: over the control channel on every store,
 * from the CLI against two worker processes on Redis (one of them killed), through the gateway's
 * admin endpoints, and from the CLI against `aiecs up` on the embedded store. Needs the build.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeAction } from '../src/cli/purge.js';
import { Admin, type QueueAnswers, type WorkerAnswers } from '../src/engine/admin.js';
import type { AiecsApp } from '../src/engine/app.js';
import { ReplyAssembler, decodeReplyPart, encodeReply } from '../src/engine/control.js';
import type { Store } from '../src/engine/store.js';
import type { AiecsWorker } from '../src/worker/worker.js';
import { GatewayEnv, token, type Api } from './gateway-harness.js';
import { PROBE_SERVICES, STORE_KINDS, TestEnv, probe, until } from './harness.js';

const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
/**
 * How long workers get to answer. A request ends as soon as every live worker has answered, so
 * only those that wait on a dead worker take all of it: room for a loaded machine costs little.
 */
const WAIT_MS = 3_000;
const WAIT = ['--timeout', String(WAIT_MS / 1000)];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without the store, log or secret settings of whoever runs the tests. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of [
    'AIECS_BROKER_URL',
    'CELERY_BROKER_URL',
    'REDIS_URL',
    'AIECS_LOG_LEVEL',
    'AIECS_LOG_FORMAT',
    'AIECS_JWT_SECRET',
    'AIECS_JWKS_URL',
  ])
    delete env[name];
  return env;
}

/** Runs the built CLI; a verb that waited on a dead worker for good would be killed and fail here. */
function aiecs(args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { env: cleanEnv(), timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

/** `aiecs events` running until stopped, with what it printed so far. */
async function followEvents(
  args: string[],
): Promise<{ proc: ChildProcess; out: () => string; stop: () => Promise<number | null> }> {
  const proc = spawn(process.execPath, [MAIN, 'events', ...args], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await until(async () => err.includes('following'), 60_000, `aiecs events to start (${err})`);
  return {
    proc,
    out: () => out,
    stop: async () => {
      proc.kill('SIGINT');
      return exited;
    },
  };
}

describe('reply messages', () => {
  it('cut a reply over the store limit into parts that join again in any order', () => {
    // Past NOTIFY's 8000 bytes, with characters that escape or take several UTF-8 bytes.
    const data = { text: 'é"\\\n😀'.repeat(3000) };
    const messages = encodeReply('req1', 'w1', { ok: true, data }, 7_900);
    expect(messages.length).toBeGreaterThan(1);
    for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(7_900);
    const assembler = new ReplyAssembler();
    const parts = messages.map((m) => decodeReplyPart(m)!).reverse();
    const results = parts.map((p) => assembler.add(p));
    expect(results.slice(0, -1).every((r) => r === undefined)).toBe(true);
    expect(results.at(-1)).toEqual({ ok: true, data });
  });
});

/** A heartbeat for a worker that died without a word: live by the store, silent on the channel. */
async function ghost(store: Store, like: AiecsWorker, id: string): Promise<void> {
  await store.putHeartbeat({ ...like.heartbeat(), id }, 60_000);
}

describe.each(STORE_KINDS)('inspect and control over the %s store', (kind) => {
  let env: TestEnv;
  let app: AiecsApp;
  let store: Store;
  let admin: Admin;
  let one: AiecsWorker;
  let two: AiecsWorker;
  const gone = `gone-host:1:${kind}`;

  beforeAll(async () => {
    // Heartbeats a minute apart: what the workers answer is current, not a beat old.
    env = await TestEnv.create(kind, { AIECS_HEARTBEAT_INTERVAL_MS: '60000' });
    const settings = { concurrency: { fast_tasks: 1, heavy_tasks: 1 }, queues: ['fast_tasks' as const] };
    one = await env.worker({ worker: { ...settings, services: [PROBE_SERVICES] } });
    two = await env.worker({ worker: { ...settings, services: [PROBE_SERVICES] } });
    app = env.app();
    store = await app.store();
    admin = new Admin(app, store);
    await ghost(store, one, gone);
  });

  afterAll(async () => {
    await admin?.close();
    await env?.cleanup();
  });

  it('ping, stats and registered: every live worker answers, and one gone is named', async () => {
    // Services enough that the reply outgrows a PostgreSQL NOTIFY (8000 bytes): it travels in parts.
    for (let i = 0; i < 150; i++)
      two.registry.register('bulk', `service_${String(i).padStart(3, '0')}`, { run: () => 1 });
    const ping = (await admin.inspect('ping', { timeoutMs: WAIT_MS })) as WorkerAnswers;
    expect(Object.keys(ping.workers).sort()).toEqual([one.id, two.id].sort());
    expect(ping.no_reply).toEqual([gone]);

    const stats = (await admin.inspect('stats', { timeoutMs: WAIT_MS, worker: one.id })) as WorkerAnswers;
    expect(Object.keys(stats.workers)).toEqual([one.id]);
    expect(stats.workers[one.id]).toMatchObject({
      worker: one.id,
      pid: process.pid,
      queues: ['fast_tasks'],
      pools: { fast_tasks: { kind: 'async', concurrency: 1, consuming: true } },
    });

    const registered = (await admin.inspect('registered', { timeoutMs: WAIT_MS })) as WorkerAnswers;
    const services = (registered.workers[two.id] as { services: Array<{ service: string }> }).services;
    expect(services.map((s) => s.service)).toContain('service_149');
    expect(JSON.stringify(registered.workers[two.id]).length).toBeGreaterThan(8_000);
  });

  it('active lists a running task on the worker that runs it, and nowhere else', async () => {
    const handle = await app.executeTask.delay(probe('sleep', { ms: 60_000 }));
    await until(async () => (await handle.status()).status === 'running', 30_000, 'the task to run');
    const active = (await admin.inspect('active', { timeoutMs: WAIT_MS })) as WorkerAnswers;
    const byWorker = Object.entries(active.workers).map(([id, data]) => [
      id,
      (data as { tasks: Array<{ task_id: string }> }).tasks.map((t) => t.task_id),
    ]);
    expect(byWorker.filter(([, ids]) => ids!.includes(handle.id))).toHaveLength(1);
    expect(active.no_reply).toEqual([gone]);
    await handle.cancel();
    await until(async () => (await handle.status()).status === 'cancelled', 30_000, 'the cancel');
  });

  it('pool-resize, cancel-consumer and add-consumer change the worker named', async () => {
    const resized = await admin.controlWorkers(
      'pool-resize',
      { concurrency: 3 },
      { worker: one.id, timeoutMs: WAIT_MS },
    );
    expect(resized.workers[one.id]).toEqual({ message: 'concurrency fast_tasks=3' });
    const refused = await admin.controlWorkers(
      'cancel-consumer',
      { queue: 'heavy_tasks' },
      { worker: one.id, timeoutMs: WAIT_MS },
    );
    expect(refused.errors[one.id]).toBe('not consuming heavy_tasks');

    await admin.controlWorkers(
      'add-consumer',
      { queue: 'heavy_tasks' },
      { worker: one.id, timeoutMs: WAIT_MS },
    );
    await admin.controlWorkers(
      'cancel-consumer',
      { queue: 'fast_tasks' },
      { worker: one.id, timeoutMs: WAIT_MS },
    );
    const stats = (await admin.inspect('stats', { timeoutMs: WAIT_MS, worker: one.id })) as WorkerAnswers;
    expect(stats.workers[one.id]).toMatchObject({
      queues: ['heavy_tasks'],
      pools: { heavy_tasks: { consuming: true } },
    });
    const workers = await admin.workers(WAIT_MS);
    expect(workers.workers.find((w) => w.id === one.id)).toMatchObject({
      answered: true,
      queues: ['heavy_tasks'],
    });
    expect(workers.workers.find((w) => w.id === gone)).toMatchObject({ answered: false });
    await admin.controlWorkers(
      'add-consumer',
      { queue: 'fast_tasks' },
      { worker: one.id, timeoutMs: WAIT_MS },
    );
  });

  it('purge removes the waiting and delayed tasks, never a running one', async () => {
    // Both workers stop taking fast tasks; one runs already.
    const running = await app.executeTask.delay(probe('sleep', { ms: 60_000 }));
    await until(async () => (await running.status()).status === 'running', 30_000, 'the task to run');
    for (const w of [one, two])
      await admin.controlWorkers(
        'cancel-consumer',
        { queue: 'fast_tasks' },
        { worker: w.id, timeoutMs: WAIT_MS },
      );
    const waiting = await Promise.all([1, 2].map(() => app.executeTask.delay(probe('echo'))));
    const delayed = await app.executeTask.delay(probe('echo'), { countdown: 600 });

    const reserved = (await admin.inspect('reserved', { timeoutMs: WAIT_MS })) as QueueAnswers;
    expect(
      reserved.queues
        .find((q) => q.queue === 'fast_tasks')
        ?.tasks.map((t) => t.task_id)
        .sort(),
    ).toEqual(waiting.map((h) => h.id).sort());
    const scheduled = (await admin.inspect('scheduled', { timeoutMs: WAIT_MS })) as QueueAnswers;
    expect(scheduled.queues.find((q) => q.queue === 'fast_tasks')?.tasks).toMatchObject([
      { task_id: delayed.id, eta: expect.any(String) },
    ]);

    expect(await admin.purge(['fast_tasks'])).toEqual([{ queue: 'fast_tasks', waiting: 2, delayed: 1 }]);
    for (const h of [...waiting, delayed]) expect(await app.getTask(h.id)).toBeUndefined();
    expect((await running.status()).status).toBe('running');
    const [counts] = await admin.queues(['fast_tasks']);
    expect(counts).toMatchObject({ waiting: 0, delayed: 0, active: 1 });
    await running.cancel();
  });
});

describe('the CLI on Redis, against two worker processes, one of them killed', () => {
  let env: TestEnv;
  let live: { id: string; proc: ChildProcess };
  let killed: { id: string; proc: ChildProcess };
  let app: AiecsApp;
  let store: Store;
  let broker: string[];

  beforeAll(async () => {
    // A heartbeat outlives its worker by three intervals: the killed worker stays "live" meanwhile.
    const workerEnv = {
      AIECS_HEARTBEAT_INTERVAL_MS: '30000',
      CELERY_WORKER_CONCURRENCY: 'fast_tasks=1,heavy_tasks=1',
    };
    env = await TestEnv.create('redis', workerEnv);
    [live, killed] = await Promise.all([env.workerProcess(workerEnv), env.workerProcess(workerEnv)]);
    killed.proc.kill('SIGKILL');
    await new Promise((resolve) => killed.proc.once('exit', resolve));
    app = env.app();
    store = await app.store();
    broker = ['--broker', env.brokerUrl, '--namespace', env.namespace];
  });

  afterAll(async () => {
    await env?.cleanup();
  });

  it.each(['ping', 'stats', 'registered', 'active'])(
    'inspect %s answers for the live worker and names the killed one (exit 1)',
    async (verb) => {
      const run = await aiecs(['inspect', verb, ...WAIT, ...broker]);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stdout).toContain(`-> ${live.id}`);
      expect(lines(run.stdout).at(-1)).toBe(`no reply within ${WAIT_MS / 1000} s from: ${killed.id}`);
      const json = await aiecs(['inspect', verb, ...WAIT, '--json', ...broker]);
      const answer = JSON.parse(json.stdout) as WorkerAnswers;
      expect(Object.keys(answer.workers)).toEqual([live.id]);
      expect(answer.no_reply).toEqual([killed.id]);
    },
  );

  it('control verbs answer for the live worker and name the killed one', async () => {
    const resize = await aiecs(['control', 'pool-resize', '2', ...WAIT, ...broker]);
    expect(resize.code).toBe(1);
    expect(lines(resize.stdout)).toEqual([
      `-> ${live.id}: concurrency fast_tasks=2, heavy_tasks=2`,
      `no reply within ${WAIT_MS / 1000} s from: ${killed.id}`,
    ]);
    const one = await aiecs([
      'control',
      'pool-resize',
      'fast_tasks=1',
      '--worker',
      live.id,
      ...WAIT,
      ...broker,
    ]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout.trim()).toBe(`-> ${live.id}: concurrency fast_tasks=1`);

    // A worker that stops consuming leaves a task waiting; consuming again runs it.
    const cancel = await aiecs([
      'control',
      'cancel-consumer',
      'fast_tasks',
      '--worker',
      live.id,
      ...WAIT,
      ...broker,
    ]);
    expect(cancel.stdout.trim()).toBe(`-> ${live.id}: no longer consuming fast_tasks`);
    const handle = await app.executeTask.delay(probe('echo'));
    const reserved = await aiecs(['inspect', 'reserved', '--json', ...broker]);
    const queues = (JSON.parse(reserved.stdout) as QueueAnswers).queues;
    expect(queues.find((q) => q.queue === 'fast_tasks')?.tasks.map((t) => t.task_id)).toEqual([handle.id]);
    const add = await aiecs([
      'control',
      'add-consumer',
      'fast_tasks',
      '--worker',
      live.id,
      ...WAIT,
      ...broker,
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect((await handle.get({ timeout: 30 })).status).toBe('completed');
  });

  it('purge removes the waiting and delayed tasks and leaves the running one', async () => {
    const running = await app.executeTask.delay(probe('sleep', { ms: 60_000 }));
    await until(async () => (await running.status()).status === 'running', 30_000, 'the task to run');
    // The live worker's one fast slot is taken: these wait, and this one waits for its time.
    const waiting = await Promise.all([1, 2].map(() => app.executeTask.delay(probe('echo'))));
    const delayed = await app.executeTask.delay(probe('echo'), { countdown: 600 });
    const scheduled = await aiecs(['inspect', 'scheduled', ...broker]);
    expect(scheduled.stdout).toContain(delayed.id);

    // Without a terminal to confirm on, nothing happens.
    const refused = await aiecs(['purge', ...broker]);
    expect(refused.code).toBe(2);
    expect(lines(refused.stderr)).toEqual([
      'aiecs: purge would remove 3 waiting or delayed tasks from fast_tasks, heavy_tasks, and stdin is not a terminal to confirm on; pass --force to purge without asking',
    ]);
    expect(await app.getTask(delayed.id)).toBeDefined();

    const purged = await aiecs(['purge', 'fast_tasks', '--force', '--json', ...broker]);
    expect(purged.code, purged.stderr).toBe(0);
    expect(JSON.parse(purged.stdout)).toEqual({
      purged: [{ queue: 'fast_tasks', waiting: 2, delayed: 1 }],
      removed: 3,
    });
    for (const h of [...waiting, delayed]) expect(await app.getTask(h.id)).toBeUndefined();
    expect((await running.status()).status).toBe('running');
    await running.cancel();
  });

  it('purge asks on a terminal, and anything but yes purges nothing', async () => {
    const delayed = await app.executeTask.delay(probe('echo'), { countdown: 600 });
    const cmd = {
      optsWithGlobals: () => ({ broker: env.brokerUrl, namespace: env.namespace }),
    } as unknown as Command;
    const answer = async (text: string) => {
      const input = Object.assign(new PassThrough(), { isTTY: true });
      const output = new PassThrough();
      let asked = '';
      output.on('data', (d: Buffer) => (asked += d.toString()));
      input.end(text);
      try {
        await purgeAction([], {}, cmd, { input, output });
      } finally {
        process.exitCode = undefined;
      }
      return asked;
    };
    expect(await answer('n\n')).toBe(
      'Remove 1 waiting or delayed task from fast_tasks, heavy_tasks? Running tasks are not touched. [y/N] ',
    );
    expect(await app.getTask(delayed.id)).toBeDefined();
    await answer('yes\n');
    expect(await app.getTask(delayed.id)).toBeUndefined();
  });

  it('events prints one line per state change of every task', async () => {
    const events = await followEvents(['--json', ...broker]);
    try {
      const handle = await app.executeTask.delay(probe('flaky', { fail_times: 1 }));
      await handle.get({ timeout: 30 });
      await until(async () => events.out().includes('"completed"'), 30_000, 'the completed line');
      const changes = lines(events.out())
        .map((l) => JSON.parse(l) as { task_id: string; status: string; attempt: number })
        .filter((c) => c.task_id === handle.id)
        .map((c) => `${c.status}/${c.attempt}`);
      // Queued, started, failed and retrying, started again, done: no progress steps in between.
      expect(changes.slice(1)).toEqual(['running/1', 'pending/1', 'running/2', 'completed/2']);
      expect(changes[0]).toMatch(/^pending\//);
    } finally {
      expect(await events.stop()).toBe(0);
    }
  });

  it('bad input: one line and exit 2, and nothing purged', async () => {
    const delayed = await app.executeTask.delay(probe('echo'), { countdown: 600 });
    const cases: Array<[string[], string]> = [
      [
        ['inspect', 'everything'],
        "aiecs: command-argument value 'everything' is invalid for argument 'what'.",
      ],
      [['control', 'restart'], "aiecs: command-argument value 'restart' is invalid for argument 'command'."],
      [
        ['purge', 'fast_tasks', 'fats_tasks', '--force'],
        'aiecs: no queue named fats_tasks; queues: fast_tasks, heavy_tasks',
      ],
      [
        ['control', 'add-consumer', 'slow_tasks'],
        'aiecs: no queue named slow_tasks; queues: fast_tasks, heavy_tasks',
      ],
      [
        ['control', 'pool-resize'],
        'aiecs: pool-resize needs a size: N for every queue, or fast_tasks=N,heavy_tasks=N',
      ],
      [['control', 'pool-resize', 'zero'], 'aiecs: pool-resize zero: expected a whole number >= 1'],
      [['inspect', 'ping', '--worker', 'nobody'], 'aiecs: no live worker named nobody; live workers: '],
      [['control', 'shutdown', '--worker', 'nobody'], 'aiecs: no live worker named nobody; live workers: '],
    ];
    for (const [args, line] of cases) {
      const run = await aiecs([...args, ...broker]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(lines(run.stderr), args.join(' ')).toHaveLength(1);
      expect(run.stderr.startsWith(line), `${args.join(' ')}: ${run.stderr}`).toBe(true);
      expect(run.stdout).toBe('');
    }
    expect(await app.getTask(delayed.id)).toBeDefined();
    expect((await aiecs(['control', 'shutdown', '--worker', 'nobody', ...broker])).stderr).toContain(live.id);
  });

  it('control shutdown stops the live worker, whose process then ends', async () => {
    const exited = new Promise((resolve) => live.proc.once('exit', (code) => resolve(code)));
    const run = await aiecs(['control', 'shutdown', '--worker', live.id, ...WAIT, ...broker]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`-> ${live.id}: shutting down`);
    expect(await exited).toBe(0);
    expect((await store.listHeartbeats()).map((b) => b.id)).not.toContain(live.id);
  });
});

describe('the admin endpoints of the gateway', () => {
  let ge: GatewayEnv;
  let adminApi: Api;
  let userApi: Api;
  let workerId: string;

  beforeAll(async () => {
    ge = await GatewayEnv.create('redis', { AIECS_HEARTBEAT_INTERVAL_MS: '60000' });
    adminApi = await ge.api('root', { admin: true });
    userApi = await ge.api('alice');
    workerId = (await ge.env.app().listWorkers())[0]!.id;
  });

  afterAll(async () => {
    await ge?.cleanup();
  });

  it('refuse non-admins (403)', async () => {
    const calls = [
      userApi.get('/api/workers'),
      userApi.get('/api/queues'),
      userApi.get('/api/inspect/ping'),
      userApi.get('/api/events'),
      userApi.post('/api/queues/fast_tasks/purge'),
      userApi.post(`/api/workers/${encodeURIComponent(workerId)}/control`, { command: 'shutdown' }),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    }
  });

  it('GET /api/workers gives the active count as the worker says it now, not as its heartbeat did', async () => {
    const { task_id } = (await userApi.submit({ ...probeBody('sleep', { ms: 60_000 }) })).body;
    await until(
      async () => (await userApi.task(task_id)).body.status === 'running',
      30_000,
      'the task to run',
    );
    // The heartbeat is a minute old: it still says 0.
    const [beat] = await ge.env.app().listWorkers();
    expect(beat?.active).toBe(0);
    const res = await adminApi.get(`/api/workers?timeout=${WAIT_MS / 1000}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ workers: [{ id: workerId, active: 1, answered: true }], no_reply: [] });
    await userApi.cancel(task_id);
  });

  it('inspect, queues and purge', async () => {
    const ping = await adminApi.get(`/api/inspect/ping?timeout=${WAIT_MS / 1000}`);
    expect(ping.body).toMatchObject({ what: 'ping', workers: { [workerId]: { pong: true } }, no_reply: [] });
    expect((await adminApi.get('/api/inspect/everything')).body.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.stringContaining('what: must be one of active, scheduled'),
    });
    expect((await adminApi.get('/api/inspect/ping?worker=nobody')).status).toBe(404);

    const delayed = (await userApi.submit(probeBody('echo', {}, { countdown: 600 }))).body.task_id as string;
    const queues = await adminApi.get('/api/queues');
    expect(queues.body.queues).toContainEqual(
      expect.objectContaining({ queue: 'fast_tasks', delayed: 1, waiting: 0 }),
    );
    const unknown = await adminApi.post('/api/queues/slow_tasks/purge');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'QUEUE_NOT_FOUND' });
    expect((await userApi.task(delayed)).status).toBe(200);
    const purged = await adminApi.post('/api/queues/fast_tasks/purge');
    expect(purged.body).toEqual({ queue: 'fast_tasks', waiting: 0, delayed: 1, removed: 1 });
    expect((await userApi.task(delayed)).status).toBe(404);
  });

  it('POST /api/workers/:name/control: 200, 400 for an unknown command, 404, 409 and 504', async () => {
    const path = (id: string) => `/api/workers/${encodeURIComponent(id)}/control`;
    const ok = await adminApi.post(path(workerId), {
      command: 'pool-resize',
      args: { concurrency: { fast_tasks: 4 } },
      timeout: WAIT_MS / 1000,
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({
      worker: workerId,
      command: 'pool-resize',
      message: 'concurrency fast_tasks=4',
    });

    const unknown = await adminApi.post(path(workerId), { command: 'restart' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details.issues[0].field).toBe('command');
    const missing = await adminApi.post(path(workerId), { command: 'add-consumer' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.details.issues[0].field).toBe('args.queue');
    const nobody = await adminApi.post(path('nobody'), { command: 'shutdown' });
    expect(nobody.status).toBe(404);
    expect(nobody.body.error.code).toBe('WORKER_NOT_FOUND');
    const refused = await adminApi.post(path(workerId), {
      command: 'add-consumer',
      args: { queue: 'fast_tasks' },
      timeout: WAIT_MS / 1000,
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({
      code: 'CONTROL_REFUSED',
      message: `worker ${workerId} refused add-consumer: already consuming fast_tasks`,
    });

    const store = await ge.env.app().store();
    const [beat] = await store.listHeartbeats();
    await store.putHeartbeat({ ...beat!, id: 'gone-host:1:http' }, 60_000);
    const silent = await adminApi.post(path('gone-host:1:http'), { command: 'shutdown', timeout: 0.3 });
    expect(silent.status).toBe(504);
    expect(silent.body.error).toMatchObject({
      code: 'WORKER_NO_REPLY',
      message: 'worker gone-host:1:http did not answer within 0.3 s',
    });
    await store.removeHeartbeat('gone-host:1:http');
  });

  it('GET /api/events streams every task state change to an admin', async () => {
    const controller = new AbortController();
    const res = await fetch(`${ge.url}/api/events`, {
      headers: { authorization: `Bearer ${await token('root', { admin: true })}` },
      signal: controller.signal,
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    let text = '';
    const reading = (async () => {
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
          text += Buffer.from(chunk).toString();
      } catch {
        // aborted
      }
    })();
    const { task_id } = (await userApi.submit(probeBody('echo'))).body;
    await until(async () => text.includes('"completed"'), 30_000, 'the completed event');
    controller.abort();
    await reading;
    const statuses = text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as { task_id: string; status: string; result?: unknown })
      .filter((e) => e.task_id === task_id);
    expect(statuses.map((e) => e.status)).toEqual(['pending', 'running', 'completed']);
    expect(statuses.every((e) => e.result === undefined)).toBe(true);
  });

  it('pool-resize shrinks a process pool: a child goes once its task ends', async () => {
    const heavy = (ms: number) => userApi.submit(probeBody('sleep', { ms }, { heavy: true }));
    const ids = (await Promise.all([heavy(2_000), heavy(2_000)])).map((r) => r.body.task_id as string);
    await until(
      async () =>
        (await Promise.all(ids.map((id) => userApi.task(id)))).every((r) => r.body.status === 'running'),
      30_000,
      'both heavy tasks to run',
    );
    const path = `/api/workers/${encodeURIComponent(workerId)}/control`;
    const resized = await adminApi.post(path, {
      command: 'pool-resize',
      args: { concurrency: { heavy_tasks: 1 } },
      timeout: WAIT_MS / 1000,
    });
    expect(resized.body.message).toBe('concurrency heavy_tasks=1');
    for (const id of ids) expect((await userApi.settled(id)).status).toBe('completed');
    const stats = await adminApi.get(`/api/inspect/stats?timeout=${WAIT_MS / 1000}`);
    expect(stats.body.workers[workerId].pools.heavy_tasks).toMatchObject({ concurrency: 1, active: 0 });
    expect(stats.body.workers[workerId].pools.heavy_tasks.children).toHaveLength(1);
  });

  it('the OpenAPI document describes the admin endpoints', async () => {
    const doc = (await adminApi.get('/openapi.json')).body as { paths: Record<string, object> };
    for (const path of [
      '/api/workers',
      '/api/workers/{name}/control',
      '/api/inspect/{what}',
      '/api/queues',
      '/api/queues/{name}/purge',
      '/api/events',
    ])
      expect(doc.paths, path).toHaveProperty([path]);
  });
});

function probeBody(task: string, input: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return { task_name: task, mode: 'test', service: 'probe', input_data: input, ...extra };
}

describe('the CLI against aiecs up on the embedded store (over its admin endpoints)', () => {
  let dir: string;
  let up: ChildProcess;
  let upOut = '';
  let broker: string[];
  let workerId: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aiecs-inspect-up-'));
    broker = ['--broker', `embedded:${join(dir, 'store')}`];
    up = spawn(process.execPath, [MAIN, 'up', ...broker, '--port', '0', '--services', PROBE_SERVICES], {
      env: {
        ...cleanEnv(),
        AIECS_LOG_LEVEL: 'warn',
        CELERY_WORKER_CONCURRENCY: 'fast_tasks=2,heavy_tasks=1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stdout!.on('data', (d: Buffer) => (upOut += d.toString()));
    await until(async () => upOut.includes('token:'), 90_000, `aiecs up to start: ${upOut}`);
    workerId = /worker (\S+),/.exec(upOut)![1]!;
  });

  afterAll(async () => {
    if (up && up.exitCode === null && up.signalCode === null) {
      up.kill('SIGTERM');
      await new Promise((r) => up.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('inspect, control and purge reach the worker inside aiecs up', async () => {
    const ping = await aiecs(['inspect', 'ping', ...WAIT, ...broker]);
    expect(ping.code, ping.stderr).toBe(0);
    expect(ping.stdout.trim()).toBe(`-> ${workerId}: pong`);
    const resize = await aiecs(['control', 'pool-resize', 'fast_tasks=3', ...WAIT, ...broker]);
    expect(resize.stdout.trim()).toBe(`-> ${workerId}: concurrency fast_tasks=3`);
    const stats = JSON.parse(
      (await aiecs(['inspect', 'stats', '--json', ...WAIT, ...broker])).stdout,
    ) as WorkerAnswers;
    expect(stats.workers[workerId]).toMatchObject({ pools: { fast_tasks: { concurrency: 3 } } });

    const submitted = await aiecs([
      'submit',
      '--mode',
      'test',
      '--service',
      'probe',
      '--task',
      'echo',
      '--input',
      '{}',
      '--countdown',
      '600',
      ...broker,
    ]);
    const id = submitted.stdout.trim();
    expect((await aiecs(['inspect', 'scheduled', ...broker])).stdout).toContain(id);
    const bad = await aiecs(['purge', 'fast_tasks', 'nope', '--force', ...broker]);
    expect(bad.code).toBe(2);
    expect((await aiecs(['status', id, ...broker])).code).toBe(0);
    const purged = await aiecs(['purge', '--force', ...broker]);
    expect(purged.stdout.trim()).toBe(
      'purged 1 task (fast_tasks 0 waiting, 1 delayed; heavy_tasks 0 waiting, 0 delayed); running tasks are untouched',
    );
    const unknown = await aiecs(['inspect', 'active', '--worker', 'nobody', ...broker]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe(`aiecs: no live worker named nobody; live workers: ${workerId}`);
  });

  it('events follows the tasks of aiecs up', async () => {
    const events = await followEvents(broker);
    try {
      const run = await aiecs([
        'submit',
        '--mode',
        'test',
        '--service',
        'probe',
        '--task',
        'echo',
        '--input',
        '{}',
        '--wait',
        '--json',
        ...broker,
      ]);
      const id = (JSON.parse(run.stdout) as { task_id: string }).task_id;
      await until(async () => events.out().includes(`completed  ${id}`), 30_000, 'the completed line');
      expect(
        lines(events.out())
          .filter((l) => l.includes(id))
          .map((l) => l.split(/\s+/)[1]),
      ).toEqual(['pending', 'running', 'completed']);
    } finally {
      expect(await events.stop()).toBe(0);
    }
  });

  it('control shutdown stops aiecs up', async () => {
    const exited = new Promise((resolve) => up.once('exit', (code) => resolve(code)));
    const run = await aiecs(['control', 'shutdown', ...WAIT, ...broker]);
    expect(run.stdout).toContain(`-> ${workerId}: shutting down`);
    expect(await exited).toBe(0);
  });
});
