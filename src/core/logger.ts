import { pino, type DestinationStream, type Logger } from 'pino';
import { logDestination } from './log-format.js';

export type { Logger } from 'pino';

/** Longest error message (and stack) a log line carries: errors may quote whatever input they met. */
export const LOG_ERROR_MAX_CHARS = 500;

/**
 * Keys whose values are a task's input, result or credentials: never written, at the top level
 * of a line or of a child logger's bindings (`REDACTED_KEYS`), or one object down
 * (`{ task: { input_data } }`, `NESTED_REDACTED_KEYS`), nor `req.headers.authorization` and
 * `.cookie`. Error objects are cut down by `serializeError`.
 *
 * Done with serializers and a `formatters.log` hook rather than pino's `redact` option: its
 * wildcard paths (`*.token`) ran for every field of every line and cost about 7 µs a line
 * (pino 10.4), more than the rest of writing it, and each task end writes a line.
 */
export const REDACTED_KEYS: readonly string[] = [
  'input_data',
  'inputData',
  'context',
  'result',
  'token',
  'authorization',
  'params',
  'parameters',
];
export const NESTED_REDACTED_KEYS: ReadonlySet<string> = new Set(
  REDACTED_KEYS.filter((key) => key !== 'context'),
);
const CENSOR = '[redacted]';
const censored = () => CENSOR;
/** Keys whose values have a serializer (a censor, or `serializeError`): left to it. */
const SERIALIZED_KEYS = new Set([...REDACTED_KEYS, 'err', 'error']);
const HEADER_KEYS: ReadonlySet<string> = new Set(['authorization', 'cookie']);

/** `value` with the values of `keys` censored: the same object when it holds none, else a copy. */
function censor(value: object, keys: ReadonlySet<string>): object {
  let out: Record<string, unknown> | undefined;
  for (const key in value) {
    if (keys.has(key) && Object.prototype.hasOwnProperty.call(value, key)) {
      out ??= { ...value };
      out[key] = CENSOR;
    }
  }
  return out ?? value;
}

const isPlainObject = (value: unknown): value is object =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Error);

/**
 * A line's object with what lies one object down censored (pino's `formatters.log`; the top
 * level is the serializers'). Copied only where something is censored, never changed in place.
 */
export function redactLine(line: Record<string, unknown>): Record<string, unknown> {
  let out = line;
  for (const key in line) {
    const value = line[key];
    if (SERIALIZED_KEYS.has(key) || !isPlainObject(value)) continue;
    let inner = censor(value, NESTED_REDACTED_KEYS);
    if (key === 'req') {
      const headers = (value as { headers?: unknown }).headers;
      if (isPlainObject(headers)) {
        const safe = censor(headers, HEADER_KEYS);
        if (safe !== headers) inner = { ...inner, headers: safe };
      }
    }
    if (inner !== value) {
      if (out === line) out = { ...line };
      out[key] = inner;
    }
  }
  return out;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more chars)` : text;
}

/**
 * What a log line keeps of an error: name, code, message and stack, bounded, and the same of
 * its cause. Everything else goes: database errors carry the SQL and its parameters (PGlite's
 * `params` is the whole job, input included) and the failing JSON around the bad byte (`where`).
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (typeof err === 'string') return clip(err, LOG_ERROR_MAX_CHARS);
  if (typeof err !== 'object' || err === null) return err;
  const e = err as { name?: unknown; code?: unknown; message?: unknown; stack?: unknown; cause?: unknown };
  const out: Record<string, unknown> = {};
  out.type = typeof e.name === 'string' ? e.name : 'Object';
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  if (typeof e.message === 'string') out.message = clip(e.message, LOG_ERROR_MAX_CHARS);
  if (typeof e.stack === 'string') {
    // The stack's first line repeats the message: cut that part, keep the frames.
    const message = typeof e.message === 'string' ? e.message : '';
    const frames = message ? e.stack.replace(message, () => String(out.message)) : e.stack;
    out.stack = clip(frames, 4 * LOG_ERROR_MAX_CHARS);
  }
  if (e.cause !== undefined && depth < 2) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

/** What decides a logger's level and destination: an AiecsConfig has these fields. */
export interface LogSettings {
  logLevel?: string;
  /** auto, json or pretty (see log-format.ts). */
  logFormat?: string;
  /** Append to this file instead of writing to stderr. */
  logFile?: string | undefined;
}

/**
 * The root logger, on stderr so stdout stays free for command output (or in AIECS_LOG_FILE): JSON
 * lines, or one human line each on a terminal (AIECS_LOG_FORMAT; see log-format.ts). Given a level
 * alone, the format and file come from the environment; given settings (a config), from them.
 */
export function createLogger(
  settings: string | LogSettings = process.env.AIECS_LOG_LEVEL ?? 'info',
  name = 'aiecs',
  destination?: DestinationStream,
): Logger {
  const env = process.env;
  const { logLevel, logFormat, logFile } =
    typeof settings === 'string'
      ? { logLevel: settings, logFormat: env.AIECS_LOG_FORMAT, logFile: env.AIECS_LOG_FILE }
      : settings;
  return pino(
    {
      name,
      level: logLevel ?? env.AIECS_LOG_LEVEL ?? 'info',
      serializers: {
        ...Object.fromEntries(REDACTED_KEYS.map((key) => [key, censored])),
        err: serializeError,
        error: serializeError,
      },
      formatters: { log: redactLine },
    },
    destination ?? logDestination(logFormat ?? env.AIECS_LOG_FORMAT, undefined, logFile || undefined),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
