/**
 * Flag parsing shared by the commands. Parsers throw commander's InvalidArgumentError (commander
 * turns it into a one-line usage error) or UsageError (thrown from actions); both exit with 2.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { AiecsConfig, PoolKind, WorkerSettings } from '../core/config.js';
import { loadConfig, parsePerQueue } from '../core/config.js';
import type { EnvInput } from '../core/config.js';
import { LOG_FORMATS, logFileStream } from '../core/log-format.js';
import type { QueueKind } from '../core/task.js';
import { QUEUE_KINDS } from '../core/task.js';

/** A mistake in how the command was called: printed as one line, exit code 2. */
export class UsageError extends Error {
  readonly code = 'USAGE_ERROR';
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const EXIT_USAGE = 2;
/** What shells report for a process ended by Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

export interface GlobalOptions {
  broker?: string;
  namespace?: string;
}

/** The environment's settings with the global flags on top (flags win). */
export function cliConfig(globals: GlobalOptions, env: EnvInput = process.env): AiecsConfig {
  const config = loadConfig(env);
  if (globals.broker !== undefined) config.brokerUrl = globals.broker;
  return config;
}

/**
 * Short-lived commands (submit, status, demo, …) print their answer, or one error line; the
 * engine's log lines (a reconnecting store, a provider without a key) would only bury it, so
 * they log nothing unless AIECS_LOG_LEVEL asks for it.
 */
export function clientLogLevel(config: AiecsConfig, env: EnvInput = process.env): string {
  // A log file buries nothing: what goes there is asked for.
  return env.AIECS_LOG_LEVEL || env.AIECS_LOG_FILE ? config.logLevel : 'silent';
}

/** --loglevel takes Celery's names (DEBUG, INFO, WARNING, ERROR, CRITICAL) and pino's, in any case. */
const LOG_LEVELS: Record<string, string> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  critical: 'fatal',
  fatal: 'fatal',
  silent: 'silent',
};

export function parseLogLevel(raw: string): string {
  const level = LOG_LEVELS[raw.trim().toLowerCase()];
  if (!level)
    throw new InvalidArgumentError('Expected debug, info, warning, error or critical (or trace, silent).');
  return level;
}

function parseLogFile(raw: string): string {
  if (raw.trim() === '') throw new InvalidArgumentError('Expected a file path.');
  return raw;
}

export interface LogFlags {
  loglevel?: string;
  logfile?: string;
  logFormat?: string;
}

/** Celery's log flags, on the program so that every command takes them, before or after its name. */
export function addLogFlags(program: Command): Command {
  return program
    .option(
      '-l, --loglevel <level>',
      'log level: debug, info, warning, error, critical (default: AIECS_LOG_LEVEL, else info)',
      parseLogLevel,
    )
    .option(
      '--logfile <path>',
      'append log lines (JSON) to this file instead of stderr (default: AIECS_LOG_FILE)',
      parseLogFile,
    )
    .addOption(
      new Option(
        '--log-format <format>',
        'json, pretty (one human line each), or auto: pretty on a terminal (default: AIECS_LOG_FORMAT)',
      ).choices(LOG_FORMATS),
    );
}

/**
 * preAction hook: the log flags become the process's environment, so that every logger the
 * command makes, the configuration, and whether a short-lived command logs at all agree with
 * them. The log file is opened here: one that cannot be written is one line before anything starts.
 */
export function applyLogFlags(
  _hooked: Command,
  command: Command,
  env: NodeJS.ProcessEnv = process.env,
): void {
  const flags = command.optsWithGlobals<LogFlags>();
  if (flags.loglevel !== undefined) env.AIECS_LOG_LEVEL = flags.loglevel;
  if (flags.logFormat !== undefined) env.AIECS_LOG_FORMAT = flags.logFormat;
  if (flags.logfile !== undefined) env.AIECS_LOG_FILE = flags.logfile;
  if (env.AIECS_LOG_FILE) logFileStream(env.AIECS_LOG_FILE);
}

const parseIntValue = (v: string): number | undefined =>
  /^\d+$/.test(v) && Number(v) >= 1 ? Number(v) : undefined;
const parsePoolValue = (v: string): PoolKind | undefined =>
  v === 'async' || v === 'process' ? v : undefined;

// Commander names the flag in its message ("option '-c …' argument 'x' is invalid. <ours>"), so
// the parsers' own messages only say what was expected.
function perQueue<T>(raw: string, parse: (v: string) => T | undefined, expected: string) {
  try {
    return parsePerQueue(raw, parse, expected);
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message}.`);
  }
}

/** `-c 8` (both queues) or `-c fast_tasks=200,heavy_tasks=4`. */
export function parseConcurrency(raw: string): Partial<Record<QueueKind, number>> {
  return perQueue(raw, parseIntValue, 'a whole number >= 1');
}

/** `--pool process` (both queues) or `--pool fast_tasks=async,heavy_tasks=process`. */
export function parsePool(raw: string): Partial<Record<QueueKind, PoolKind>> {
  return perQueue(raw, parsePoolValue, 'async or process');
}

/** `-Q fast_tasks,heavy_tasks`: known queue names, each once. */
export function parseQueues(raw: string): QueueKind[] {
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw new InvalidArgumentError(`name at least one of ${QUEUE_KINDS.join(', ')}.`);
  const queues: QueueKind[] = [];
  for (const name of names) {
    const queue = QUEUE_KINDS.find((q) => q === name);
    if (!queue) throw new InvalidArgumentError(`unknown queue "${name}"; known: ${QUEUE_KINDS.join(', ')}.`);
    if (!queues.includes(queue)) queues.push(queue);
  }
  return queues;
}

/**
 * Options an action cannot do without. Commander checks its own mandatory options before unknown
 * ones, so `--mdoe chat` would be reported as a missing --mode; these are checked in a preAction
 * hook instead (see checkRequiredFlags), after commander has reported unknown options.
 */
const requiredOptions = new WeakMap<Option, { unless?: string }>();

/** An option the command needs; with `unless`, not when that other option (its attribute name) is given. */
export function requiredFlag(
  command: Command,
  flags: string,
  description: string,
  parse?: (value: string) => unknown,
  rule: { unless?: string } = {},
): Command {
  const option = new Option(flags, description);
  if (parse) option.argParser(parse);
  requiredOptions.set(option, rule);
  return command.addOption(option);
}

/** preAction hook: the first required option the command was called without, as a usage error. */
export function checkRequiredFlags(_hooked: Command, command: Command): void {
  for (const option of command.options) {
    const rule = requiredOptions.get(option);
    if (rule?.unless !== undefined && command.getOptionValue(rule.unless) !== undefined) continue;
    if (rule && command.getOptionValue(option.attributeName()) === undefined) {
      command.error(`error: required option '${option.flags}' not specified`, {
        code: 'commander.missingMandatoryOptionValue',
        exitCode: EXIT_USAGE,
      });
    }
  }
}

/**
 * Collects a list flag given as several values, comma-separated, or repeated:
 * `--services a.js b.js`, `--services a.js,b.js`, `--services a.js --services b.js`.
 */
export function collectList(raw: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

/** A commander argParser for whole numbers >= `min`. */
export function intFlag(min = 0): (raw: string) => number {
  return (raw) => {
    const text = raw.trim();
    if (!/^-?\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
      throw new InvalidArgumentError(`Expected a whole number >= ${min}.`);
    }
    return Number(text);
  };
}

/** A commander argParser for numbers >= `min` (seconds and the like). */
export function numberFlag(min = 0): (raw: string) => number {
  return (raw) => {
    const text = raw.trim();
    const value = text === '' ? NaN : Number(text);
    if (!Number.isFinite(value) || value < min) {
      throw new InvalidArgumentError(`Expected a number >= ${min}.`);
    }
    return value;
  };
}

/**
 * Parses a flag's JSON object; the error names the flag and never echoes a long value. `@path`
 * reads the JSON from a file and `-` from stdin: real inputs (a CSV) outgrow the argument limit.
 */
export function parseJsonObject(flag: string, raw: string, read = readText): Record<string, unknown> {
  let text = raw;
  if (raw === '-' || raw.startsWith('@')) {
    const source = raw === '-' ? 'stdin' : raw.slice(1);
    try {
      text = read(raw === '-' ? 0 : source);
    } catch (error) {
      throw new UsageError(`${flag}: cannot read ${source}: ${(error as Error).message}`);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${flag} is not valid JSON: ${(error as Error).message.replace(/\s+/g, ' ')}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${flag} must be a JSON object like {"text": "..."}`);
  }
  return value as Record<string, unknown>;
}

const readText = (source: string | number): string => readFileSync(source, 'utf8');

/** The worker flags as commander hands them over. */
export interface WorkerFlags {
  queues?: QueueKind[];
  concurrency?: Partial<Record<QueueKind, number>>;
  pool?: Partial<Record<QueueKind, PoolKind>>;
  maxTasksPerChild?: number;
  maxMemoryPerChild?: number;
  services?: string[];
}

/**
 * Worker settings from the flags over the config's. Per-queue maps are merged, so
 * `-c heavy_tasks=4` keeps the configured fast concurrency.
 */
export function workerOverrides(flags: WorkerFlags, base: WorkerSettings): Partial<WorkerSettings> {
  const out: Partial<WorkerSettings> = {};
  if (flags.queues) out.queues = flags.queues;
  if (flags.concurrency) out.concurrency = { ...base.concurrency, ...flags.concurrency };
  if (flags.pool) out.pool = { ...base.pool, ...flags.pool };
  if (flags.maxTasksPerChild !== undefined) out.maxTasksPerChild = flags.maxTasksPerChild;
  if (flags.maxMemoryPerChild !== undefined) out.maxMemoryPerChildKiB = flags.maxMemoryPerChild;
  if (flags.services?.length) out.services = flags.services;
  return out;
}

/** The flags `aiecs worker` and `aiecs up` share. */
export function addWorkerFlags(command: Command): Command {
  return command
    .option(
      '-Q, --queues <list>',
      `queues to consume, comma-separated (${QUEUE_KINDS.join(',')})`,
      parseQueues,
    )
    .option(
      '-c, --concurrency <n|queue=n,…>',
      'tasks at once: N for every queue, or fast_tasks=200,heavy_tasks=4',
      parseConcurrency,
    )
    .option('--pool <kind|queue=kind,…>', 'async or process, for every queue or per queue', parsePool)
    .option('--max-tasks-per-child <n>', 'replace a process-pool child after N tasks (0 = never)', intFlag())
    .option(
      '--max-memory-per-child <KiB>',
      'replace a process-pool child above this resident memory (0 = never)',
      intFlag(),
    )
    .option(
      '--services <paths...>',
      'service modules to load (space- or comma-separated, or repeated)',
      collectList,
    );
}

/** One-line description of what a worker consumes, for ready lines. */
export function describeQueues(settings: WorkerSettings): string {
  return settings.queues.map((q) => `${q}(${settings.pool[q]} x${settings.concurrency[q]})`).join(' ');
}
