import { availableParallelism } from 'node:os';
import { ConfigError } from './errors.js';
import { FAST_QUEUE, HEAVY_QUEUE, type QueueKind } from './task.js';

/**
 * Every setting from the environment, parsed by one schema. Seed names work as documented;
 * new settings use the AIECS_ prefix. Defaults live here and nowhere else.
 */

export type PoolKind = 'async' | 'process';

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

/**
 * The environment is checked by hand rather than by a zod schema: every process reads it, and zod
 * alone costs a worker about 8 MB of memory. The checks and messages are zod's (v4) exactly, so
 * an error reads as it always has: each parser pushes one message per failed check.
 */
type Parser<T> = (raw: unknown, issues: string[]) => T;

/** zod's name for what it received. */
function received(value: unknown): string {
  if (typeof value === 'number') return Number.isFinite(value) ? 'number' : String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown;
    const ctor = (value as { constructor?: { name?: string } }).constructor;
    if (proto !== Object.prototype && 'constructor' in value && ctor) return String(ctor.name);
  }
  return typeof value;
}

/** A failed check's message; `abort` stops the checks after it, as zod does. */
type NumberCheck = (v: number) => { message: string; abort?: boolean } | undefined;

const int: NumberCheck = (v) => {
  if (!Number.isInteger(v)) return { message: 'Invalid input: expected int, received number', abort: true };
  if (Number.isSafeInteger(v)) return undefined;
  return v > 0
    ? { message: `Too big: expected int to be <=${Number.MAX_SAFE_INTEGER}` }
    : { message: `Too small: expected int to be >=${Number.MIN_SAFE_INTEGER}` };
};
const gt =
  (n: number): NumberCheck =>
  (v) =>
    v > n ? undefined : { message: `Too small: expected number to be >${n}` };
const gte =
  (n: number): NumberCheck =>
  (v) =>
    v >= n ? undefined : { message: `Too small: expected number to be >=${n}` };
const lte =
  (n: number): NumberCheck =>
  (v) =>
    v <= n ? undefined : { message: `Too big: expected number to be <=${n}` };

/** `z.coerce.number()` and its checks. */
function num(...checks: NumberCheck[]): Parser<number> {
  return (raw, issues) => {
    let value: unknown = raw;
    try {
      value = Number(raw);
    } catch {
      // zod keeps the input when it cannot be coerced (a symbol) and reports its type
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      issues.push(`Invalid input: expected number, received ${received(value)}`);
      return NaN;
    }
    for (const check of checks) {
      const failed = check(value);
      if (!failed) continue;
      issues.push(failed.message);
      if (failed.abort) break;
    }
    return value;
  };
}

/** `z.string()`, optionally `.min(1)` or `.url()`; a URL comes back trimmed, as zod returns it. */
function str(check?: 'nonEmpty' | 'url'): Parser<string> {
  return (raw, issues) => {
    if (typeof raw !== 'string') {
      issues.push(`Invalid input: expected string, received ${received(raw)}`);
      return '';
    }
    if (check === 'nonEmpty' && raw.length < 1)
      issues.push('Too small: expected string to have >=1 characters');
    if (check === 'url') {
      const trimmed = raw.trim();
      if (!URL.canParse(trimmed)) issues.push('Invalid URL');
      else return trimmed.replace(/[\t\n\r]/g, '');
    }
    return raw;
  };
}

function oneOf<const T extends string>(...values: T[]): Parser<T> {
  return (raw, issues) => {
    if ((values as unknown[]).includes(raw)) return raw as T;
    issues.push(`Invalid option: expected one of ${values.map((v) => `"${v}"`).join('|')}`);
    return values[0]!;
  };
}

const optional =
  <T>(parse: Parser<T>): Parser<T | undefined> =>
  (raw, issues) =>
    raw === undefined ? undefined : parse(raw, issues);
const withDefault =
  <T>(parse: Parser<T>, fallback: T): Parser<T> =>
  (raw, issues) =>
    raw === undefined ? fallback : parse(raw, issues);

const positiveSeconds = (fallback: number) => withDefault(num(gt(0)), fallback);
const nonNegativeInt = (fallback: number, ...more: NumberCheck[]) =>
  withDefault(num(int, gte(0), ...more), fallback);
const positiveInt = (fallback: number, ...more: NumberCheck[]) =>
  withDefault(num(int, gte(1), ...more), fallback);

type ModelPrices = Record<string, { input: number; output: number }>;

const isPrice = (v: unknown): v is { input: number; output: number } => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  const { input, output } = v as Record<string, unknown>;
  const ok = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  return keys.length === 2 && keys.includes('input') && keys.includes('output') && ok(input) && ok(output);
};

/** AIECS_MODEL_PRICES: a JSON object of model name to non-negative input and output prices. */
const modelPrices: Parser<ModelPrices> = (raw, issues) => {
  const text = optional(str())(raw, issues);
  if (text === undefined || text.trim() === '') return {};
  const expected = 'expected JSON {"model": {"input": USD per 1M tokens, "output": USD per 1M tokens}}';
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    issues.push(`${expected}; not JSON`);
    return {};
  }
  const entries =
    typeof json === 'object' && json !== null && !Array.isArray(json) ? Object.entries(json) : undefined;
  if (!entries?.every(([model, price]) => model.length > 0 && isPrice(price))) {
    issues.push(expected);
    return {};
  }
  const prices: ModelPrices = {};
  for (const [model, { input, output }] of entries as Array<[string, { input: number; output: number }]>)
    prices[model] = { input, output };
  return prices;
};

/** `90s`, `30m`, `1h`, `7d` or plain seconds, as `aiecs token --ttl` takes them; undefined if neither. */
export function parseDurationS(text: string): number | undefined {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** A positive duration in seconds (AIECS_JWT_MAX_TTL). */
const duration: Parser<number> = (raw, issues) => {
  const seconds = typeof raw === 'string' ? parseDurationS(raw) : undefined;
  if (seconds === undefined || seconds <= 0) {
    issues.push('expected a duration > 0: seconds, or like 90s, 30m, 1h, 7d');
    return NaN;
  }
  return seconds;
};

const envSchema = {
  AIECS_BROKER_URL: optional(str('nonEmpty')),
  CELERY_BROKER_URL: optional(str('nonEmpty')),
  REDIS_URL: optional(str('nonEmpty')),
  CORS_ALLOWED_ORIGINS: withDefault(str(), 'http://localhost:3000,http://localhost:3001'),
  PORT: withDefault(num(int, gte(0), lte(65535)), 8000),
  AIECS_HOST: withDefault(str(), '127.0.0.1'),
  AIECS_LOG_LEVEL: withDefault(oneOf('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'), 'info'),
  AIECS_LOG_FORMAT: withDefault(oneOf('auto', 'json', 'pretty'), 'auto'),
  AIECS_LOG_FILE: optional(str()),
  AIECS_MEMORY_LOG_INTERVAL_S: withDefault(num(gte(0)), 60),

  CELERY_TASK_SOFT_TIME_LIMIT: positiveSeconds(300),
  CELERY_TASK_TIME_LIMIT: positiveSeconds(600),
  CELERY_WORKER_CONCURRENCY: optional(str()),
  CELERY_WORKER_PREFETCH_MULTIPLIER: positiveInt(1),
  AIECS_WORKER_POOL: optional(str()),
  AIECS_MAX_TASKS_PER_CHILD: nonNegativeInt(0),
  AIECS_MAX_MEMORY_PER_CHILD: nonNegativeInt(0),
  AIECS_SERVICES: optional(str()),
  AIECS_BLOCKED_LOOP_EXIT_S: withDefault(num(gte(0)), 0),
  // Empty is off, as unset: Number('') would be port 0, any free port.
  AIECS_METRICS_PORT: ((raw, issues) =>
    raw === '' ? undefined : optional(num(int, gte(0), lte(65535)))(raw, issues)) as Parser<
    number | undefined
  >,
  AIECS_METRICS_TOKEN: optional(str()),

  AIECS_MAX_INPUT_BYTES: positiveInt(1024 * 1024),
  AIECS_TASK_MAX_ATTEMPTS: positiveInt(3, lte(100)),
  AIECS_RETRY_BACKOFF_MS: positiveInt(1000),
  AIECS_LOCK_DURATION_MS: positiveInt(20_000, gte(1000)),
  AIECS_STALLED_INTERVAL_MS: positiveInt(5_000, gte(500)),
  AIECS_CANCEL_GRACE_MS: nonNegativeInt(5_000),
  AIECS_SHUTDOWN_TIMEOUT_S: positiveSeconds(30),
  AIECS_HEARTBEAT_INTERVAL_MS: positiveInt(5_000, gte(100)),
  AIECS_STORE_TIMEOUT_MS: positiveInt(5_000, gte(100)),
  AIECS_RETENTION_COMPLETED_S: positiveInt(86_400),
  AIECS_RETENTION_FAILED_S: positiveInt(7 * 86_400),

  OPENAI_API_KEY: optional(str()),
  OPENAI_BASE_URL: optional(str('url')),
  XAI_API_KEY: optional(str()),
  GROK_API_KEY: optional(str()),
  VERTEX_PROJECT_ID: optional(str()),
  VERTEX_LOCATION: withDefault(str(), 'us-central1'),
  GOOGLE_APPLICATION_CREDENTIALS: optional(str()),
  AIECS_XAI_BASE_URL: withDefault(str('url'), 'https://api.x.ai/v1'),
  AIECS_VERTEX_BASE_URL: optional(str('url')),
  AIECS_DEFAULT_PROVIDER: withDefault(oneOf('openai', 'xai', 'vertex'), 'openai'),
  AIECS_DEFAULT_MODEL: optional(str('nonEmpty')),
  AIECS_OPENAI_MODEL: withDefault(str('nonEmpty'), 'gpt-4o-mini'),
  AIECS_XAI_MODEL: withDefault(str('nonEmpty'), 'grok-3-mini'),
  AIECS_VERTEX_MODEL: withDefault(str('nonEmpty'), 'gemini-2.0-flash'),
  AIECS_MODEL_PRICES: modelPrices,
  AIECS_PROVIDER_MAX_RETRIES: nonNegativeInt(2, lte(20)),
  AIECS_PROVIDER_RETRY_BASE_MS: positiveInt(500),
  AIECS_PROVIDER_RETRY_MAX_WAIT_MS: positiveInt(30_000),
  AIECS_PROVIDER_TIMEOUT_MS: positiveInt(120_000),
  AIECS_OPENAI_MAX_CONCURRENCY: nonNegativeInt(50),
  AIECS_OPENAI_RPM: nonNegativeInt(3000),
  AIECS_XAI_MAX_CONCURRENCY: nonNegativeInt(50),
  AIECS_XAI_RPM: nonNegativeInt(3000),
  AIECS_VERTEX_MAX_CONCURRENCY: nonNegativeInt(50),
  AIECS_VERTEX_RPM: nonNegativeInt(3000),
  AIECS_JWT_SECRET: optional(str()),
  AIECS_RATE_LIMIT_PER_S: withDefault(num(gte(0)), 50),
  AIECS_RATE_LIMIT_BURST: positiveInt(100),
  AIECS_WS_MAX_MESSAGE_BYTES: positiveInt(64 * 1024),
  AIECS_WS_MAX_BUFFERED_PACKETS: positiveInt(5_000),
  AIECS_WS_MAX_BUFFERED_BYTES: positiveInt(8 * 1024 * 1024),
  AIECS_WS_MESSAGES_PER_S: positiveInt(20),
  AIECS_JWKS_URL: optional(str('url')),
  AIECS_JWT_AUDIENCE: optional(str()),
  AIECS_JWT_ISSUER: optional(str()),
  AIECS_JWT_ADMIN_CLAIM: withDefault(str('nonEmpty'), 'admin'),
  AIECS_JWT_MAX_TTL: withDefault(duration, 86_400),
};

type Env = { [K in keyof typeof envSchema]: ReturnType<(typeof envSchema)[K]> };

export type EnvInput = Record<string, string | undefined>;

export interface WorkerSettings {
  queues: QueueKind[];
  concurrency: Record<QueueKind, number>;
  pool: Record<QueueKind, PoolKind>;
  maxTasksPerChild: number;
  maxMemoryPerChildKiB: number;
  services: string[];
  prefetchMultiplier: number;
  /** Kill the worker once its event loop has been blocked this long (s), so its tasks run elsewhere; 0 = never. */
  blockedLoopExitS: number;
  /** Serve Prometheus metrics (and /healthz) on this port (0: any free one); undefined = off. */
  metricsPort?: number;
}

export interface AiecsConfig {
  brokerUrl: string;
  corsOrigins: string[];
  port: number;
  host: string;
  logLevel: string;
  /** AIECS_LOG_FORMAT: JSON lines, human lines, or human on a terminal (auto). */
  logFormat: 'auto' | 'json' | 'pretty';
  /** AIECS_LOG_FILE: log lines are appended to this file instead of stderr. */
  logFile?: string;
  /** AIECS_MEMORY_LOG_INTERVAL_S: a worker's "Memory usage" line every this many seconds; 0 = never. */
  memoryLogIntervalS: number;
  softTimeLimitS: number;
  timeLimitS: number;
  worker: WorkerSettings;
  maxInputBytes: number;
  /** AIECS_WORKFLOW_MAX_TASKS / AIECS_WORKFLOW_MAX_DEPTH: tasks in one workflow, nested levels (10,000, 32). */
  workflowMaxTasks?: number;
  workflowMaxDepth?: number;
  maxAttempts: number;
  retryBackoffMs: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  cancelGraceMs: number;
  shutdownTimeoutS: number;
  heartbeatIntervalMs: number;
  /** AIECS_METRICS_TOKEN: /metrics (gateway and worker) needs this bearer token, when set. */
  metricsToken?: string;
  /** How long a caller waits for the store (a request, a CLI command) before a StoreUnavailableError. */
  storeTimeoutMs: number;
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
  auth: {
    jwtSecret?: string;
    jwksUrl?: string;
    /** AIECS_JWT_AUDIENCE: a token's `aud` must name one of these, when set. */
    audience?: string[];
    /** AIECS_JWT_ISSUER: a token's `iss` must be this, when set. */
    issuer?: string;
    /** AIECS_JWT_ADMIN_CLAIM: the one claim that makes an admin (see isAdmin in gateway/auth.ts). */
    adminClaim: string;
    /** AIECS_JWT_MAX_TTL: the longest token lifetime accepted (and minted), in seconds. */
    maxTtlS: number;
  };
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
  const e: Record<string, unknown> = {};
  const messages: string[] = [];
  for (const [name, parse] of Object.entries(envSchema)) {
    const issues: string[] = [];
    e[name] = (parse as Parser<unknown>)(env[name], issues);
    for (const issue of issues) messages.push(`${name}=${JSON.stringify(env[name] ?? '')}: ${issue}`);
  }
  if (messages.length > 0) {
    throw new ConfigError(`invalid configuration: ${messages.join('; ')}`, { issues: messages });
  }
  return buildConfig(e as Env);
}

function buildConfig(e: Env): AiecsConfig {
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
    logFormat: e.AIECS_LOG_FORMAT,
    memoryLogIntervalS: e.AIECS_MEMORY_LOG_INTERVAL_S,
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
      blockedLoopExitS: e.AIECS_BLOCKED_LOOP_EXIT_S,
      ...(e.AIECS_METRICS_PORT !== undefined ? { metricsPort: e.AIECS_METRICS_PORT } : {}),
    },
    maxInputBytes: e.AIECS_MAX_INPUT_BYTES,
    maxAttempts: e.AIECS_TASK_MAX_ATTEMPTS,
    retryBackoffMs: e.AIECS_RETRY_BACKOFF_MS,
    lockDurationMs: e.AIECS_LOCK_DURATION_MS,
    stalledIntervalMs: e.AIECS_STALLED_INTERVAL_MS,
    cancelGraceMs: e.AIECS_CANCEL_GRACE_MS,
    shutdownTimeoutS: e.AIECS_SHUTDOWN_TIMEOUT_S,
    heartbeatIntervalMs: e.AIECS_HEARTBEAT_INTERVAL_MS,
    storeTimeoutMs: e.AIECS_STORE_TIMEOUT_MS,
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
    auth: { adminClaim: e.AIECS_JWT_ADMIN_CLAIM, maxTtlS: e.AIECS_JWT_MAX_TTL },
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
  if (e.AIECS_LOG_FILE) config.logFile = e.AIECS_LOG_FILE;
  if (e.AIECS_METRICS_TOKEN) config.metricsToken = e.AIECS_METRICS_TOKEN;
  if (e.AIECS_JWKS_URL) config.auth.jwksUrl = e.AIECS_JWKS_URL;
  const audience = (e.AIECS_JWT_AUDIENCE ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (audience.length > 0) config.auth.audience = audience;
  if (e.AIECS_JWT_ISSUER?.trim()) config.auth.issuer = e.AIECS_JWT_ISSUER.trim();
  return config;
}
