// The provider layer through the official SDKs (openai, @google/genai) against the fake server:
// streaming, usage and cost, retries honouring Retry-After, errors, cancel and timeouts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/core/config.js';
import { silentLogger } from '../src/core/logger.js';
import { RetryableError, TaskCancelledError, ValidationError } from '../src/core/errors.js';
import {
  ProviderError,
  ProviderNotConfiguredError,
  ProviderUnavailableError,
  describeProviders,
  llm,
  logProviderStatus,
  resetProviders,
} from '../src/providers/index.js';
import type { ProviderName, ProviderSettings } from '../src/providers/index.js';
import type { LimitSpec } from '../src/core/task-context.js';
import { createTestTaskContext } from '../src/services/test-task-context.js';
import type { FakeAiServer } from './fake-ai/server.js';
import { startFakeAi } from './fake-ai/server.js';

let fake: FakeAiServer;
let dir: string;
/** The settings a worker would pass each task: set by configure() or the test. */
let providers: ProviderSettings | undefined;

function providerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    OPENAI_API_KEY: 'sk-test',
    OPENAI_BASE_URL: fake.openaiBaseUrl,
    XAI_API_KEY: 'xai-test',
    AIECS_XAI_BASE_URL: fake.openaiBaseUrl,
    VERTEX_PROJECT_ID: 'test-project',
    VERTEX_LOCATION: 'europe-west4',
    AIECS_VERTEX_BASE_URL: fake.url,
    GOOGLE_APPLICATION_CREDENTIALS: fake.writeGoogleCredentials(dir),
    AIECS_PROVIDER_RETRY_BASE_MS: '10',
    ...extra,
  };
}

function configure(extra: Record<string, string> = {}): void {
  providers = loadConfig(providerEnv(extra)).providers;
}

beforeAll(async () => {
  fake = await startFakeAi();
  dir = mkdtempSync(join(tmpdir(), 'aiecs-providers-'));
});
afterAll(async () => {
  resetProviders();
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  providers = undefined;
  resetProviders();
});

const MODELS: Record<ProviderName, string> = {
  openai: 'gpt-4o-mini',
  xai: 'grok-3-mini',
  vertex: 'gemini-2.0-flash',
};

let unique = 0;
/** A model name of the provider's family that no other test scripts. */
const modelFor = (provider: ProviderName) => `${MODELS[provider]}-t${++unique}`;

describe.each(['openai', 'xai', 'vertex'] as const)('%s through its SDK', (provider) => {
  it('streams tokens in order and records usage and cost', async () => {
    configure();
    const model = modelFor(provider);
    fake.script(model, { tokens: 40, usage: { input: 1_000, output: 40 }, delayMs: 150 });
    const t = createTestTaskContext({ providers });
    const result = await llm(t.task, { model }).chat([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Count.' },
    ]);
    const expected = Array.from({ length: 40 }, (_, i) => `t${i} `).join('');
    expect(result).toMatchObject({ text: expected, provider, finish_reason: 'stop', attempts: 1 });
    expect(result.usage).toEqual({ input_tokens: 1_000, output_tokens: 40 });
    expect(t.streamed.join('')).toBe(expected);
    expect(t.streamed.length).toBe(40);
    expect(t.usages).toHaveLength(1);
    expect(t.usages[0]).toMatchObject({ provider, model, input_tokens: 1_000, output_tokens: 40 });
    // Priced by the model's family (a suffixed name takes its prefix's price).
    expect(t.usages[0]!.cost_usd).toBeGreaterThan(0);
    expect(t.usages[0]!.cost_usd).toBe(result.cost_usd);
    // The server held its answer back 150 ms: the recorded latency covers at least that.
    expect(t.usages[0]!.latency_ms).toBeGreaterThanOrEqual(150);
    expect(t.usages[0]!.estimated).toBeUndefined();
    const [request] = fake.requestsFor(model);
    expect(request!.stream).toBe(true);
    expect(request!.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Count.' },
    ]);
    if (provider === 'vertex') {
      expect(request!.headers.authorization).toBe(`Bearer ${fake.accessToken}`);
      expect(request!.path).toContain('/projects/test-project/locations/europe-west4/');
    } else {
      expect(request!.headers.authorization).toBe(
        provider === 'openai' ? 'Bearer sk-test' : 'Bearer xai-test',
      );
      expect((request!.body as { stream_options?: unknown }).stream_options).toEqual({ include_usage: true });
    }
  });

  it('sums the cost of two calls in one task', async () => {
    configure({ AIECS_MODEL_PRICES: JSON.stringify({ [`${provider}-priced`]: { input: 2, output: 10 } }) });
    const model = `${provider}-priced`;
    fake.script(model, { reply: 'ok', usage: { input: 500_000, output: 100_000 } });
    const t = createTestTaskContext({ providers });
    const client = llm(t.task, { provider, model });
    await client.chat('one');
    await client.chat('two');
    expect(t.usages.map((u) => u.cost_usd)).toEqual([2, 2]); // 0.5 M × $2 + 0.1 M × $10
    expect(t.usages.reduce((sum, u) => sum + (u.input_tokens ?? 0), 0)).toBe(1_000_000);
  });

  it('waits what Retry-After asks on a 429, then succeeds', async () => {
    configure();
    const model = modelFor(provider);
    fake.script(model, { reply: 'after the wait', failFirst: [{ status: 429, retryAfter: '1' }] });
    const t = createTestTaskContext({ providers });
    const result = await llm(t.task, { provider, model }).chat('hi');
    expect(result).toMatchObject({ text: 'after the wait', attempts: 2 });
    const [refused, served] = fake.requestsFor(model);
    expect(refused!.status).toBe(429);
    expect(served!.status).toBe(200);
    // Measured by the server: from the 429 leaving it to the retry reaching it.
    expect(served!.receivedAt - refused!.respondedAt!).toBeGreaterThanOrEqual(1000);
    expect(t.logs.filter((l) => l.msg === 'provider call failed; retrying')).toHaveLength(1);
    expect(t.usages).toHaveLength(1);
  });

  it('retries a 500 and succeeds', async () => {
    configure();
    const model = modelFor(provider);
    fake.script(model, { reply: 'fine now', failFirst: [{ status: 500 }, { status: 503 }] });
    const t = createTestTaskContext({ providers });
    const result = await llm(t.task, { provider, model }).chat('hi');
    expect(result).toMatchObject({ text: 'fine now', attempts: 3 });
    expect(fake.requestsFor(model).map((r) => r.status)).toEqual([500, 503, 200]);
  });

  it('throws a RetryableError with the server’s wait once in-call retries are used up', async () => {
    configure({ AIECS_PROVIDER_MAX_RETRIES: '1' });
    const model = modelFor(provider);
    fake.script(model, { alwaysFail: { status: 503, retryAfterMs: '20' } });
    const t = createTestTaskContext({ providers });
    const error = await llm(t.task, { provider, model })
      .chat('hi')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect(error).toBeInstanceOf(RetryableError);
    // Vertex error bodies carry no retry-after-ms; the header reaches us through the SDK's fetch option.
    expect(error).toMatchObject({ retryable: true, status: 503, retryAfterMs: 20 });
    expect(fake.requestsFor(model)).toHaveLength(2);
    expect(t.usages).toHaveLength(0);
  });

  it('hands a Retry-After longer than the cap straight to the task-level retry', async () => {
    configure({ AIECS_PROVIDER_RETRY_MAX_WAIT_MS: '1000' });
    const model = modelFor(provider);
    fake.script(model, { failFirst: [{ status: 429, retryAfter: '120' }] });
    const t = createTestTaskContext({ providers });
    const error = await llm(t.task, { provider, model })
      .chat('hi')
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ retryable: true, status: 429, retryAfterMs: 120_000 });
    expect(fake.requestsFor(model)).toHaveLength(1);
  });

  it.each([
    [401, /refused/],
    [403, /refused/],
    [400, /bad things/],
    [404, /bad things/],
  ])('does not retry HTTP %i', async (status, message) => {
    configure();
    const model = modelFor(provider);
    fake.script(model, { alwaysFail: { status, message: 'bad things happened' } });
    const t = createTestTaskContext({ providers });
    const error = await llm(t.task, { provider, model })
      .chat('hi')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: false, status, provider, code: 'PROVIDER_ERROR' });
    expect((error as Error).message).toMatch(message);
    expect((error as ProviderError).providerMessage).toContain('bad things happened');
    expect(fake.requestsFor(model)).toHaveLength(1);
  });

  it('aborts the HTTP request mid-stream on cancel, closing its connection, and records the streamed tokens', async () => {
    configure();
    const model = modelFor(provider);
    fake.script(model, { tokens: 1_000, tokenDelayMs: 20 });
    const t = createTestTaskContext({ providers });
    const reason = new TaskCancelledError('test-task');
    const error = await llm(t.task, { provider, model })
      .chat('hi', {
        onDelta: () => {
          if (t.streamed.length === 5) t.controller.abort(reason);
        },
      })
      .catch((e: unknown) => e);
    expect(error).toBe(reason);
    const [request] = fake.requestsFor(model);
    await expect.poll(() => request!.clientClosed).toBe(true);
    expect(request!.socket.destroyed).toBe(true);
    expect(request!.tokensSent).toBeLessThan(1_000);
    // The tokens that arrived were billed though no usage came: recorded as an estimate.
    const chars = t.streamed.join('').length;
    expect(t.usages).toHaveLength(1);
    expect(t.usages[0]).toMatchObject({
      provider,
      model,
      input_tokens: 1, // "hi"
      output_tokens: Math.ceil(chars / 4),
      estimated: true,
    });
    expect(t.usages[0]!.output_tokens).toBeGreaterThan(0);
    // Five tokens 20 ms apart reached us before the abort.
    expect(t.usages[0]!.latency_ms).toBeGreaterThanOrEqual(80);
    expect(t.usages[0]!.cost_usd).toBeGreaterThan(0);
  });

  it('times out a stalled stream, closing the connection, and calls it retryable', async () => {
    configure({ AIECS_PROVIDER_TIMEOUT_MS: '300', AIECS_PROVIDER_MAX_RETRIES: '0' });
    const model = modelFor(provider);
    fake.script(model, { tokens: 10, stall: true, stallAfterTokens: 2 });
    const t = createTestTaskContext({ providers });
    const error = await llm(t.task, { provider, model })
      .chat('hi')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as Error).message).toMatch(/timed out after 300 ms/);
    expect(t.streamed.join('')).toBe('t0 t1 ');
    const [request] = fake.requestsFor(model);
    await expect.poll(() => request!.clientClosed).toBe(true);
    // "t0 t1 " streamed before the stall: 6 characters, 2 tokens, over the 300 ms until the timeout
    // (a timer may fire a millisecond early by the clock that measures latency).
    expect(t.usages).toHaveLength(1);
    expect(t.usages[0]).toMatchObject({ provider, model, output_tokens: 2, estimated: true });
    expect(t.usages[0]!.latency_ms).toBeGreaterThanOrEqual(295);
  });

  it('does not retry in-call once text has reached the user', async () => {
    configure({ AIECS_PROVIDER_TIMEOUT_MS: '300', AIECS_PROVIDER_MAX_RETRIES: '3' });
    const model = modelFor(provider);
    fake.script(model, { tokens: 10, stall: true, stallAfterTokens: 3 });
    const t = createTestTaskContext({ providers });
    await expect(llm(t.task, { provider, model }).chat('hi')).rejects.toBeInstanceOf(RetryableError);
    expect(fake.requestsFor(model)).toHaveLength(1);
  });

  it('times out a slow response before any text and retries it', async () => {
    configure({ AIECS_PROVIDER_TIMEOUT_MS: '300', AIECS_PROVIDER_MAX_RETRIES: '1' });
    const model = modelFor(provider);
    fake.script(model, { delayMs: 2_000, reply: 'too late' });
    const t = createTestTaskContext({ providers });
    const error = await llm(t.task, { provider, model })
      .chat('hi')
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ retryable: true });
    expect(fake.requestsFor(model)).toHaveLength(2);
    for (const r of fake.requestsFor(model)) await expect.poll(() => r.clientClosed).toBe(true);
  });

  it('calls a refused connection retryable', async () => {
    const closed = await startFakeAi();
    await closed.stop(); // nothing listens on its port any more
    providers = loadConfig({
      ...providerEnv({ AIECS_PROVIDER_MAX_RETRIES: '1' }),
      OPENAI_BASE_URL: closed.openaiBaseUrl,
      AIECS_XAI_BASE_URL: closed.openaiBaseUrl,
      AIECS_VERTEX_BASE_URL: closed.url,
    }).providers;
    const t = createTestTaskContext({ providers });
    const error = await llm(t.task, { provider, model: modelFor(provider) })
      .chat('hi')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as Error).message).toMatch(/connection failed/);
    expect(t.logs.filter((l) => l.msg === 'provider call failed; retrying')).toHaveLength(1);
  });

  it('estimates usage when the server reports none', async () => {
    configure();
    const model = modelFor(provider);
    fake.script(model, { reply: 'abcdefgh', usage: false });
    const t = createTestTaskContext({ providers });
    const result = await llm(t.task, { provider, model }).chat('1234');
    expect(result.usage).toEqual({ input_tokens: 1, output_tokens: 2, estimated: true });
  });

  it('asks for JSON when told to', async () => {
    configure();
    const model = modelFor(provider);
    fake.script(model, { reply: '{"a": 1}' });
    const t = createTestTaskContext({ providers });
    await llm(t.task, { provider, model }).chat('json please', {
      responseFormat: 'json',
      temperature: 0,
      maxTokens: 50,
      stream: false,
    });
    expect(t.streamed).toEqual([]);
    const body = fake.requestsFor(model)[0]!.body as Record<string, unknown>;
    if (provider === 'vertex') {
      expect(body.generationConfig).toMatchObject({
        responseMimeType: 'application/json',
        temperature: 0,
        maxOutputTokens: 50,
      });
    } else {
      expect(body).toMatchObject({
        response_format: { type: 'json_object' },
        temperature: 0,
        max_tokens: 50,
      });
    }
  });

  it('takes a slot of the shared limit around each HTTP request, never while waiting to retry', async () => {
    configure({ AIECS_OPENAI_MAX_CONCURRENCY: '3', AIECS_XAI_RPM: '0', AIECS_VERTEX_MAX_CONCURRENCY: '0' });
    const model = modelFor(provider);
    fake.script(model, { reply: 'ok', failFirst: [{ status: 500 }] });
    const t = createTestTaskContext({ providers });
    const events: string[] = [];
    const specs: Array<[string, LimitSpec]> = [];
    Object.assign(t.task.limits, {
      acquire: async (key: string, spec: LimitSpec) => {
        specs.push([key, spec]);
        events.push(`acquire@${fake.requests.length}`);
        return () => events.push(`release@${fake.requests.length}`);
      },
    });
    await llm(t.task, { provider, model }).chat('hi');
    const expected: Record<ProviderName, LimitSpec> = {
      openai: { concurrency: 3, perMinute: 3000 },
      xai: { concurrency: 50 },
      vertex: { perMinute: 3000 },
    };
    expect(specs).toEqual([
      [`provider:${provider}`, expected[provider]],
      [`provider:${provider}`, expected[provider]],
    ]);
    expect(events.filter((e) => e.startsWith('acquire'))).toHaveLength(2);
    expect(events.map((e) => e.split('@')[0])).toEqual(['acquire', 'release', 'acquire', 'release']);
  });
});

describe('provider configuration', () => {
  it('fails at once without a key, naming the variable, and sends nothing', () => {
    providers = loadConfig({}).providers;
    const before = fake.requests.length;
    const t = createTestTaskContext({ providers });
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ model: 'gpt-4o' }, 'OPENAI_API_KEY'],
      [{}, 'OPENAI_API_KEY'],
      [{ provider: 'xai' }, 'XAI_API_KEY'],
      [{ model: 'grok-3' }, 'XAI_API_KEY'],
      [{ model: 'gemini-2.0-flash' }, 'VERTEX_PROJECT_ID'],
    ];
    for (const [context, variable] of cases) {
      let error: unknown;
      try {
        llm(t.task, context);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ProviderNotConfiguredError);
      expect(error).toMatchObject({
        code: 'PROVIDER_NOT_CONFIGURED',
        wireCode: 'E008',
        retryable: false,
        variable,
      });
      expect((error as Error).message).toContain(variable);
    }
    expect(fake.requests.length).toBe(before);
  });

  it('accepts GROK_API_KEY for xAI and sends it as the bearer token', async () => {
    providers = loadConfig({ GROK_API_KEY: 'grok-key', AIECS_XAI_BASE_URL: fake.openaiBaseUrl }).providers;
    const t = createTestTaskContext({ providers });
    expect(llm(t.task, { provider: 'xai' }).model).toBe('grok-3-mini');
    const model = modelFor('xai');
    fake.script(model, { reply: 'grok here' });
    const result = await llm(t.task, { provider: 'xai', model }).chat('hi');
    expect(result).toMatchObject({ text: 'grok here', provider: 'xai' });
    const [request] = fake.requestsFor(model);
    expect(request!.headers.authorization).toBe('Bearer grok-key');
  });

  it('refuses an unknown provider name as a validation error', () => {
    configure();
    expect(() => llm(createTestTaskContext({ providers }).task, { provider: 'claude' })).toThrow(
      ValidationError,
    );
  });

  it('reads process.env when nothing was configured, and follows changes to it', async () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { OPENAI_API_KEY: 'from-env', OPENAI_BASE_URL: fake.openaiBaseUrl });
      fake.script('gpt-env', { reply: 'env' });
      const t = createTestTaskContext({ providers });
      await llm(t.task, { model: 'gpt-env' }).chat('hi');
      expect(fake.requestsFor('gpt-env')[0]!.headers.authorization).toBe('Bearer from-env');
      delete process.env.OPENAI_API_KEY;
      expect(() => llm(t.task, { model: 'gpt-env' })).toThrow(ProviderNotConfiguredError);
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });

  it('warns once per model when it knows no price, and records cost 0', async () => {
    configure();
    fake.script('llama-local', { reply: 'hi' });
    const t = createTestTaskContext({ providers });
    const client = llm(t.task, { provider: 'openai', model: 'llama-local' });
    await client.chat('a');
    await client.chat('b');
    expect(t.usages.map((u) => u.cost_usd)).toEqual([0, 0]);
    const warnings = t.logs.filter((l) => l.level === 'warn' && /no price known/.test(l.msg ?? ''));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain('AIECS_MODEL_PRICES');
  });

  it('describes and logs which providers are configured', () => {
    const config = loadConfig({ OPENAI_API_KEY: 'k', VERTEX_PROJECT_ID: 'p', AIECS_DEFAULT_PROVIDER: 'xai' });
    expect(
      describeProviders(config).map(({ name, configured, model, default: d, missing }) => ({
        name,
        configured,
        model,
        d,
        missing,
      })),
    ).toEqual([
      { name: 'openai', configured: true, model: 'gpt-4o-mini', d: false, missing: undefined },
      { name: 'xai', configured: false, model: 'grok-3-mini', d: true, missing: 'XAI_API_KEY' },
      { name: 'vertex', configured: true, model: 'gemini-2.0-flash', d: false, missing: undefined },
    ]);
    const lines: Array<[string, unknown, string | undefined]> = [];
    logProviderStatus(
      {
        info: (obj: unknown, msg?: string) => lines.push(['info', obj, msg]),
        warn: (obj: unknown, msg?: string) => lines.push(['warn', obj, msg]),
      },
      config,
    );
    expect(lines[0]![2]).toBe(
      'AI providers: openai (gpt-4o-mini), vertex (gemini-2.0-flash); not configured: xai (set XAI_API_KEY)',
    );
    expect(lines[1]![0]).toBe('warn');
    expect(JSON.stringify(lines)).not.toContain('"k"');
    // The worker's pino logger fits.
    expect(logProviderStatus(silentLogger, config)).toHaveLength(3);
  });
});
