/**
 * Every figure aiecs exposes to Prometheus, in one module: the gateway's `/metrics`, a worker's
 * `--metrics-port` and the dashboard all read them here, under the names below (the seed's
 * `celery_*` names exactly; ours `aiecs_`-prefixed). Executions are counted by the worker that ran
 * them, so `sum()` over workers is exact; a retried attempt is its own execution (`status="retry"`).
 *
 * Nothing is counted until a process serves metrics (`enableMetrics`), and only then is prom-client
 * loaded (synchronously, by `require`): it adds about 12 MB to a bare Node process, 0 to 3 MB to an
 * idle worker (`worker_idle_rss_metrics_mb` in `npm run bench`), and a worker without
 * `--metrics-port` and every process-pool child skip it. Children hand their provider figures to
 * their worker (`forwardProviderFigures`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

/** The metric names: deployment files, the dashboard and the code all use these. */
export const METRIC = {
  taskExecutions: 'celery_task_executions_total',
  taskDuration: 'celery_task_duration_seconds',
  activeTasks: 'celery_active_tasks',
  queueDepth: 'aiecs_queue_depth',
  taskRetries: 'aiecs_task_retries_total',
  taskTimeouts: 'aiecs_task_timeouts_total',
  workersLive: 'aiecs_workers_live',
  streamEvents: 'aiecs_stream_events_total',
  progressEvents: 'aiecs_progress_events_total',
  socketsConnected: 'aiecs_sockets_connected',
  providerRequests: 'aiecs_provider_requests_total',
  providerTokens: 'aiecs_provider_tokens_total',
  providerCost: 'aiecs_provider_cost_usd_total',
  historyEntries: 'aiecs_history_entries_total',
  historyGaps: 'aiecs_history_gaps_total',
  historyRefused: 'aiecs_history_refused_total',
  embeddedUpkeep: 'aiecs_embedded_upkeep_seconds',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];
export const METRIC_NAMES: readonly MetricName[] = Object.values(METRIC);

/** Seconds: from a 10 ms call to a 30-minute document. */
export const TASK_DURATION_BUCKETS: readonly number[] = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800,
];

/** Seconds one upkeep statement held the embedded store (engine/pglite-upkeep.ts). */
export const UPKEEP_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
export type UpkeepStatement = 'vacuum' | 'analyze' | 'checkpoint';

export const QUEUE_STATES = ['waiting', 'delayed', 'active', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

/** How an execution ended: its terminal status (lowercase, as on the wire), or `retry`. */
export type ExecutionStatus = 'completed' | 'failed' | 'timed_out' | 'cancelled' | 'retry';
export type ProviderOutcome = 'ok' | 'error' | 'retry';

/** One provider request's outcome, or one call's usage, or both. */
export interface ProviderFigures {
  provider: string;
  model: string;
  request?: ProviderOutcome;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
}

/** What only the store knows, read by a gateway at scrape time. */
export interface ClusterFigures {
  /** Jobs per queue and state. */
  queues: Record<string, Record<QueueState, number>>;
  /** Workers with a live heartbeat. */
  workersLive: number;
}

/**
 * Distinct label values a family keeps; later ones are counted under `_other`. Task names and
 * models come from callers, and each value is a series Prometheus stores for good.
 */
export const MAX_LABEL_VALUES = 500;
export const OTHER_LABEL = '_other';

type ExecutionCounters = Record<ExecutionStatus, Prom.Counter.Internal | undefined>;

/** One task name's labelled children, made once: a task's end then builds no label string. */
class TaskFigures {
  private readonly executions: ExecutionCounters = {
    completed: undefined,
    failed: undefined,
    timed_out: undefined,
    cancelled: undefined,
    retry: undefined,
  };
  private retries: Prom.Counter.Internal | undefined;
  private readonly timeouts: { soft?: Prom.Counter.Internal; hard?: Prom.Counter.Internal } = {};

  constructor(
    private readonly families: Families,
    private readonly name: string,
    private readonly duration: Prom.Histogram.Internal<'task_name'>,
  ) {}

  ended(status: ExecutionStatus, seconds: number | undefined): void {
    (this.executions[status] ??= this.families.executions.labels(this.name, status)).inc();
    if (seconds !== undefined) this.duration.observe(seconds);
    if (status === 'retry') (this.retries ??= this.families.retries.labels(this.name)).inc();
  }

  timedOut(kind: 'soft' | 'hard'): void {
    (this.timeouts[kind] ??= this.families.timeouts.labels(this.name, kind)).inc();
  }
}

class ProviderChildren {
  private readonly requests: Partial<Record<ProviderOutcome, Prom.Counter.Internal>> = {};
  readonly input: Prom.Counter.Internal;
  readonly output: Prom.Counter.Internal;
  readonly cost: Prom.Counter.Internal;

  constructor(
    private readonly families: Families,
    private readonly provider: string,
    private readonly model: string,
  ) {
    this.input = families.tokens.labels(provider, model, 'input');
    this.output = families.tokens.labels(provider, model, 'output');
    this.cost = families.cost.labels(provider, model);
  }

  request(outcome: ProviderOutcome): void {
    (this.requests[outcome] ??= this.families.requests.labels(this.provider, this.model, outcome)).inc();
  }
}

interface Families {
  executions: Prom.Counter<'task_name' | 'status'>;
  retries: Prom.Counter<'task_name'>;
  timeouts: Prom.Counter<'task_name' | 'kind'>;
  requests: Prom.Counter<'provider' | 'model' | 'outcome'>;
  tokens: Prom.Counter<'provider' | 'model' | 'direction'>;
  cost: Prom.Counter<'provider' | 'model'>;
}

/** What gauges read at scrape time: the workers' running tasks, the gateways' sockets. */
const activeTaskSources = new Set<() => number>();
const socketSources = new Set<() => number>();

function sum(sources: ReadonlySet<() => number>): number {
  let total = 0;
  for (const read of sources) total += read();
  return total;
}

/** prom-client's default metrics that Prometheus's lint refuses (gauges ending in `_total`). */
const UNLINTED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/**
 * How often the event loop's delay is sampled for nodejs_eventloop_lag_{min,max,mean,p50,…}
 * (prom-client's default: 10 ms, a timer waking the process 100 times a second, its busiest wake-up
 * when idle: docs/design.md, "Embedded weight"). A blocked loop still shows in max and the
 * percentiles: the sample after it is late by the block. nodejs_eventloop_lag_seconds is measured
 * at each scrape.
 */
const LAG_SAMPLE_MS = 1000;

let prom: typeof Prom | undefined;
function promClient(): typeof Prom {
  return (prom ??= createRequire(import.meta.url)('prom-client') as typeof Prom);
}

/** Totals a gateway has seen end, since it started (the dashboard's stats frame reads them). */
export interface ObservedTotals {
  /** Tasks ended, by status. */
  ended: Record<string, number>;
  tokens: { prompt: number; completion: number; total: number };
  cost_usd: number;
}

/**
 * What a gateway observes of tasks ending (from its event bridge), for the dashboard's stats:
 * prom-client counters in a registry of their own, not scraped (workers count executions for
 * /metrics; the gateway's view would count each task again).
 */
export class ObservedTasks {
  private readonly ended: Prom.Counter<'queue' | 'status'>;
  private readonly tokens: Prom.Counter<'kind'>;
  private readonly cost: Prom.Counter;

  constructor() {
    const p = promClient();
    const registers = [new p.Registry()];
    this.ended = new p.Counter({
      name: 'aiecs_gateway_tasks_ended_total',
      help: 'Tasks this gateway saw end, by queue and status',
      labelNames: ['queue', 'status'],
      registers,
    });
    this.tokens = new p.Counter({
      name: 'aiecs_gateway_tokens_total',
      help: 'Tokens of the tasks this gateway saw complete, by kind (prompt or completion)',
      labelNames: ['kind'],
      registers,
    });
    this.cost = new p.Counter({
      name: 'aiecs_gateway_cost_usd_total',
      help: 'Cost of the tasks this gateway saw complete',
      registers,
    });
  }

  taskEnded(
    queue: string,
    status: string,
    usage?: { input_tokens: number; output_tokens: number; cost_usd: number },
  ): void {
    this.ended.inc({ queue, status });
    if (!usage) return;
    if (usage.input_tokens > 0) this.tokens.inc({ kind: 'prompt' }, usage.input_tokens);
    if (usage.output_tokens > 0) this.tokens.inc({ kind: 'completion' }, usage.output_tokens);
    if (usage.cost_usd > 0) this.cost.inc(usage.cost_usd);
  }

  async totals(): Promise<ObservedTotals> {
    const [ended, tokens, cost] = await Promise.all([this.ended.get(), this.tokens.get(), this.cost.get()]);
    const byStatus: Record<string, number> = {};
    for (const v of ended.values) {
      const status = String(v.labels.status);
      byStatus[status] = (byStatus[status] ?? 0) + v.value;
    }
    const kind = (k: string) => tokens.values.find((v) => v.labels.kind === k)?.value ?? 0;
    const prompt = kind('prompt');
    const completion = kind('completion');
    return {
      ended: byStatus,
      tokens: { prompt, completion, total: prompt + completion },
      cost_usd: cost.values[0]?.value ?? 0,
    };
  }
}

/** The process's figures (one per process: see `enableMetrics`). */
export class Metrics {
  readonly registry: Prom.Registry;
  private readonly families: Families;
  private readonly duration: Prom.Histogram<'task_name'>;
  private readonly tasks = new Map<string, TaskFigures>();
  private readonly providers = new Map<string, ProviderChildren>();
  /** Events sent since the last scrape: plain sums on the hot path, folded in when read. */
  private streamSent = 0;
  private progressSent = 0;
  private readonly historyEntries: Prom.Counter<'queue'>;
  private readonly historyGaps: Prom.Counter<'queue'>;
  private readonly historyRefused: Prom.Counter<'queue'>;
  private readonly upkeepSeconds: Prom.Histogram<'statement'>;

  constructor() {
    const p = promClient();
    const registry = (this.registry = new p.Registry());
    const registers = [registry];
    this.families = {
      executions: new p.Counter({
        name: METRIC.taskExecutions,
        help: 'Task executions ended on this worker, by status (retry: an attempt that will be retried)',
        labelNames: ['task_name', 'status'],
        registers,
      }),
      retries: new p.Counter({
        name: METRIC.taskRetries,
        help: 'Task retries scheduled by this worker',
        labelNames: ['task_name'],
        registers,
      }),
      timeouts: new p.Counter({
        name: METRIC.taskTimeouts,
        help: 'Tasks ended by a time limit on this worker, by limit (soft or hard)',
        labelNames: ['task_name', 'kind'],
        registers,
      }),
      requests: new p.Counter({
        name: METRIC.providerRequests,
        help: 'AI provider HTTP requests, by outcome (retry: failed and tried again)',
        labelNames: ['provider', 'model', 'outcome'],
        registers,
      }),
      tokens: new p.Counter({
        name: METRIC.providerTokens,
        help: 'AI provider tokens, by direction (input or output)',
        labelNames: ['provider', 'model', 'direction'],
        registers,
      }),
      cost: new p.Counter({
        name: METRIC.providerCost,
        help: 'AI provider cost in US dollars, by the price table',
        labelNames: ['provider', 'model'],
        registers,
      }),
    };
    this.duration = new p.Histogram({
      name: METRIC.taskDuration,
      help: 'Task execution time in seconds',
      labelNames: ['task_name'],
      buckets: [...TASK_DURATION_BUCKETS],
      registers,
    });
    new p.Gauge({
      name: METRIC.activeTasks,
      help: 'Tasks running on this worker now',
      registers,
      collect() {
        this.set(sum(activeTaskSources));
      },
    });
    new p.Gauge({
      name: METRIC.socketsConnected,
      help: 'Sockets connected to this gateway',
      registers,
      collect() {
        this.set(sum(socketSources));
      },
    });
    const stream: Prom.Counter = new p.Counter({
      name: METRIC.streamEvents,
      help: 'Stream events sent to sockets by this gateway',
      registers,
      collect: () => stream.inc(this.takeSent('stream')),
    });
    const progress: Prom.Counter = new p.Counter({
      name: METRIC.progressEvents,
      help: 'Progress events sent to sockets by this gateway',
      registers,
      collect: () => progress.inc(this.takeSent('progress')),
    });
    this.historyEntries = new p.Counter({
      name: METRIC.historyEntries,
      help: 'Task history entries written by this process (the active history consumer)',
      labelNames: ['queue'],
      registers,
    });
    this.historyGaps = new p.Counter({
      name: METRIC.historyGaps,
      help: 'Times the history consumer found that the event stream had dropped events it had not read',
      labelNames: ['queue'],
      registers,
    });
    this.historyRefused = new p.Counter({
      name: METRIC.historyRefused,
      help: 'Task history entries the history database refused (a value it cannot store), left out',
      labelNames: ['queue'],
      registers,
    });
    this.upkeepSeconds = new p.Histogram({
      name: METRIC.embeddedUpkeep,
      help: 'Seconds each upkeep statement (vacuum, analyze, checkpoint) held the embedded store',
      labelNames: ['statement'],
      buckets: [...UPKEEP_BUCKETS],
      registers,
    });
    p.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: LAG_SAMPLE_MS });
    // Gauges named like counters fail `promtool check metrics`; the per-type gauges beside them
    // (nodejs_active_handles{type}, …) hold the same figures.
    for (const name of UNLINTED_DEFAULTS) registry.removeSingleMetric(name);
  }

  private takeSent(kind: 'stream' | 'progress'): number {
    const n = kind === 'stream' ? this.streamSent : this.progressSent;
    if (kind === 'stream') this.streamSent = 0;
    else this.progressSent = 0;
    return n;
  }

  /** The figures of one task name, made on its first end. */
  private task(name: string): TaskFigures {
    let figures = this.tasks.get(name);
    if (!figures) {
      if (this.tasks.size >= MAX_LABEL_VALUES) return this.task(OTHER_LABEL);
      figures = new TaskFigures(this.families, name, this.duration.labels(name));
      this.tasks.set(name, figures);
    }
    return figures;
  }

  /** An execution ended on this worker; `seconds` is its run time (none if it never started). */
  taskEnded(taskName: string, status: ExecutionStatus, seconds?: number): void {
    this.task(taskName).ended(status, seconds);
  }

  /** A time limit ended the task (counted once, by the limit that ended it). */
  taskTimedOut(taskName: string, kind: 'soft' | 'hard'): void {
    this.task(taskName).timedOut(kind);
  }

  /** Events written to sockets: `count` sockets got one event each. */
  eventsSent(kind: 'stream' | 'progress', count: number): void {
    if (kind === 'stream') this.streamSent += count;
    else this.progressSent += count;
  }

  /** The task history: `count` entries of `queue` written, a gap in its event stream, an entry refused. */
  history(queue: string, figure: { entries: number } | 'gap' | 'refused'): void {
    if (figure === 'gap') this.historyGaps.inc({ queue });
    else if (figure === 'refused') this.historyRefused.inc({ queue });
    else this.historyEntries.inc({ queue }, figure.entries);
  }

  /** One upkeep statement of the embedded store ran for `seconds`, holding its one session. */
  embeddedUpkeep(statement: UpkeepStatement, seconds: number): void {
    this.upkeepSeconds.observe({ statement }, seconds);
  }

  provider(figures: ProviderFigures): void {
    const key = `${figures.provider}\n${figures.model}`;
    let children = this.providers.get(key);
    if (!children) {
      if (this.providers.size >= MAX_LABEL_VALUES) {
        this.provider({ ...figures, model: OTHER_LABEL });
        return;
      }
      children = new ProviderChildren(this.families, figures.provider, figures.model);
      this.providers.set(key, children);
    }
    if (figures.request) children.request(figures.request);
    if (figures.inputTokens) children.input.inc(figures.inputTokens);
    if (figures.outputTokens) children.output.inc(figures.outputTokens);
    if (figures.costUsd) children.cost.inc(figures.costUsd);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition: this process's figures, and the store's when a gateway read them. */
  exposition(cluster?: ClusterFigures): Promise<string> {
    return this.withCluster(cluster).metrics();
  }

  /** The same figures as objects (for the dashboard). */
  snapshot(cluster?: ClusterFigures): ReturnType<Prom.Registry['getMetricsAsJSON']> {
    return this.withCluster(cluster).getMetricsAsJSON();
  }

  /**
   * The store's figures go in a registry of their own per scrape: two gateways of one process
   * (on two stores) scraped at once must not see each other's.
   */
  private withCluster(cluster: ClusterFigures | undefined): Prom.Registry {
    if (!cluster) return this.registry;
    const p = promClient();
    const own = new p.Registry();
    const depth = new p.Gauge({
      name: METRIC.queueDepth,
      help: 'Tasks per queue and state, cluster-wide (read from the store at scrape time)',
      labelNames: ['queue', 'state'],
      registers: [own],
    });
    for (const [queue, states] of Object.entries(cluster.queues))
      for (const state of QUEUE_STATES) depth.set({ queue, state }, states[state]);
    new p.Gauge({
      name: METRIC.workersLive,
      help: 'Workers with a live heartbeat, cluster-wide (read from the store at scrape time)',
      registers: [own],
    }).set(cluster.workersLive);
    return p.Registry.merge([this.registry, own]);
  }
}

let made: Metrics | undefined;
let counting: Metrics | undefined;
let forward: ((figures: ProviderFigures) => void) | undefined;

/** Starts counting in this process (loading prom-client once) and returns its figures. */
export function enableMetrics(): Metrics {
  made ??= new Metrics();
  counting = made;
  return made;
}

/** Stops counting; the figures so far are kept (the benchmark's metrics-off rounds, tests). */
export function disableMetrics(): void {
  counting = undefined;
}

/** The figures being counted in this process, or undefined while no one serves them. */
export function countingMetrics(): Metrics | undefined {
  return counting;
}

/** Counts a worker's running tasks in `celery_active_tasks`, read at scrape time; returns the undo. */
export function countActiveTasks(read: () => number): () => void {
  activeTaskSources.add(read);
  return () => activeTaskSources.delete(read);
}

/** Counts a gateway's sockets in `aiecs_sockets_connected`, read at scrape time; returns the undo. */
export function countSockets(read: () => number): () => void {
  socketSources.add(read);
  return () => socketSources.delete(read);
}

/** Where a provider call is counted: here, or in the worker of a process-pool child. */
export function countProvider(figures: ProviderFigures): void {
  if (forward) forward(figures);
  else counting?.provider(figures);
}

/** In a process-pool child: provider figures go to the parent worker, which counts them. */
export function forwardProviderFigures(to: (figures: ProviderFigures) => void): void {
  forward = to;
}

/**
 * Whether a scrape's `Authorization` header carries the bearer token (AIECS_METRICS_TOKEN).
 * Compared as digests in constant time: the comparison tells nothing about the token's length.
 */
export function scrapeAuthorized(authorization: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? '');
  if (!m) return false;
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(m[1]!), digest(token));
}
