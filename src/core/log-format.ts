/**
 * How log lines look and where they go: pino's JSON for files and collectors, one short human
 * line each on a terminal. AIECS_LOG_FORMAT picks: `json`, `pretty`, or `auto` (the default: pretty
 * when the log destination is a TTY, so a log file gets JSON). AIECS_LOG_FILE (`--logfile`) sends
 * them to a file instead of stderr. The formatter runs in-process, so no transport thread is started.
 */
import { openSync } from 'node:fs';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { ConfigError } from './errors.js';

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where log lines go: anything pino can write a string to. */
export interface LogStream {
  write(line: string): unknown;
  isTTY?: boolean;
}

/** True when lines should be human ones; an unknown value counts as auto. */
export function prettyLogs(format: string | undefined, isTTY: boolean | undefined): boolean {
  if (format === 'pretty') return true;
  if (format === 'json') return false;
  return isTTY === true;
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** Fields every line has, or that the line shows in its own place. */
const OWN_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);
const MAX_VALUE = 160;

type Scalar = string | number | boolean | null;
const isScalar = (v: unknown): v is Scalar =>
  v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

function scalar(value: Scalar): string {
  if (typeof value !== 'string') return String(value);
  const text = value.length > MAX_VALUE ? `${value.slice(0, MAX_VALUE)}…` : value;
  // Quoted only when needed to keep `key=value` pairs readable apart.
  return text === '' || /[\s="]/.test(text) ? JSON.stringify(text) : text;
}

/** `key=value`, or undefined for a value too nested to read on one line (JSON mode keeps it). */
function field(key: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (isScalar(value)) return `${key}=${scalar(value)}`;
  if (Array.isArray(value)) {
    return value.every(isScalar) ? `${key}=${scalar(value.map(String).join(','))}` : undefined;
  }
  if (typeof value === 'object') {
    const message = (value as { message?: unknown }).message;
    // An error: its message says it; the stack is for JSON logs and AIECS_LOG_LEVEL=debug runs.
    if (typeof message === 'string') return `${key}=${scalar(message)}`;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length && entries.every(([, v]) => isScalar(v))) {
      return `${key}=${scalar(entries.map(([k, v]) => `${k}:${String(v)}`).join(','))}`;
    }
  }
  return undefined;
}

const two = (n: number) => String(n).padStart(2, '0');

/** One JSON log line as one human line: `12:04:05 WARN  message  key=value …`. */
export function formatLogLine(json: string): string {
  let entry: unknown;
  try {
    entry = JSON.parse(json);
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  if (typeof entry !== 'object' || entry === null) return `${json.trimEnd()}\n`;
  const record = entry as Record<string, unknown>;
  const at = typeof record.time === 'number' ? new Date(record.time) : new Date();
  const clock = `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
  const level = LEVELS[Number(record.level)] ?? String(record.level ?? '');
  const message = String(record.msg ?? '').replace(/\s*\n\s*/g, ' ');
  const fields = Object.entries(record)
    .filter(([key]) => !OWN_FIELDS.has(key))
    .map(([key, value]) => field(key, value))
    .filter((f): f is string => f !== undefined);
  return `${clock} ${level.padEnd(5)} ${message}${fields.length ? `  ${fields.join(' ')}` : ''}\n`;
}

/** A destination that turns each JSON line into a human one before writing it to `target`. */
export function prettyStream(target: LogStream): LogStream {
  return { write: (line: string) => target.write(formatLogLine(line)) };
}

/** Open log files by absolute path: every logger of a process appends through one stream. */
const logFiles = new Map<string, LogStream>();

/**
 * A log file, opened for appending now, so that a path that cannot be written is one clear error
 * at start rather than lost lines later. Written asynchronously; pino flushes it at exit. Lines
 * are appended (O_APPEND), so rotating it with copytruncate loses nothing.
 */
export function logFileStream(path: string): LogStream {
  const absolute = resolve(path);
  let stream = logFiles.get(absolute);
  if (!stream) {
    let fd: number;
    try {
      fd = openSync(absolute, 'a');
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      throw new ConfigError(
        `log file ${path} cannot be opened for appending (${code ?? message}); check --logfile or AIECS_LOG_FILE`,
      );
    }
    stream = pino.destination({ fd, sync: false });
    logFiles.set(absolute, stream);
  }
  return stream;
}

/**
 * Stderr (or `file`) as pino's destination in the chosen format. Human lines on stderr are written
 * synchronously: a terminal reads them at human pace, and they then keep their order with the
 * command's own output.
 */
export function logDestination(format: string | undefined, stream?: LogStream, file?: string): LogStream {
  if (!stream && file) stream = logFileStream(file);
  if (stream) return prettyLogs(format, stream.isTTY) ? prettyStream(stream) : stream;
  if (!prettyLogs(format, process.stderr.isTTY)) return pino.destination({ fd: 2, sync: false });
  return prettyStream(pino.destination({ fd: 2, sync: true }));
}
