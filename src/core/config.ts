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
  AIECS_JWT_SECRET: z.string().optional(),
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
    vertexProjectId?: string;
    vertexLocation: string;
    googleCredentials?: string;
  };
  auth: { jwtSecret?: string; jwksUrl?: string };
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
    providers: { vertexLocation: e.VERTEX_LOCATION },
    auth: {},
  };
  const p = config.providers;
  if (e.OPENAI_API_KEY) p.openaiApiKey = e.OPENAI_API_KEY;
  if (e.OPENAI_BASE_URL) p.openaiBaseUrl = e.OPENAI_BASE_URL;
  const xai = e.XAI_API_KEY ?? e.GROK_API_KEY;
  if (xai) p.xaiApiKey = xai;
  if (e.VERTEX_PROJECT_ID) p.vertexProjectId = e.VERTEX_PROJECT_ID;
  if (e.GOOGLE_APPLICATION_CREDENTIALS) p.googleCredentials = e.GOOGLE_APPLICATION_CREDENTIALS;
  if (e.AIECS_JWT_SECRET) config.auth.jwtSecret = e.AIECS_JWT_SECRET;
  if (e.AIECS_JWKS_URL) config.auth.jwksUrl = e.AIECS_JWKS_URL;
  return config;
}
