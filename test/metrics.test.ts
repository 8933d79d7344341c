// Prometheus figures (src/core/metrics.ts): the counters move as tasks run, on every store; the
// gateway's /metrics adds the store's queue depth and live workers; a worker serves its own on
// --metrics-port; AIECS_METRICS_TOKEN guards both; and a live exposition passes `promtool check
// metrics`. Counters are per process: each check compares before and after.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../src/core/config.js';
import { METRIC, METRIC_NAMES, enableMetrics } from '../src/core/metrics.js';
import type { TaskHandle } from '../src/engine/app.js';
import type { FakeAiServer } from './fake-ai/server.js';
import { startFakeAi } from './fake-ai/server.js';
import { GatewayEnv, probe as wireProbe, request, token, uid } from './gateway-harness.js';
import { loadServiceModules } from '../src/registry/service-loader.js';
import { PROBE_SERVICES, STORE_KINDS, TEST_ENV, TestEnv, probe, until } from './harness.js';

const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Reading an exposition

/** Every sample of a text exposition, by name and labels (labels sorted, so order does not matter). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}=${v}`);
    out.set(`${m[1]}{${labels.sort().join(',')}}`, Number(m[3]));
  }
  return out;
}

const key = (name: string, labels: Record<string, string> = {}) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(',')}}`;

/** A sample's value (0 when absent: a series appears on its first count). */
const value = (s: Map<string, number>, name: string, labels: Record<string, string> = {}) =>
  s.get(key(name, labels)) ?? 0;

/** How much each sample grew between two readings. */
const grew =
  (before: Map<string, number>, after: Map<string, number>) =>
  (name: string, labels: Record<string, string> = {}) =>
    value(after, name, labels) - value(before, name, labels);

const processFigures = async () => samples(await enableMetrics().exposition());

/** Runs `promtool check metrics` on an exposition; the test fails (never skips) without promtool. */
function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('promtool', ['check', 'metrics'], (error, stdout, stderr) => {
      const code = (error as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT')
        return reject(new Error('promtool is missing: install Debian package `prometheus` (.ci/run does)'));
      resolve({ code: typeof code === 'number' ? code : error ? 1 : 0, output: stdout + stderr });
    });
    child.stdin!.end(text);
  });
}

const settle = (handle: TaskHandle) => handle.get({ timeout: 30 }).catch(() => undefined);

// ---------------------------------------------------------------------------------------------
// Task figures, on every store

describe.each(STORE_KINDS)('task figures on %s', (kind) => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  it('count executions by status, durations, retries and time-outs; the active gauge returns to 0', async () => {
    env = await TestEnv.create(kind);
    enableMetrics();
    const before = await processFigures();
    await env.worker();
    const app = env.app();
    const fast = app.executeTask;

    await (await fast.delay(probe('echo'))).get({ timeout: 30 });
    await (await app.executeHeavyTask.delay(probe('echo'))).get({ timeout: 30 });
    await settle(await fast.delay(probe('fail')));
    await (await fast.delay(probe('flaky', { fail_times: 1 }))).get({ timeout: 30 });
    await settle(
      await fast.delay(probe('soft_cleanup', { ms: 10_000 }), { softTimeLimit: 0.3, timeLimit: 5 }),
    );
    await settle(await fast.delay(probe('ignore_signal', { ms: 1_500 }), { timeLimit: 0.3 }));

    // Running: counted in the gauge; cancelled: out of it again.
    const running = await fast.delay(probe('sleep', { ms: 15_000 }));
    // BullMQ marks the job active a moment before the worker's processor takes it: wait for both.
    await until(async () => (await running.status()).status === 'running', 20_000, 'the sleep to run');
    await until(
      async () => value(await processFigures(), METRIC.activeTasks) === 1,
      20_000,
      'the running task in the gauge',
    );
    await running.cancel();
    await settle(running);
    // Cancelled while pending: the worker that drains it counts it, without a run time.
    const pending = await fast.delay(probe('sleep', { ms: 15_000 }), { countdown: 600 });
    await pending.cancel();
    await until(
      async () =>
        grew(before, await processFigures())(METRIC.taskExecutions, {
          task_name: 'sleep',
          status: 'cancelled',
        }) === 2,
      20_000,
      'the pending cancel to be drained',
    );

    const after = await processFigures();
    const d = grew(before, after);
    const executions = (task_name: string, status: string) => d(METRIC.taskExecutions, { task_name, status });
    const timed = (task_name: string) => d(`${METRIC.taskDuration}_count`, { task_name });
    expect({
      echoCompleted: executions('echo', 'completed'),
      failFailed: executions('fail', 'failed'),
      flakyRetry: executions('flaky', 'retry'),
      flakyCompleted: executions('flaky', 'completed'),
      softTimedOut: executions('soft_cleanup', 'timed_out'),
      hardTimedOut: executions('ignore_signal', 'timed_out'),
      sleepCancelled: executions('sleep', 'cancelled'),
      flakyRetries: d(METRIC.taskRetries, { task_name: 'flaky' }),
      softKind: d(METRIC.taskTimeouts, { task_name: 'soft_cleanup', kind: 'soft' }),
      hardKind: d(METRIC.taskTimeouts, { task_name: 'ignore_signal', kind: 'hard' }),
      otherKinds:
        d(METRIC.taskTimeouts, { task_name: 'soft_cleanup', kind: 'hard' }) +
        d(METRIC.taskTimeouts, { task_name: 'ignore_signal', kind: 'soft' }),
    }).toEqual({
      echoCompleted: 2,
      failFailed: 1,
      flakyRetry: 1,
      flakyCompleted: 1,
      softTimedOut: 1,
      hardTimedOut: 1,
      sleepCancelled: 2,
      flakyRetries: 1,
      softKind: 1,
      hardKind: 1,
      otherKinds: 0,
    });
    // Every execution that ran has a duration; the one cancelled before it ran has none.
    expect([timed('echo'), timed('fail'), timed('flaky'), timed('sleep')]).toEqual([2, 1, 2, 1]);
    expect(d(`${METRIC.taskDuration}_sum`, { task_name: 'sleep' })).toBeGreaterThan(0);
    // The soft time-out ran at least its limit of 0.3 s: above the 0.25 s bucket, and in the total.
    expect(d(`${METRIC.taskDuration}_bucket`, { task_name: 'soft_cleanup', le: '0.25' })).toBe(0);
    expect(d(`${METRIC.taskDuration}_bucket`, { task_name: 'soft_cleanup', le: '+Inf' })).toBe(1);
    // The sum is a difference of two float totals, so 0.3 may come back as 0.29999999999999993.
    expect(d(`${METRIC.taskDuration}_sum`, { task_name: 'soft_cleanup' })).toBeGreaterThanOrEqual(0.3 - 1e-9);
    expect(value(after, METRIC.activeTasks)).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// The gateway's /metrics

describe.each(STORE_KINDS)('the gateway /metrics on %s', (kind) => {
  let ge: GatewayEnv;
  afterEach(async () => ge?.cleanup());

  it('serves every figure without a JWT, with the store’s queue depth and live workers', async () => {
    ge = await GatewayEnv.create(kind, {}, { worker: false });
    // No worker is live yet: the gateway accepts the probe tasks because this process knows them.
    await loadServiceModules([PROBE_SERVICES], ge.registry);
    const user = uid('metrics');
    const client = await ge.client(user);
    const api = await ge.api(user);
    const scrape = async () => {
      const res = await request(ge.url, '/metrics');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return res.text;
    };
    const before = samples(await scrape());
    expect(value(before, METRIC.socketsConnected)).toBe(1);

    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await api.submit(wireProbe('echo'))).body.task_id);
    ids.push((await api.submit(wireProbe('stream_tokens', { tokens: 5 }))).body.task_id);
    for (let i = 0; i < 2; i++) await api.submit(wireProbe('echo', {}, { countdown: 600 }));
    await until(
      async () =>
        value(samples(await scrape()), METRIC.queueDepth, { queue: 'fast_tasks', state: 'waiting' }) === 4,
      20_000,
      'four waiting tasks',
    );
    const queued = samples(await scrape());
    const depth = (queue: string, state: string) => value(queued, METRIC.queueDepth, { queue, state });
    expect({
      waiting: depth('fast_tasks', 'waiting'),
      delayed: depth('fast_tasks', 'delayed'),
      active: depth('fast_tasks', 'active'),
      failed: depth('fast_tasks', 'failed'),
      heavyWaiting: depth('heavy_tasks', 'waiting'),
      workers: value(queued, METRIC.workersLive),
    }).toEqual({ waiting: 4, delayed: 2, active: 0, failed: 0, heavyWaiting: 0, workers: 0 });

    await ge.env.worker();
    await client.waitTerminal(ids);
    const text = await scrape();
    const after = samples(text);
    const d = grew(before, after);
    expect(value(after, METRIC.workersLive)).toBe(1);
    expect(value(after, METRIC.queueDepth, { queue: 'fast_tasks', state: 'waiting' })).toBe(0);
    expect(value(after, METRIC.queueDepth, { queue: 'fast_tasks', state: 'delayed' })).toBe(2);
    // The worker in the gateway's process: its executions are in the same exposition.
    expect(d(METRIC.taskExecutions, { task_name: 'echo', status: 'completed' })).toBe(3);
    // Every event this socket got was counted once as sent, and nothing else was.
    expect(d(METRIC.progressEvents)).toBe(client.progress.length);
    expect(d(METRIC.streamEvents)).toBe(client.streams.length);
    expect(client.streams.length).toBeGreaterThan(0);
    for (const name of METRIC_NAMES) expect(text, name).toContain(`# TYPE ${name} `);
    expect(text).toContain('# TYPE process_resident_memory_bytes gauge');
    expect(text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
    const lint = await promtool(text);
    expect(lint, lint.output).toEqual({ code: 0, output: '' });

    client.close();
    await until(
      async () => value(samples(await scrape()), METRIC.socketsConnected) === 0,
      10_000,
      'the socket to be gone',
    );
  });
});

describe('AIECS_METRICS_TOKEN on the gateway', () => {
  let ge: GatewayEnv;
  afterEach(async () => ge?.cleanup());

  it('refuses a scrape without the bearer token, a JWT included', async () => {
    ge = await GatewayEnv.create('embedded', { AIECS_METRICS_TOKEN: 'scrape-secret' }, { worker: false });
    const refused = [
      await request(ge.url, '/metrics'),
      await request(ge.url, '/metrics', { token: 'not-the-secret' }),
      await request(ge.url, '/metrics', { token: await token('admin', { admin: true }) }),
    ];
    for (const res of refused) {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(res.body).toEqual({
        error: {
          code: 'UNAUTHORIZED',
          message: '/metrics needs the bearer token AIECS_METRICS_TOKEN',
          details: {},
        },
      });
    }
    const ok = await request(ge.url, '/metrics', { token: 'scrape-secret' });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain(`# TYPE ${METRIC.activeTasks} gauge`);
    // In the OpenAPI document, outside the JWT scheme.
    const doc = await request(ge.url, '/openapi.json');
    expect(doc.body.paths['/metrics'].get).toMatchObject({ security: [], responses: { '401': {} } });
  });
});

// ---------------------------------------------------------------------------------------------
// Provider figures, from both pools

describe('provider figures', () => {
  let fake: FakeAiServer;
  let env: TestEnv | undefined;
  beforeAll(async () => (fake = await startFakeAi()));
  afterAll(async () => fake?.stop());
  afterEach(async () => env?.cleanup());

  it('count requests by outcome, tokens and cost, from the async pool and from a process-pool child', async () => {
    const [retried, refused, heavy] = [
      'gpt-4o-mini-m1-retried',
      'gpt-4o-mini-m1-refused',
      'gpt-4o-mini-m1-heavy',
    ];
    const prices = Object.fromEntries([retried, heavy].map((m) => [m, { input: 1, output: 2 }]));
    env = await TestEnv.create('redis', {
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: fake.openaiBaseUrl,
      AIECS_MODEL_PRICES: JSON.stringify(prices),
      AIECS_PROVIDER_RETRY_BASE_MS: '10',
    });
    fake.script(retried, { failFirst: [{ status: 429 }], usage: { input: 100, output: 20 } });
    fake.script(refused, { alwaysFail: { status: 400, message: 'bad request' } });
    fake.script(heavy, { usage: { input: 50, output: 10 } });
    const before = await processFigures();
    await env.worker();
    const app = env.app();
    // The built-in chat service, in the worker's event loop or (heavy) in a child process.
    const ask = (model: string) =>
      probe('chat', { prompt: 'Say something.' }, { mode: 'chat', service: 'llm_chat', context: { model } });
    await (await app.executeTask.delay(ask(retried))).get({ timeout: 30 });
    await settle(await app.executeTask.delay(ask(refused)));
    await (await app.executeHeavyTask.delay(ask(heavy))).get({ timeout: 30 });

    const d = grew(before, await processFigures());
    const requests = (model: string, outcome: string) =>
      d(METRIC.providerRequests, { provider: 'openai', model, outcome });
    const tokens = (model: string, direction: string) =>
      d(METRIC.providerTokens, { provider: 'openai', model, direction });
    expect({
      retriedRetry: requests(retried, 'retry'),
      retriedOk: requests(retried, 'ok'),
      refusedError: requests(refused, 'error'),
      heavyOk: requests(heavy, 'ok'),
      retriedTokens: [tokens(retried, 'input'), tokens(retried, 'output')],
      heavyTokens: [tokens(heavy, 'input'), tokens(heavy, 'output')],
    }).toEqual({
      retriedRetry: 1,
      retriedOk: 1,
      refusedError: 1,
      heavyOk: 1,
      retriedTokens: [100, 20],
      heavyTokens: [50, 10],
    });
    // USD per million tokens: 100 × 1 + 20 × 2, and 50 × 1 + 10 × 2.
    expect(d(METRIC.providerCost, { provider: 'openai', model: retried })).toBeCloseTo(140e-6, 12);
    expect(d(METRIC.providerCost, { provider: 'openai', model: heavy })).toBeCloseTo(70e-6, 12);
  });
});

// ---------------------------------------------------------------------------------------------
// A worker's --metrics-port (the CLI as users run it)

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function aiecs(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { env: { ...process.env, ...TEST_ENV, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = (error as { code?: unknown } | null)?.code;
        resolve({ code: typeof code === 'number' ? code : error ? 1 : 0, stdout, stderr });
      },
    );
  });
}

function holdPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0 });
    });
  });
}

describe('a worker’s --metrics-port', () => {
  const procs: ChildProcess[] = [];
  let env: TestEnv | undefined;
  afterEach(async () => {
    for (const proc of procs.splice(0))
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await env?.cleanup();
  });

  it('serves the worker’s own figures and /healthz, behind AIECS_METRICS_TOKEN; promtool passes', async () => {
    env = await TestEnv.create('redis');
    const proc = spawn(
      process.execPath,
      [MAIN, 'worker', '--broker', env.brokerUrl, '--namespace', env.namespace, '--metrics-port', '0'],
      {
        env: { ...process.env, ...TEST_ENV, AIECS_SERVICES: PROBE_SERVICES, AIECS_METRICS_TOKEN: 'w-secret' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    procs.push(proc);
    let out = '';
    let err = '';
    proc.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const url = await until(
      async () => {
        if (proc.exitCode !== null) throw new Error(`worker exited ${proc.exitCode}: ${err}`);
        return /, metrics (http:\/\/127\.0\.0\.1:\d+\/metrics)$/m.exec(out)?.[1];
      },
      30_000,
      'the worker’s ready line',
    );
    const scrape = (tok?: string) => request(url, '', tok ? { token: tok } : {});

    expect((await scrape()).status).toBe(401);
    expect((await scrape('wrong')).status).toBe(401);
    const health = await request(url.replace(/\/metrics$/, ''), '/healthz');
    expect([health.status, health.body]).toEqual([200, { status: 'ok' }]);
    const first = await scrape('w-secret');
    expect(first.status).toBe(200);
    expect(value(samples(first.text), METRIC.activeTasks)).toBe(0);
    // The store's figures are the gateway's to serve.
    expect(first.text).not.toContain(METRIC.queueDepth);

    const app = env.app();
    await (await app.executeTask.delay(probe('echo'))).get({ timeout: 30 });
    const second = await scrape('w-secret');
    const figures = samples(second.text);
    expect(value(figures, METRIC.taskExecutions, { task_name: 'echo', status: 'completed' })).toBe(1);
    expect(value(figures, `${METRIC.taskDuration}_count`, { task_name: 'echo' })).toBe(1);
    const lint = await promtool(second.text);
    expect(lint, lint.output).toEqual({ code: 0, output: '' });

    proc.kill('SIGTERM');
    await new Promise((resolve) => proc.once('exit', resolve));
    expect(proc.exitCode).toBe(0);
  });

  it('says in one line, exit 2, that the port is taken, by the flag or by AIECS_METRICS_PORT', async () => {
    const held = await holdPort();
    try {
      const redis = inject('redisUrl');
      const line = `aiecs: metrics port ${held.port} is in use; pass --metrics-port N or set AIECS_METRICS_PORT`;
      for (const [args, env2] of [
        [['--metrics-port', String(held.port)], {}],
        [[], { AIECS_METRICS_PORT: String(held.port) }],
      ] as const) {
        // A namespace is a Redis prefix or a PostgreSQL schema name: letters, digits and _ only.
        const namespace = uid('m').replaceAll('-', '_');
        const run = await aiecs(['worker', '--broker', redis, '--namespace', namespace, ...args], env2);
        expect(run.code).toBe(2);
        expect(run.stdout).toBe('');
        expect(run.stderr.trim().split('\n')).toEqual([line]);
      }
      const bad = await aiecs(['worker', '--broker', redis, '--metrics-port', '70000']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--metrics-port.*Expected a port number, 0 to 65535/);
    } finally {
      await new Promise((resolve) => held.server.close(resolve));
    }
  });
});

describe('AIECS_METRICS_PORT and AIECS_METRICS_TOKEN', () => {
  it('are off unless set; a bad port names the variable', () => {
    expect(loadConfig({}).worker.metricsPort).toBeUndefined();
    expect(loadConfig({ AIECS_METRICS_PORT: '' }).worker.metricsPort).toBeUndefined();
    expect(loadConfig({ AIECS_METRICS_PORT: '9464' }).worker.metricsPort).toBe(9464);
    expect(loadConfig({}).metricsToken).toBeUndefined();
    expect(loadConfig({ AIECS_METRICS_TOKEN: 't' }).metricsToken).toBe('t');
    expect(() => loadConfig({ AIECS_METRICS_PORT: '99999' })).toThrow(/AIECS_METRICS_PORT="99999"/);
  });
});
