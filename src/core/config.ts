import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { FAST_QUEUE, HEAVY_QUEUE, type QueueKind } from './task.js';
import { DEFAULT_WORKFLOW_MAX_DEPTH, DEFAULT_WORKFLOW_MAX_TASKS } from './workflow.js';

/**
 * Every setting from the environment, parsed by one zod schema (DESIGN §4). Seed names work as
 * documented; new settings use the AIECS_ prefix. Defaults live here and nowhere else.
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

/** `90s`, `30m`, `1h`, `7d` or plain seconds, as `aiecs token --ttl` takes them; undefined if neither. */
export function parseDurationS(text: string): number | undefined {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

// Numbers are coerced as Number() does ('0x10' is 16, ' 7 ' is 7); zod writes the messages.
const num = () => z.coerce.number();
const seconds = (fallback: number) => num().gt(0).default(fallback);
const nonNegativeInt = (fallback: number, max?: number) =>
  (max === undefined ? num().int().min(0) : num().int().min(0).max(max)).default(fallback);
const positiveInt = (fallback: number, min = 1, max?: number) => {
  const base = min > 1 ? num().int().min(1).min(min) : num().int().min(1);
  return (max === undefined ? base : base.max(max)).default(fallback);
};
const port = () => num().int().min(0).max(65535);
const nonEmpty = () => z.string().min(1);

/** A custom rule's failure, reported like zod's own; `z.NEVER` stands for the value. */
function refuse(ctx: z.RefinementCtx, message: string): never {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
}

/** `4` (every queue) or `fast_tasks=200,heavy_tasks=4`; empty is unset. */
const perQueue = <T>(parseValue: (v: string) => T | undefined, expected: string) =>
  z
    .string()
    .optional()
    .transform((raw, ctx): Partial<Record<QueueKind, T>> => {
      if (raw === undefined || raw.trim() === '') return {};
      try {
        return parsePerQueue(raw, parseValue, expected);
      } catch (error) {
        return refuse(ctx, (error as Error).message);
      }
    });

const PRICES_EXPECTED = 'expected JSON {"model": {"input": USD per 1M tokens, "output": USD per 1M tokens}}';
const modelPricesJson = z.record(
  z.string().min(1),
  z.strictObject({ input: z.number().min(0), output: z.number().min(0) }),
);

/** AIECS_MODEL_PRICES: a JSON object of model name to non-negative input and output prices. */
const modelPrices = z
  .string()
  .optional()
  .transform((text, ctx): Record<string, { input: number; output: number }> => {
    if (text === undefined || text.trim() === '') return {};
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return refuse(ctx, `${PRICES_EXPECTED}; not JSON`);
    }
    const prices = modelPricesJson.safeParse(json);
    return prices.success ? prices.data : refuse(ctx, PRICES_EXPECTED);
  });

/** A positive duration in seconds (AIECS_JWT_MAX_TTL). */
const DURATION_EXPECTED = 'expected a duration > 0: seconds, or like 90s, 30m, 1h, 7d';
const duration = z.string(DURATION_EXPECTED).transform((raw, ctx) => {
  const s = parseDurationS(raw);
  return s === undefined || s <= 0 ? refuse(ctx, DURATION_EXPECTED) : s;
});

/** The environment's schema: each variable, its rule and its default, in the order errors are listed. */
const envSchema = z.object({
  AIECS_BROKER_URL: nonEmpty().optional(),
  CELERY_BROKER_URL: nonEmpty().optional(),
  REDIS_URL: nonEmpty().optional(),
  CORS_ALLOWED_ORIGINS: z.string().default('http://localhost:3000,http://localhost:3001'),
  PORT: port().default(8000),
  AIECS_HOST: z.string().default('127.0.0.1'),
  AIECS_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  AIECS_LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  AIECS_LOG_FILE: z.string().optional(),
  AIECS_MEMORY_LOG_INTERVAL_S: num().min(0).default(60),

  CELERY_TASK_SOFT_TIME_LIMIT: seconds(300),
  CELERY_TASK_TIME_LIMIT: seconds(600),
  CELERY_WORKER_CONCURRENCY: perQueue(parseIntValue, 'a whole number >= 1'),
  CELERY_WORKER_PREFETCH_MULTIPLIER: positiveInt(1),
  AIECS_WORKER_POOL: perQueue(parsePoolValue, 'async or process'),
  AIECS_MAX_TASKS_PER_CHILD: nonNegativeInt(0),
  AIECS_MAX_MEMORY_PER_CHILD: nonNegativeInt(0),
  AIECS_SERVICES: z.string().optional(),
  AIECS_BLOCKED_LOOP_EXIT_S: num().min(0).default(0),
  // Empty is off, as unset: Number('') would be port 0, any free port.
  AIECS_METRICS_PORT: z.preprocess((v) => (v === '' ? undefined : v), port().optional()),
  AIECS_METRICS_TOKEN: z.string().optional(),

  AIECS_MAX_INPUT_BYTES: positiveInt(1024 * 1024),
  AIECS_WORKFLOW_MAX_TASKS: positiveInt(DEFAULT_WORKFLOW_MAX_TASKS),
  AIECS_WORKFLOW_MAX_DEPTH: positiveInt(DEFAULT_WORKFLOW_MAX_DEPTH),
  // Empty is unset, as a path of nothing names no file.
  AIECS_TEMPLATES_FILE: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
  AIECS_TASK_MAX_ATTEMPTS: positiveInt(3, 1, 100),
  AIECS_RETRY_BACKOFF_MS: positiveInt(1000),
  AIECS_LOCK_DURATION_MS: positiveInt(20_000, 1000),
  AIECS_STALLED_INTERVAL_MS: positiveInt(5_000, 500),
  AIECS_CANCEL_GRACE_MS: nonNegativeInt(5_000),
  AIECS_SHUTDOWN_TIMEOUT_S: seconds(30),
  AIECS_HEARTBEAT_INTERVAL_MS: positiveInt(5_000, 100),
  AIECS_STORE_TIMEOUT_MS: positiveInt(5_000, 100),
  AIECS_EVENTS_MAX_LEN: positiveInt(10_000, 100),
  AIECS_EMBEDDED_OPTIMIZE: z.enum(['on', 'off']).default('off'),
  AIECS_EMBEDDED_UPKEEP_INTERVAL_S: positiveInt(15, 1, 3600),
  AIECS_RETENTION_COMPLETED_S: positiveInt(86_400),
  AIECS_RETENTION_FAILED_S: positiveInt(7 * 86_400),
  AIECS_HISTORY: z.enum(['on', 'off']).default('on'),
  AIECS_HISTORY_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL')
    .optional(),
  AIECS_HISTORY_RETENTION_DAYS: nonNegativeInt(90),
  // The Celery bridge (aiecs worker --celery): the kombu queues it takes from, kombu's visibility_timeout.
  AIECS_CELERY_QUEUES: z
    .string()
    .default('fast_tasks,heavy_tasks,celery')
    .transform((raw, ctx) => {
      const queues = raw
        .split(',')
        .map((q) => q.trim())
        .filter(Boolean);
      return queues.length > 0 ? queues : refuse(ctx, 'expected queue names, comma-separated');
    }),
  AIECS_CELERY_VISIBILITY_TIMEOUT: seconds(3600),
  // The Celery results relay: Celery's result backend (default: the Celery broker), result_expires.
  CELERY_RESULT_BACKEND: z
    .string()
    .regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL')
    .optional(),
  AIECS_CELERY_RESULT_EXPIRES: nonNegativeInt(86_400),
  AIECS_CELERY_RAISE_FAILURES: z.enum(['on', 'off']).default('off'),

  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.url().optional(),
  XAI_API_KEY: z.string().optional(),
  GROK_API_KEY: z.string().optional(),
  VERTEX_PROJECT_ID: z.string().optional(),
  VERTEX_LOCATION: z.string().default('us-central1'),
  GOOGLE_APPLICATION_CREDENTIALS: z.string().optional(),
  AIECS_XAI_BASE_URL: z.url().default('https://api.x.ai/v1'),
  AIECS_VERTEX_BASE_URL: z.url().optional(),
  AIECS_DEFAULT_PROVIDER: z.enum(['openai', 'xai', 'vertex']).default('openai'),
  AIECS_DEFAULT_MODEL: nonEmpty().optional(),
  AIECS_OPENAI_MODEL: nonEmpty().default('gpt-4o-mini'),
  AIECS_XAI_MODEL: nonEmpty().default('grok-3-mini'),
  AIECS_VERTEX_MODEL: nonEmpty().default('gemini-2.0-flash'),
  AIECS_MODEL_PRICES: modelPrices,
  AIECS_PROVIDER_MAX_RETRIES: nonNegativeInt(2, 20),
  AIECS_PROVIDER_RETRY_BASE_MS: positiveInt(500),
  AIECS_PROVIDER_RETRY_MAX_WAIT_MS: positiveInt(30_000),
  AIECS_PROVIDER_TIMEOUT_MS: positiveInt(120_000),
  AIECS_OPENAI_MAX_CONCURRENCY: nonNegativeInt(50),
  AIECS_OPENAI_RPM: nonNegativeInt(3000),
  AIECS_XAI_MAX_CONCURRENCY: nonNegativeInt(50),
  AIECS_XAI_RPM: nonNegativeInt(3000),
  AIECS_VERTEX_MAX_CONCURRENCY: nonNegativeInt(50),
  AIECS_VERTEX_RPM: nonNegativeInt(3000),
  AIECS_JWT_SECRET: z.string().optional(),
  AIECS_RATE_LIMIT_PER_S: num().min(0).default(50),
  AIECS_RATE_LIMIT_BURST: positiveInt(100),
  // Node's own default for receiving a request; Fastify turns it off (0) unless told.
  AIECS_HTTP_REQUEST_TIMEOUT_S: nonNegativeInt(300, 86_400),
  AIECS_WS_MAX_MESSAGE_BYTES: positiveInt(64 * 1024),
  AIECS_WS_MAX_BUFFERED_PACKETS: positiveInt(5_000),
  AIECS_WS_MAX_BUFFERED_BYTES: positiveInt(8 * 1024 * 1024),
  AIECS_WS_MESSAGES_PER_S: positiveInt(20),
  AIECS_JWKS_URL: z.url().optional(),
  AIECS_JWT_AUDIENCE: z.string().optional(),
  AIECS_JWT_ISSUER: z.string().optional(),
  AIECS_JWT_ADMIN_CLAIM: nonEmpty().default('admin'),
  AIECS_JWT_MAX_TTL: duration.default(86_400),
});

type Env = z.output<typeof envSchema>;

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
  /** AIECS_TEMPLATES_FILE: task templates (JSON or YAML list) every app loads; `--templates` on up and gateway. */
  templatesFile?: string;
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
  /**
   * AIECS_EVENTS_MAX_LEN: how many events each queue's event stream keeps (BullMQ's
   * streams.events.maxLen, default 10,000); how far behind the task history may fall.
   */
  eventsMaxLen: number;
  /**
   * AIECS_EMBEDDED_OPTIMIZE (off): `aiecs up` on the embedded store lets V8 optimize the database's
   * WebAssembly (TurboFan) rather than only its baseline compiler: faster under load, ~55 MB larger.
   */
  embeddedOptimize: boolean;
  /**
   * AIECS_EMBEDDED_UPKEEP_INTERVAL_S (15): how often the embedded store's owner vacuums, analyzes
   * and checkpoints its database (PGlite has no autovacuum or checkpointer; engine/pglite-upkeep.ts).
   */
  embeddedUpkeepIntervalMs: number;
  retention: { completedS: number; failedS: number };
  /**
   * The durable task history (src/engine/history): AIECS_HISTORY (on: wherever there is a PostgreSQL
   * database for it), AIECS_HISTORY_URL (its database beside a Redis store) and
   * AIECS_HISTORY_RETENTION_DAYS (90; 0 keeps it forever).
   */
  history: { enabled: boolean; url?: string; retentionDays: number };
  /**
   * The Celery bridge: CELERY_BROKER_URL as given (its broker when the store is not Redis),
   * AIECS_CELERY_QUEUES (fast_tasks,heavy_tasks,celery), AIECS_CELERY_VISIBILITY_TIMEOUT (3600 s).
   */
  celery: {
    brokerUrl?: string;
    queues: string[];
    visibilityTimeoutS: number;
    /** CELERY_RESULT_BACKEND (default: the Celery broker's URL). */
    resultBackend?: string;
    /** AIECS_CELERY_RESULT_EXPIRES: seconds a result is kept (86400, Celery's result_expires; 0 keeps it). */
    resultExpiresS: number;
    /** AIECS_CELERY_RAISE_FAILURES (off): failures as Celery FAILURE / REVOKED. */
    raiseFailures: boolean;
  };
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
    /**
     * AIECS_HTTP_REQUEST_TIMEOUT_S (300): the longest a client may take to send a whole request,
     * headers and body; then 408 and the connection closes. 0 = no limit (behind a proxy that has one).
     */
    httpRequestTimeoutMs: number;
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
      const name = String(issue.path[0]);
      return `${name}=${JSON.stringify(env[name] ?? '')}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${messages.join('; ')}`, { issues: messages });
  }
  return buildConfig(parsed.data);
}

function buildConfig(e: Env): AiecsConfig {
  if (e.CELERY_TASK_SOFT_TIME_LIMIT > e.CELERY_TASK_TIME_LIMIT) {
    throw new ConfigError(
      `CELERY_TASK_SOFT_TIME_LIMIT=${e.CELERY_TASK_SOFT_TIME_LIMIT} must not exceed CELERY_TASK_TIME_LIMIT=${e.CELERY_TASK_TIME_LIMIT}`,
    );
  }
  const concurrency = e.CELERY_WORKER_CONCURRENCY;
  const pool = e.AIECS_WORKER_POOL;

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
    workflowMaxTasks: e.AIECS_WORKFLOW_MAX_TASKS,
    workflowMaxDepth: e.AIECS_WORKFLOW_MAX_DEPTH,
    maxAttempts: e.AIECS_TASK_MAX_ATTEMPTS,
    retryBackoffMs: e.AIECS_RETRY_BACKOFF_MS,
    lockDurationMs: e.AIECS_LOCK_DURATION_MS,
    stalledIntervalMs: e.AIECS_STALLED_INTERVAL_MS,
    cancelGraceMs: e.AIECS_CANCEL_GRACE_MS,
    shutdownTimeoutS: e.AIECS_SHUTDOWN_TIMEOUT_S,
    heartbeatIntervalMs: e.AIECS_HEARTBEAT_INTERVAL_MS,
    storeTimeoutMs: e.AIECS_STORE_TIMEOUT_MS,
    eventsMaxLen: e.AIECS_EVENTS_MAX_LEN,
    embeddedOptimize: e.AIECS_EMBEDDED_OPTIMIZE === 'on',
    embeddedUpkeepIntervalMs: e.AIECS_EMBEDDED_UPKEEP_INTERVAL_S * 1000,
    retention: { completedS: e.AIECS_RETENTION_COMPLETED_S, failedS: e.AIECS_RETENTION_FAILED_S },
    history: {
      enabled: e.AIECS_HISTORY === 'on',
      retentionDays: e.AIECS_HISTORY_RETENTION_DAYS,
      ...(e.AIECS_HISTORY_URL ? { url: e.AIECS_HISTORY_URL } : {}),
    },
    celery: {
      queues: e.AIECS_CELERY_QUEUES,
      visibilityTimeoutS: e.AIECS_CELERY_VISIBILITY_TIMEOUT,
      ...(e.CELERY_BROKER_URL ? { brokerUrl: e.CELERY_BROKER_URL } : {}),
      ...(e.CELERY_RESULT_BACKEND ? { resultBackend: e.CELERY_RESULT_BACKEND } : {}),
      resultExpiresS: e.AIECS_CELERY_RESULT_EXPIRES,
      raiseFailures: e.AIECS_CELERY_RAISE_FAILURES === 'on',
    },
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
      httpRequestTimeoutMs: e.AIECS_HTTP_REQUEST_TIMEOUT_S * 1000,
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
  if (e.AIECS_TEMPLATES_FILE) config.templatesFile = e.AIECS_TEMPLATES_FILE;
  if (e.AIECS_JWKS_URL) config.auth.jwksUrl = e.AIECS_JWKS_URL;
  const audience = (e.AIECS_JWT_AUDIENCE ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (audience.length > 0) config.auth.audience = audience;
  if (e.AIECS_JWT_ISSUER?.trim()) config.auth.issuer = e.AIECS_JWT_ISSUER.trim();
  return config;
}
