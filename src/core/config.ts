import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { FAST_QUEUE, HEAVY_QUEUE, type QueueKind } from './task.js';

/**
 * Every setting from the environment, parsed by one schema. Seed names work as documented;
 * new settings use the AIECS_ prefix. Defaults live here and nowhere else.
 */

export type PoolKind = 'async' | 'process';

const positiveSeconds = z.coerce.number().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const positiveInt = z.coerce.number().int().min(1);

/** `4` (every queue) or `fast_tasks=200,heavy_tasks=4`. */
export function parsePerQueue<T>(
  raw: string,
  parseValue: (v: string) => T | undefined,
  expected: string,
): Partial<Record<QueueKind, T>> {
  const out: Partial<Record<QueueKind, T>> = {};
  const text = raw.trim();
  if (!text.includes('=')) {
    const v = parseValue(text);
    if (v === undefined) throw new Error(`expected ${expected}`);
    return { [FAST_QUEUE]: v, [HEAVY_QUEUE]: v };
  }
  for (const part of text.split(',')) {
    const [name, value, ...rest] = part.split('=').map((s) => s.trim());
    if (rest.length || (name !== FAST_QUEUE && name !== HEAVY_QUEUE) || value === undefined) {
      throw new Error(`expected ${expected} or ${FAST_QUEUE}=…,${HEAVY_QUEUE}=…; got "${part}"`);
    }
    const v = parseValue(value);
    if (v === undefined) throw new Error(`expected ${expected} for ${name}; got "${value}"`);
    out[name] = v;
  }
  return out;
}

const parseIntValue = (v: string) => (/^\d+$/.test(v) && Number(v) >= 1 ? Number(v) : undefined);
const parsePoolValue = (v: string) => (v === 'async' || v === 'process' ? v : undefined);

const envSchema = z.object({
  AIECS_BROKER_URL: z.string().min(1).optional(),
  CELERY_BROKER_URL: z.string().min(1).optional(),
  REDIS_URL: z.string().min(1).optional(),
  CORS_ALLOWED_ORIGINS: z.string().default('http://localhost:3000,http://localhost:3001'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  AIECS_HOST: z.string().default('127.0.0.1'),
  AIECS_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),

  CELERY_TASK_SOFT_TIME_LIMIT: positiveSeconds.default(300),
  CELERY_TASK_TIME_LIMIT: positiveSeconds.default(600),
  CELERY_WORKER_CONCURRENCY: z.string().optional(),
  CELERY_WORKER_PREFETCH_MULTIPLIER: positiveInt.default(1),
  AIECS_WORKER_POOL: z.string().optional(),
  AIECS_MAX_TASKS_PER_CHILD: nonNegativeInt.default(0),
  AIECS_MAX_MEMORY_PER_CHILD: nonNegativeInt.default(0),
  AIECS_SERVICES: z.string().optional(),

  AIECS_MAX_INPUT_BYTES: positiveInt.default(1024 * 1024),
  AIECS_TASK_MAX_ATTEMPTS: positiveInt.max(100).default(3),
  AIECS_RETRY_BACKOFF_MS: positiveInt.default(1000),
  AIECS_LOCK_DURATION_MS: positiveInt.min(1000).default(20_000),
  AIECS_STALLED_INTERVAL_MS: positiveInt.min(500).default(5_000),
  AIECS_CANCEL_GRACE_MS: nonNegativeInt.default(5_000),
  AIECS_SHUTDOWN_TIMEOUT_S: positiveSeconds.default(30),
  AIECS_HEARTBEAT_INTERVAL_MS: positiveInt.min(100).default(5_000),
  AIECS_RETENTION_COMPLETED_S: positiveInt.default(86_400),
  AIECS_RETENTION_FAILED_S: positiveInt.default(7 * 86_400),

  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.string().url().optional(),
  XAI_API_KEY: z.string().optional(),
  GROK_API_KEY: z.string().optional(),
  VERTEX_PROJECT_ID: z.string().optional(),
  VERTEX_LOCATION: z.string().default('us-central1'),
  GOOGLE_APPLICATION_CREDENTIALS: z.string().optional(),
  AIECS_XAI_BASE_URL: z.string().url().default('https://api.x.ai/v1'),
  AIECS_VERTEX_BASE_URL: z.string().url().optional(),
  AIECS_DEFAULT_PROVIDER: z.enum(['openai', 'xai', 'vertex']).default('openai'),
  AIECS_DEFAULT_MODEL: z.string().min(1).optional(),
  AIECS_OPENAI_MODEL: z.string().min(1).default('gpt-4o-mini'),
  AIECS_XAI_MODEL: z.string().min(1).default('grok-3-mini'),
  AIECS_VERTEX_MODEL: z.string().min(1).default('gemini-2.0-flash'),
  AIECS_MODEL_PRICES: z
    .string()
    .optional()
    .transform((raw, ctx): Record<string, { input: number; output: number }> => {
      if (raw === undefined || raw.trim() === '') return {};
      const expected = 'expected JSON {"model": {"input": USD per 1M tokens, "output": USD per 1M tokens}}';
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        ctx.addIssue({ code: 'custom', message: `${expected}; not JSON` });
        return z.NEVER;
      }
      const price = z.strictObject({ input: z.number().min(0), output: z.number().min(0) });
      const parsed = z.record(z.string().min(1), price).safeParse(json);
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', message: expected });
        return z.NEVER;
      }
      return parsed.data;
    }),
  AIECS_PROVIDER_MAX_RETRIES: nonNegativeInt.max(20).default(2),
  AIECS_PROVIDER_RETRY_BASE_MS: positiveInt.default(500),
  AIECS_PROVIDER_RETRY_MAX_WAIT_MS: positiveInt.default(30_000),
  AIECS_PROVIDER_TIMEOUT_MS: positiveInt.default(120_000),
  AIECS_OPENAI_MAX_CONCURRENCY: nonNegativeInt.default(50),
  AIECS_OPENAI_RPM: nonNegativeInt.default(3000),
  AIECS_XAI_MAX_CONCURRENCY: nonNegativeInt.default(50),
  AIECS_XAI_RPM: nonNegativeInt.default(3000),
  AIECS_VERTEX_MAX_CONCURRENCY: nonNegativeInt.default(50),
  AIECS_VERTEX_RPM: nonNegativeInt.default(3000),
  AIECS_JWT_SECRET: z.string().optional(),
  AIECS_RATE_LIMIT_PER_S: z.coerce.number().min(0).default(50),
  AIECS_RATE_LIMIT_BURST: positiveInt.default(100),
  AIECS_WS_MAX_MESSAGE_BYTES: positiveInt.default(64 * 1024),
  AIECS_WS_MAX_BUFFERED_PACKETS: positiveInt.default(5_000),
  AIECS_WS_MAX_BUFFERED_BYTES: positiveInt.default(8 * 1024 * 1024),
  AIECS_WS_MESSAGES_PER_S: positiveInt.default(20),
  AIECS_JWKS_URL: z.string().url().optional(),
});

export type EnvInput = Record<string, string | undefined>;

export interface WorkerSettings {
  queues: QueueKind[];
  concurrency: Record<QueueKind, number>;
  pool: Record<QueueKind, PoolKind>;
  maxTasksPerChild: number;
  maxMemoryPerChildKiB: number;
  services: string[];
  prefetchMultiplier: number;
}

export interface AiecsConfig {
  brokerUrl: string;
  corsOrigins: string[];
  port: number;
  host: string;
  logLevel: string;
  softTimeLimitS: number;
  timeLimitS: number;
  worker: WorkerSettings;
  maxInputBytes: number;
  maxAttempts: number;
  retryBackoffMs: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  cancelGraceMs: number;
  shutdownTimeoutS: number;
  heartbeatIntervalMs: number;
  retention: { completedS: number; failedS: number };
  providers: {
    openaiApiKey?: string;
    openaiBaseUrl?: string;
    xaiApiKey?: string;
    xaiBaseUrl: string;
    vertexProjectId?: string;
    vertexLocation: string;
    /** Endpoint override for Vertex AI (private endpoints, tests). */
    vertexBaseUrl?: string;
    googleCredentials?: string;
    /** Used when a task names neither a provider nor a model the provider can be told from. */
    defaultProvider: 'openai' | 'xai' | 'vertex';
    /** The model used for each provider when a task names none. */
    defaultModels: Record<'openai' | 'xai' | 'vertex', string>;
    /** AIECS_MODEL_PRICES (USD per 1M tokens), merged over the built-in price table. */
    modelPrices: Record<string, { input: number; output: number }>;
    /** Retries inside one call (429, 5xx, network, timeouts) before the task-level retry takes over. */
    maxRetries: number;
    retryBaseMs: number;
    /** Longest wait between in-call retries; a longer Retry-After goes to the task-level retry. */
    retryMaxWaitMs: number;
    /** Per HTTP request, streams included. */
    timeoutMs: number;
    /** Per provider, across every worker on the store; 0 = unlimited. */
    limits: Record<'openai' | 'xai' | 'vertex', { concurrency: number; perMinute: number }>;
  };
  auth: { jwtSecret?: string; jwksUrl?: string };
  gateway: {
    /** Requests per second per user on one gateway node (0 = no limit). */
    rateLimitPerS: number;
    rateLimitBurst: number;
    wsMaxMessageBytes: number;
    wsMaxBufferedPackets: number;
    wsMaxBufferedBytes: number;
    wsMessagesPerS: number;
  };
}

export const DEFAULT_BROKER_URL = 'embedded:./.aiecs/data';
export const DEFAULT_FAST_CONCURRENCY = 100;

/** Parses the environment; throws ConfigError naming the variable, its value and what is allowed. */
export function loadConfig(env: EnvInput = process.env): AiecsConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      return `${name}=${JSON.stringify(env[name] ?? '')}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${messages.join('; ')}`, { issues: messages });
  }
  const e = parsed.data;
  if (e.CELERY_TASK_SOFT_TIME_LIMIT > e.CELERY_TASK_TIME_LIMIT) {
    throw new ConfigError(
      `CELERY_TASK_SOFT_TIME_LIMIT=${e.CELERY_TASK_SOFT_TIME_LIMIT} must not exceed CELERY_TASK_TIME_LIMIT=${e.CELERY_TASK_TIME_LIMIT}`,
    );
  }
  const perQueue = <T>(
    name: string,
    raw: string | undefined,
    parse: (v: string) => T | undefined,
    what: string,
  ) => {
    if (raw === undefined || raw.trim() === '') return {};
    try {
      return parsePerQueue(raw, parse, what);
    } catch (error) {
      throw new ConfigError(`${name}=${JSON.stringify(raw)}: ${(error as Error).message}`);
    }
  };
  const concurrency = perQueue(
    'CELERY_WORKER_CONCURRENCY',
    e.CELERY_WORKER_CONCURRENCY,
    parseIntValue,
    'a whole number >= 1',
  );
  const pool = perQueue('AIECS_WORKER_POOL', e.AIECS_WORKER_POOL, parsePoolValue, 'async or process');

  const config: AiecsConfig = {
    brokerUrl: e.AIECS_BROKER_URL ?? e.CELERY_BROKER_URL ?? e.REDIS_URL ?? DEFAULT_BROKER_URL,
    corsOrigins: e.CORS_ALLOWED_ORIGINS.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    port: e.PORT,
    host: e.AIECS_HOST,
    logLevel: e.AIECS_LOG_LEVEL,
    softTimeLimitS: e.CELERY_TASK_SOFT_TIME_LIMIT,
    timeLimitS: e.CELERY_TASK_TIME_LIMIT,
    worker: {
      queues: [FAST_QUEUE, HEAVY_QUEUE],
      concurrency: {
        [FAST_QUEUE]: concurrency[FAST_QUEUE] ?? DEFAULT_FAST_CONCURRENCY,
        [HEAVY_QUEUE]: concurrency[HEAVY_QUEUE] ?? Math.max(1, availableParallelism()),
      },
      pool: { [FAST_QUEUE]: pool[FAST_QUEUE] ?? 'async', [HEAVY_QUEUE]: pool[HEAVY_QUEUE] ?? 'process' },
      maxTasksPerChild: e.AIECS_MAX_TASKS_PER_CHILD,
      maxMemoryPerChildKiB: e.AIECS_MAX_MEMORY_PER_CHILD,
      services: (e.AIECS_SERVICES ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      prefetchMultiplier: e.CELERY_WORKER_PREFETCH_MULTIPLIER,
    },
    maxInputBytes: e.AIECS_MAX_INPUT_BYTES,
    maxAttempts: e.AIECS_TASK_MAX_ATTEMPTS,
    retryBackoffMs: e.AIECS_RETRY_BACKOFF_MS,
    lockDurationMs: e.AIECS_LOCK_DURATION_MS,
    stalledIntervalMs: e.AIECS_STALLED_INTERVAL_MS,
    cancelGraceMs: e.AIECS_CANCEL_GRACE_MS,
    shutdownTimeoutS: e.AIECS_SHUTDOWN_TIMEOUT_S,
    heartbeatIntervalMs: e.AIECS_HEARTBEAT_INTERVAL_MS,
    retention: { completedS: e.AIECS_RETENTION_COMPLETED_S, failedS: e.AIECS_RETENTION_FAILED_S },
    providers: {
      xaiBaseUrl: e.AIECS_XAI_BASE_URL,
      vertexLocation: e.VERTEX_LOCATION,
      defaultProvider: e.AIECS_DEFAULT_PROVIDER,
      defaultModels: {
        openai: e.AIECS_OPENAI_MODEL,
        xai: e.AIECS_XAI_MODEL,
        vertex: e.AIECS_VERTEX_MODEL,
        // AIECS_DEFAULT_MODEL is the default provider's model.
        ...(e.AIECS_DEFAULT_MODEL ? { [e.AIECS_DEFAULT_PROVIDER]: e.AIECS_DEFAULT_MODEL } : {}),
      },
      modelPrices: e.AIECS_MODEL_PRICES,
      maxRetries: e.AIECS_PROVIDER_MAX_RETRIES,
      retryBaseMs: e.AIECS_PROVIDER_RETRY_BASE_MS,
      retryMaxWaitMs: e.AIECS_PROVIDER_RETRY_MAX_WAIT_MS,
      timeoutMs: e.AIECS_PROVIDER_TIMEOUT_MS,
      limits: {
        openai: { concurrency: e.AIECS_OPENAI_MAX_CONCURRENCY, perMinute: e.AIECS_OPENAI_RPM },
        xai: { concurrency: e.AIECS_XAI_MAX_CONCURRENCY, perMinute: e.AIECS_XAI_RPM },
        vertex: { concurrency: e.AIECS_VERTEX_MAX_CONCURRENCY, perMinute: e.AIECS_VERTEX_RPM },
      },
    },
    auth: {},
    gateway: {
      rateLimitPerS: e.AIECS_RATE_LIMIT_PER_S,
      rateLimitBurst: e.AIECS_RATE_LIMIT_BURST,
      wsMaxMessageBytes: e.AIECS_WS_MAX_MESSAGE_BYTES,
      wsMaxBufferedPackets: e.AIECS_WS_MAX_BUFFERED_PACKETS,
      wsMaxBufferedBytes: e.AIECS_WS_MAX_BUFFERED_BYTES,
      wsMessagesPerS: e.AIECS_WS_MESSAGES_PER_S,
    },
  };
  const p = config.providers;
  if (e.OPENAI_API_KEY) p.openaiApiKey = e.OPENAI_API_KEY;
  if (e.OPENAI_BASE_URL) p.openaiBaseUrl = e.OPENAI_BASE_URL;
  const xai = e.XAI_API_KEY ?? e.GROK_API_KEY;
  if (xai) p.xaiApiKey = xai;
  if (e.VERTEX_PROJECT_ID) p.vertexProjectId = e.VERTEX_PROJECT_ID;
  if (e.GOOGLE_APPLICATION_CREDENTIALS) p.googleCredentials = e.GOOGLE_APPLICATION_CREDENTIALS;
  if (e.AIECS_VERTEX_BASE_URL) p.vertexBaseUrl = e.AIECS_VERTEX_BASE_URL;
  if (e.AIECS_JWT_SECRET) config.auth.jwtSecret = e.AIECS_JWT_SECRET;
  if (e.AIECS_JWKS_URL) config.auth.jwksUrl = e.AIECS_JWKS_URL;
  return config;
}
