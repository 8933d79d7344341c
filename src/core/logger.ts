import { pino, type DestinationStream, type Logger } from 'pino';
import { logDestination } from './log-format.js';

export type { Logger } from 'pino';

/** Longest error message (and stack) a log line carries: errors may quote whatever input they met. */
export const LOG_ERROR_MAX_CHARS = 500;

/**
 * Keys whose values are a task's input, result or credentials: never written, at the top level
 * or one object down (`{ task: { input_data } }`). Error objects are cut down by `serializeError`.
 */
export const REDACT_PATHS = [
  'input_data',
  'inputData',
  'context',
  'result',
  'token',
  'authorization',
  'params',
  'parameters',
  '*.input_data',
  '*.inputData',
  '*.result',
  '*.token',
  '*.authorization',
  '*.params',
  '*.parameters',
  'req.headers.authorization',
  'req.headers.cookie',
];

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

/**
 * The root logger, on stderr so stdout stays free for command output: JSON lines, or one human
 * line each on a terminal (AIECS_LOG_FORMAT; see log-format.ts).
 */
export function createLogger(
  level = process.env.AIECS_LOG_LEVEL ?? 'info',
  name = 'aiecs',
  destination: DestinationStream = logDestination(process.env.AIECS_LOG_FORMAT),
): Logger {
  return pino(
    {
      name,
      level,
      serializers: { err: serializeError, error: serializeError },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
