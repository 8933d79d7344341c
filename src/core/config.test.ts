import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { ConfigError } from './errors.js';

/** The message loadConfig throws for one environment. */
function failure(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('uses the defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config.port).toBe(8000);
    expect(config.logLevel).toBe('info');
    expect(config.maxAttempts).toBe(3);
    expect(config.providers.xaiBaseUrl).toBe('https://api.x.ai/v1');
    expect(config.providers.modelPrices).toEqual({});
  });

  it('reads the workflow limits, 10,000 tasks and 32 levels by default', () => {
    expect(loadConfig({})).toMatchObject({ workflowMaxTasks: 10_000, workflowMaxDepth: 32 });
    const config = loadConfig({ AIECS_WORKFLOW_MAX_TASKS: '50', AIECS_WORKFLOW_MAX_DEPTH: '3' });
    expect(config).toMatchObject({ workflowMaxTasks: 50, workflowMaxDepth: 3 });
    expect(failure({ AIECS_WORKFLOW_MAX_DEPTH: '0' })).toMatch(/AIECS_WORKFLOW_MAX_DEPTH/);
  });

  it('coerces numbers as Number() does and trims URLs', () => {
    const config = loadConfig({
      PORT: '0x10',
      AIECS_RATE_LIMIT_PER_S: '2.5',
      AIECS_TASK_MAX_ATTEMPTS: ' 7 ',
      OPENAI_BASE_URL: ' http://127.0.0.1:9/v1 ',
    });
    expect(config.port).toBe(16);
    expect(config.gateway.rateLimitPerS).toBe(2.5);
    expect(config.maxAttempts).toBe(7);
    expect(config.providers.openaiBaseUrl).toBe('http://127.0.0.1:9/v1');
  });

  // The messages are zod's own: one zod schema parses the environment.
  it.each([
    [{ PORT: 'abc' }, 'PORT="abc": Invalid input: expected number, received NaN'],
    [{ PORT: '1e400' }, 'PORT="1e400": Invalid input: expected number, received Infinity'],
    [{ PORT: '1.5' }, 'PORT="1.5": Invalid input: expected int, received number'],
    [{ PORT: '70000' }, 'PORT="70000": Too big: expected number to be <=65535'],
    [{ CELERY_TASK_TIME_LIMIT: '0' }, 'CELERY_TASK_TIME_LIMIT="0": Too small: expected number to be >0'],
    [
      { AIECS_LOCK_DURATION_MS: '0' },
      'AIECS_LOCK_DURATION_MS="0": Too small: expected number to be >=1; ' +
        'AIECS_LOCK_DURATION_MS="0": Too small: expected number to be >=1000',
    ],
    [
      { AIECS_TASK_MAX_ATTEMPTS: '9007199254740993' },
      'AIECS_TASK_MAX_ATTEMPTS="9007199254740993": Too big: expected int to be <=9007199254740991; ' +
        'AIECS_TASK_MAX_ATTEMPTS="9007199254740993": Too big: expected number to be <=100',
    ],
    [{ AIECS_BROKER_URL: '' }, 'AIECS_BROKER_URL="": Too small: expected string to have >=1 characters'],
    [{ AIECS_JWKS_URL: 'not a url' }, 'AIECS_JWKS_URL="not a url": Invalid URL'],
    [
      { AIECS_DEFAULT_PROVIDER: 'azure' },
      'AIECS_DEFAULT_PROVIDER="azure": Invalid option: expected one of "openai"|"xai"|"vertex"',
    ],
    [
      { AIECS_MODEL_PRICES: '[]' },
      'AIECS_MODEL_PRICES="[]": expected JSON {"model": {"input": USD per 1M tokens, "output": USD per 1M tokens}}',
    ],
  ])('names the variable, its value and the rule: %j', (env, message) => {
    expect(failure(env)).toBe(`invalid configuration: ${message}`);
  });

  it('parses the structured settings: per-queue lists, prices, durations, an empty metrics port', () => {
    const config = loadConfig({
      CELERY_WORKER_CONCURRENCY: 'fast_tasks=200,heavy_tasks=4',
      AIECS_WORKER_POOL: 'async',
      AIECS_MODEL_PRICES: '{"m": {"input": 1, "output": 2.5}}',
      AIECS_JWT_MAX_TTL: '30m',
      AIECS_METRICS_PORT: '',
    });
    expect(config.worker.concurrency).toEqual({ fast_tasks: 200, heavy_tasks: 4 });
    expect(config.worker.pool).toEqual({ fast_tasks: 'async', heavy_tasks: 'async' });
    expect(config.providers.modelPrices).toEqual({ m: { input: 1, output: 2.5 } });
    expect(config.auth.maxTtlS).toBe(1800);
    expect(config.worker.metricsPort).toBeUndefined();
    expect(loadConfig({ AIECS_METRICS_PORT: '0' }).worker.metricsPort).toBe(0);
  });

  it.each([
    [
      { CELERY_WORKER_CONCURRENCY: 'fast_tasks=lots' },
      'CELERY_WORKER_CONCURRENCY="fast_tasks=lots": expected a whole number >= 1 for fast_tasks; got "lots"',
    ],
    [{ AIECS_WORKER_POOL: 'thread' }, 'AIECS_WORKER_POOL="thread": expected async or process'],
    [
      { AIECS_MODEL_PRICES: '{"m": {"input": -1, "output": 1}}' },
      'AIECS_MODEL_PRICES="{\\"m\\": {\\"input\\": -1, \\"output\\": 1}}": expected JSON {"model": {"input": USD per 1M tokens, "output": USD per 1M tokens}}',
    ],
    [
      { AIECS_MODEL_PRICES: '{' },
      'AIECS_MODEL_PRICES="{": expected JSON {"model": {"input": USD per 1M tokens, "output": USD per 1M tokens}}; not JSON',
    ],
    [
      { AIECS_JWT_MAX_TTL: '0s' },
      'AIECS_JWT_MAX_TTL="0s": expected a duration > 0: seconds, or like 90s, 30m, 1h, 7d',
    ],
    [{ AIECS_METRICS_PORT: 'x' }, 'AIECS_METRICS_PORT="x": Invalid input: expected number, received NaN'],
  ])('checks the structured settings too: %j', (env, message) => {
    expect(failure(env)).toBe(`invalid configuration: ${message}`);
  });

  it('refuses a soft time limit above the hard one', () => {
    expect(failure({ CELERY_TASK_SOFT_TIME_LIMIT: '20', CELERY_TASK_TIME_LIMIT: '10' })).toBe(
      'CELERY_TASK_SOFT_TIME_LIMIT=20 must not exceed CELERY_TASK_TIME_LIMIT=10',
    );
  });

  it('reports every bad variable, in the order of the settings', () => {
    expect(failure({ AIECS_LOG_LEVEL: 'loud', PORT: '-1' })).toBe(
      'invalid configuration: PORT="-1": Too small: expected number to be >=0; ' +
        'AIECS_LOG_LEVEL="loud": Invalid option: expected one of "trace"|"debug"|"info"|"warn"|"error"|"fatal"|"silent"',
    );
  });
});
