// AI services end to end: real workers (async pool in this process, process pool in children that
// run dist/) on each store, calling the fake provider server through the official SDKs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TaskCancelledError, TaskFailedError } from '../src/core/errors.js';
import type { QueueKind, TaskRecord, TaskRequest } from '../src/core/task.js';
import type { AiecsApp } from '../src/engine/app.js';
import { resetProviders } from '../src/providers/index.js';
import type { StoreKind } from '../src/engine/store.js';
import type { FakeAiServer } from './fake-ai/server.js';
import { startFakeAi } from './fake-ai/server.js';
import { TestEnv, sleep, until } from './harness.js';

let fake: FakeAiServer;
let dir: string;
const savedEnv = { ...process.env };

/**
 * Provider settings for one test: they go into the worker's config only. process.env holds none
 * (see `deploy`), so a worker or child that ignored its config would fail its tasks here.
 */
function providerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    OPENAI_API_KEY: 'sk-test',
    OPENAI_BASE_URL: fake.openaiBaseUrl,
    XAI_API_KEY: 'xai-test',
    AIECS_XAI_BASE_URL: fake.openaiBaseUrl,
    VERTEX_PROJECT_ID: 'test-project',
    AIECS_VERTEX_BASE_URL: fake.url,
    GOOGLE_APPLICATION_CREDENTIALS: fake.writeGoogleCredentials(dir),
    AIECS_PROVIDER_RETRY_BASE_MS: '20',
    ...extra,
  };
}

const PROVIDER_VARS =
  /^(OPENAI_|XAI_|GROK_|VERTEX_|GOOGLE_APPLICATION|AIECS_(OPENAI|XAI|VERTEX|PROVIDER|MODEL|DEFAULT)_)/;

function clearProviderEnv(): void {
  for (const key of Object.keys(process.env)) if (PROVIDER_VARS.test(key)) delete process.env[key];
  resetProviders();
}

/** A deployment whose provider settings are in its config, none in this process's environment. */
async function deploy(kind: StoreKind, vars: Record<string, string>): Promise<TestEnv> {
  clearProviderEnv();
  return TestEnv.create(kind, vars);
}

const MINUTE = 60_000;
const minuteOf = (ms: number) => Math.floor(ms / MINUTE);

beforeAll(async () => {
  fake = await startFakeAi();
  dir = mkdtempSync(join(tmpdir(), 'aiecs-providers-e2e-'));
});
afterAll(async () => {
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
  resetProviders();
  await fake?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let unique = 0;
const fresh = (base: string) => `${base}-e2e${++unique}`;

const chat = (
  context: Record<string, unknown>,
  inputData: Record<string, unknown> = { prompt: 'hello' },
): TaskRequest => ({
  taskName: 'chat',
  userId: 'user-1',
  mode: 'chat',
  service: 'llm_chat',
  inputData,
  context,
});

const submit = (app: AiecsApp, queue: QueueKind, request: TaskRequest, options = {}) =>
  queue === 'fast_tasks'
    ? app.executeTask.delay(request, options)
    : app.executeHeavyTask.delay(request, options);

/** Collects the `stream` events of one queue, per task. */
async function streamCollector(app: AiecsApp, queue: QueueKind) {
  const store = await app.store();
  const events = store.createQueueEvents(queue);
  const deltas = new Map<string, Array<{ seq: number; delta: string }>>();
  events.on('stream' as 'progress', (e: unknown) => {
    const event = e as { task_id: string; seq: number | string; delta: string };
    const list = deltas.get(event.task_id) ?? [];
    list.push({ seq: Number(event.seq), delta: event.delta });
    deltas.set(event.task_id, list);
  });
  await events.waitUntilReady();
  await sleep(200);
  return {
    text: (id: string) => (deltas.get(id) ?? []).map((d) => d.delta).join(''),
    seqs: (id: string) => (deltas.get(id) ?? []).map((d) => d.seq),
    close: () => events.close(),
  };
}

const totalsOf = (record: TaskRecord) => record.resources!.totals;

describe.each(['redis', 'embedded', 'postgres'] as const)('AI services on %s', (kind) => {
  let env: TestEnv | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  it.each(['fast_tasks', 'heavy_tasks'] as const)(
    'chat streams every token in order and records usage (%s)',
    async (queue) => {
      env = await deploy(kind, providerEnv());
      await env.worker();
      const app = env.app();
      const stream = await streamCollector(app, queue);
      const model = fresh('gpt-4o-mini');
      fake.script(model, { tokens: 60, tokenDelayMs: 2, usage: { input: 2_000, output: 60 }, delayMs: 100 });
      const handle = await submit(
        app,
        queue,
        chat({ model }, { messages: [{ role: 'user', content: 'count' }] }),
      );
      const record = await handle.get({ timeout: 30 });
      const expected = Array.from({ length: 60 }, (_, i) => `t${i} `).join('');
      expect(record.result).toMatchObject({ text: expected, provider: 'openai', finish_reason: 'stop' });
      await until(async () => stream.text(handle.id).length >= expected.length, 10_000, 'stream');
      expect(stream.text(handle.id)).toBe(expected);
      const seqs = stream.seqs(handle.id);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      await stream.close();
      const usage = record.resources!.model_usage;
      expect(usage).toHaveLength(1);
      expect(usage[0]).toMatchObject({ provider: 'openai', model, input_tokens: 2_000, output_tokens: 60 });
      // gpt-4o-mini: $0.15 / $0.6 per 1M tokens.
      expect(usage[0]!.cost_usd).toBeCloseTo((2_000 * 0.15 + 60 * 0.6) / 1e6, 12);
      // The server held its answer back 100 ms: the stored latency covers at least that.
      expect(usage[0]!.latency_ms).toBeGreaterThanOrEqual(100);
      expect(totalsOf(record)).toMatchObject({ input_tokens: 2_000, output_tokens: 60 });
    },
  );

  it('generates a document in a child process on Vertex, summing the cost of every call', async () => {
    env = await deploy(kind, providerEnv());
    await env.worker();
    const app = env.app();
    const stream = await streamCollector(app, 'heavy_tasks');
    const model = fresh('gemini-2.0-flash');
    fake.script(model, {
      usage: { input: 100_000, output: 10_000 },
      reply: (r) => {
        const system = r.messages.find((m) => m.role === 'system')?.content ?? '';
        if (system.includes('plan documents'))
          return '{"title": "AI Development Trends", "sections": ["Introduction", "Outlook"]}';
        if (system.includes('reference lists')) return '1. Smith (2021). Scaling laws.';
        return 'Section text [Smith 2021].';
      },
    });
    const handle = await app.executeHeavyTask.delay({
      taskName: 'generate_document',
      userId: 'user-1',
      mode: 'document',
      service: 'doc_generator',
      inputData: { topic: 'AI development trends', length: '600 words', style: 'academic paper' },
      context: { template: 'academic', references: true, citations: true, model },
    });
    const record = await handle.get({ timeout: 30 });
    const doc = record.result as { title: string; outline: string[]; markdown: string; sections: unknown[] };
    expect(doc.title).toBe('AI Development Trends');
    expect(doc.outline).toEqual(['Introduction', 'Outlook']);
    expect(doc.markdown).toContain('## References\n\n1. Smith (2021). Scaling laws.');
    expect(record.worker).toContain(`:${process.pid}:`); // the worker is here, the call ran in its child
    // Outline, two sections, references: four calls, each with a bearer token from the fake OAuth endpoint.
    const calls = fake.requestsFor(model);
    expect(calls).toHaveLength(4);
    expect(calls.every((c) => c.headers.authorization === `Bearer ${fake.accessToken}`)).toBe(true);
    const usage = record.resources!.model_usage;
    expect(usage).toHaveLength(4);
    expect(usage.every((u) => u.provider === 'vertex' && u.model === model)).toBe(true);
    // gemini-2.0-flash: $0.15 / $0.6 per 1M tokens → $0.021 per call.
    expect(totalsOf(record)).toEqual({ input_tokens: 400_000, output_tokens: 40_000, cost_usd: 0.084 });
    expect(record.progress).toBe(100);
    await until(async () => stream.text(handle.id).trim() === doc.markdown.trim(), 10_000, 'document stream');
    await stream.close();
  });

  it('analyzes text with the model the context names', async () => {
    env = await deploy(kind, providerEnv());
    await env.worker();
    const app = env.app();
    const model = fresh('grok-3-mini');
    fake.script(model, {
      reply: 'Here it is: {"summary": "Praise.", "sentiment": {"label": "positive", "reasons": ["love"]}}',
    });
    const record = await (
      await app.executeTask.delay({
        taskName: 'analyze_text',
        userId: 'user-1',
        mode: 'chat',
        service: 'text_analyzer',
        inputData: { text: 'I love this. It is wonderful and works great.' },
        context: { language: 'en', provider: 'xai', model },
      })
    ).get({ timeout: 30 });
    expect(record.result).toMatchObject({
      sentiment: { label: 'positive' },
      llm: { summary: 'Praise.', sentiment: { label: 'positive', reasons: ['love'] }, provider: 'xai' },
    });
    expect(record.resources!.model_usage).toHaveLength(1);
  });

  it('waits out a 429 as long as Retry-After asks, then succeeds', async () => {
    env = await deploy(kind, providerEnv());
    await env.worker();
    const app = env.app();
    const model = fresh('grok-3-mini');
    fake.script(model, { reply: 'done', failFirst: [{ status: 429, retryAfter: '1' }] });
    const record = await (await app.executeTask.delay(chat({ model }))).get({ timeout: 30 });
    expect(record).toMatchObject({
      status: 'completed',
      attempt: 1,
      result: { text: 'done', provider: 'xai' },
    });
    const [refused, served] = fake.requestsFor(model);
    expect(refused!.status).toBe(429);
    expect(served!.receivedAt - refused!.respondedAt!).toBeGreaterThanOrEqual(1000);
  });

  it('retries a 500 within the call', async () => {
    env = await deploy(kind, providerEnv());
    await env.worker();
    const app = env.app();
    const model = fresh('gpt-4o');
    fake.script(model, { reply: 'ok', failFirst: [{ status: 500 }] });
    const record = await (await app.executeHeavyTask.delay(chat({ model }))).get({ timeout: 30 });
    expect(record).toMatchObject({ status: 'completed', attempt: 1 });
    expect(fake.requestsFor(model).map((r) => r.status)).toEqual([500, 200]);
  });

  it('hands exhausted in-call retries to the task-level retry, and fails with E005 when that is used up', async () => {
    env = await deploy(kind, providerEnv({ AIECS_PROVIDER_MAX_RETRIES: '1' }));
    await env.worker();
    const app = env.app();
    const once = fresh('gpt-4o');
    fake.script(once, { alwaysFail: { status: 500, message: 'overloaded' } });
    const failed = await app.executeTask.delay(chat({ model: once }), { attempts: 1 });
    const error = await failed.get({ timeout: 30 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect((error as TaskFailedError).remote).toMatchObject({
      type: 'RetriesExhaustedError',
      code: 'E005',
      details: { attempts: 1, last_error: { type: 'ProviderUnavailableError' } },
    });
    expect((error as TaskFailedError).remote.message).toContain('overloaded');
    expect(fake.requestsFor(once)).toHaveLength(2);

    const twice = fresh('gpt-4o');
    fake.script(twice, { alwaysFail: { status: 503, retryAfterMs: '30' } });
    const retried = await app.executeHeavyTask.delay(chat({ model: twice }), { attempts: 2 });
    await expect(retried.get({ timeout: 30 })).rejects.toBeInstanceOf(TaskFailedError);
    expect(await retried.status()).toMatchObject({ status: 'failed', attempt: 2, error: { code: 'E005' } });
    expect(fake.requestsFor(twice)).toHaveLength(4); // 2 attempts × (1 + 1 in-call retry)
  });

  it.each(['fast_tasks', 'heavy_tasks'] as const)(
    'cancel mid-stream closes the HTTP connection and ends the task cancelled, with its streamed tokens recorded (%s)',
    async (queue) => {
      // A grace long enough that a busy machine does not kill the child before it reports its usage.
      env = await deploy(kind, providerEnv({ AIECS_CANCEL_GRACE_MS: '10000' }));
      await env.worker();
      const app = env.app();
      const model = fresh('gpt-4o-mini');
      fake.script(model, { tokens: 100_000, tokenDelayMs: 5 });
      const handle = await submit(app, queue, chat({ model }));
      const request = await until(
        async () => fake.requestsFor(model).find((r) => r.tokensSent >= 5),
        20_000,
        'streaming request',
      );
      await handle.cancel();
      await expect(handle.get({ timeout: 20 })).rejects.toBeInstanceOf(TaskCancelledError);
      await until(async () => request.clientClosed, 10_000, 'connection closed');
      expect(request.socket.destroyed).toBe(true);
      expect(request.tokensSent).toBeLessThan(100_000);
      const record = await handle.status();
      expect(record).toMatchObject({ status: 'cancelled', error: { code: 'E004' } });
      // Billed tokens though no usage came back: an estimate, summed into the totals.
      const usage = record.resources!.model_usage;
      expect(usage).toHaveLength(1);
      expect(usage[0]).toMatchObject({ provider: 'openai', model, estimated: true });
      expect(usage[0]!.output_tokens).toBeGreaterThan(0);
      expect(usage[0]!.cost_usd).toBeGreaterThan(0);
      expect(totalsOf(record).output_tokens).toBe(usage[0]!.output_tokens);
    },
  );

  it('a soft time limit aborts a stalled request itself and ends the task timed out', async () => {
    env = await deploy(kind, providerEnv());
    await env.worker();
    const app = env.app();
    const model = fresh('gpt-4o-mini');
    fake.script(model, { tokens: 10, stall: true, stallAfterTokens: 3 });
    const handle = await app.executeTask.delay(chat({ model }), { softTimeLimit: 0.5, timeLimit: 10 });
    await expect(handle.get({ timeout: 20 })).rejects.toMatchObject({ code: 'TASK_TIMEOUT', limit: 'soft' });
    const [request] = fake.requestsFor(model);
    await until(async () => request!.clientClosed, 10_000, 'connection closed');
    expect(await handle.status()).toMatchObject({ status: 'timed_out', error: { code: 'E002' } });
  });

  it('fails at once, naming the variable, when a provider has no key', async () => {
    env = await deploy(kind, {});
    await env.worker();
    const app = env.app();
    const before = fake.requests.length;
    const cases: Array<[QueueKind, TaskRequest, string]> = [
      ['fast_tasks', chat({ model: 'gpt-4o' }), 'OPENAI_API_KEY'],
      ['fast_tasks', chat({ provider: 'grok' }), 'XAI_API_KEY'],
      [
        'heavy_tasks',
        {
          taskName: 'generate_document',
          userId: 'user-1',
          mode: 'document',
          service: 'doc_generator',
          inputData: { topic: 'x' },
          context: { model: 'gemini-2.0-flash' },
        },
        'VERTEX_PROJECT_ID',
      ],
    ];
    for (const [queue, request, variable] of cases) {
      const handle = await submit(app, queue, request, { attempts: 3 });
      const error = await handle.get({ timeout: 30 }).catch((e: unknown) => e);
      expect((error as TaskFailedError).remote).toMatchObject({
        type: 'ProviderNotConfiguredError',
        code: 'E008',
        details: { variable },
      });
      expect((error as TaskFailedError).remote.message).toContain(variable);
      expect(await handle.status()).toMatchObject({ status: 'failed', attempt: 1 });
    }
    expect(fake.requests.length).toBe(before);
  });

  it('holds a provider concurrency limit across two workers and both pools', async () => {
    const vars = providerEnv({ AIECS_OPENAI_MAX_CONCURRENCY: '1' });
    env = await deploy(kind, vars);
    await env.worker();
    // One process owns the embedded store: there the second worker shares it in-process.
    if (env.shared) await env.workerProcess(vars);
    else await env.worker();
    const app = env.app();
    const model = fresh('gpt-4o-mini');
    fake.script(model, { tokens: 8, tokenDelayMs: 10 });
    fake.resetStats();
    const handles = await Promise.all(
      Array.from({ length: 8 }, (_, i) => submit(app, i % 2 ? 'fast_tasks' : 'heavy_tasks', chat({ model }))),
    );
    const records = await Promise.all(handles.map((h) => h.get({ timeout: 60 })));
    expect(records.every((r) => r.status === 'completed')).toBe(true);
    expect(fake.requestsFor(model)).toHaveLength(8);
    expect(fake.maxInFlight(model)).toBe(1);
    // Both workers took part.
    expect(new Set(records.map((r) => r.worker)).size).toBe(2);
  });

  it('runs a heavy task in a child with the keys of the worker config alone', async () => {
    env = await deploy(kind, providerEnv({ OPENAI_API_KEY: 'sk-config-only' }));
    expect(process.env.OPENAI_API_KEY).toBeUndefined();
    await env.worker();
    const app = env.app();
    const model = fresh('gpt-4o-mini');
    fake.script(model, { reply: 'from the child' });
    const record = await (await app.executeHeavyTask.delay(chat({ model }))).get({ timeout: 30 });
    expect(record).toMatchObject({
      status: 'completed',
      result: { text: 'from the child', provider: 'openai' },
    });
    expect(fake.requestsFor(model).map((r) => r.headers.authorization)).toEqual(['Bearer sk-config-only']);
  });

  it('holds a provider requests-per-minute limit across two workers and both pools', async () => {
    const limit = 3;
    env = await deploy(kind, providerEnv({ AIECS_OPENAI_RPM: String(limit) }));
    // One worker per queue: the fast one (async pool) and the heavy one (process pool) each decide
    // by the store's count alone. Separate connections to the store, except embedded (one process).
    const fastWorker = await env.worker({ worker: { queues: ['fast_tasks'] } });
    const heavyWorker = await env.worker({ worker: { queues: ['heavy_tasks'] } });
    const app = env.app();
    const model = fresh('gpt-4o-mini');
    fake.script(model, { reply: 'ok' });
    // The count is per calendar minute: start with most of one ahead, so the test ends inside it.
    const left = MINUTE - (Date.now() % MINUTE);
    if (left < 25_000) await sleep(left + 50);

    const first = await Promise.all(
      (['fast_tasks', 'fast_tasks', 'heavy_tasks'] as const).map((q) => submit(app, q, chat({ model }))),
    );
    const done = await Promise.all(first.map((h) => h.get({ timeout: 30 })));
    expect(done.map((r) => r.worker).sort()).toEqual([fastWorker.id, fastWorker.id, heavyWorker.id].sort());

    // The minute's requests are used up: the next task of each worker waits for the next minute.
    const deferred = await Promise.all(
      (['fast_tasks', 'heavy_tasks'] as const).map((q) => submit(app, q, chat({ model }))),
    );
    // llm_chat reports 5% just before its request, which asks for the slot first.
    await until(
      async () => (await Promise.all(deferred.map((h) => h.status()))).every((r) => r.progress === 5),
      30_000,
      'deferred tasks at their request',
    );
    await sleep(1_500);
    const requests = fake.requestsFor(model);
    const window = minuteOf(requests[0]!.receivedAt);
    const perMinute = new Map<number, number>();
    for (const r of requests)
      perMinute.set(minuteOf(r.receivedAt), (perMinute.get(minuteOf(r.receivedAt)) ?? 0) + 1);
    expect(Math.max(...perMinute.values())).toBeLessThanOrEqual(limit);
    expect(perMinute.get(window)).toBe(limit);
    // Still in that minute (the usual case), nothing more has started; past it, the rest may have.
    if (minuteOf(Date.now()) === window) {
      expect(requests).toHaveLength(limit);
      for (const h of deferred) expect(await h.status()).toMatchObject({ status: 'running', progress: 5 });
    }
    // Waiting for a slot ends with the task.
    for (const h of deferred) await h.cancel();
    for (const h of deferred) await expect(h.get({ timeout: 20 })).rejects.toBeInstanceOf(TaskCancelledError);
  });
});

describe('worker start-up', () => {
  let env: TestEnv | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  it('logs which providers are configured, and no key', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    env = await deploy('redis', {
      OPENAI_API_KEY: 'sk-start-up-secret',
      OPENAI_BASE_URL: fake.openaiBaseUrl,
    });
    const worker = await env.worker({ logger });
    const summary = lines.findIndex((l) => typeof l.msg === 'string' && l.msg.startsWith('AI providers:'));
    expect(lines[summary]).toMatchObject({
      level: 30,
      worker: worker.id,
      msg: 'AI providers: openai (gpt-4o-mini); not configured: xai (set XAI_API_KEY), vertex (set VERTEX_PROJECT_ID)',
      providers: [
        { name: 'openai', configured: true, default: true, endpoint: fake.openaiBaseUrl },
        { name: 'xai', configured: false, missing: 'XAI_API_KEY' },
        { name: 'vertex', configured: false, missing: 'VERTEX_PROJECT_ID' },
      ],
    });
    // Before the worker takes tasks.
    expect(summary).toBeLessThan(lines.findIndex((l) => l.msg === 'worker ready'));
    expect(JSON.stringify(lines)).not.toContain('sk-start-up-secret');
  });
});
