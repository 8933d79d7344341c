import { ResultNotSerializableError } from '../core/errors.js';
import { SUSPECT_TEXT, textProblem } from '../core/storable-text.js';

/**
 * Turns what a service returned into plain JSON the store can keep, the way a caller would
 * expect to read it back: Dates as ISO strings, BigInt as strings, Maps as objects, Sets and
 * typed arrays as arrays, Buffers as base64, undefined as null. Cycles cannot be kept, nor text
 * that PostgreSQL's JSON refuses (a NUL, an unpaired surrogate): they fail the task with a clear
 * error naming where, on every store alike, instead of a result that is lost or only kept on Redis.
 */
export function toJsonSafe(value: unknown): unknown {
  // Most results already are plain JSON: keep them as they are rather than copy them.
  return isPlainJson(value, 0) ? value : convert(value, 'result', new Set<object>());
}

/** Deeper than this, the copying path (which detects cycles) decides. */
const MAX_PLAIN_DEPTH = 32;

function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
      return !SUSPECT_TEXT.test(value) || textProblem(value) === undefined;
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (depth >= MAX_PLAIN_DEPTH) return false;
      if (Array.isArray(value)) {
        for (const item of value) if (!isPlainJson(item, depth + 1)) return false;
        return Object.getPrototypeOf(value) === Array.prototype;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in value) {
        if (SUSPECT_TEXT.test(key) && textProblem(key) !== undefined) return false;
        if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

function convert(value: unknown, path: string, seen: Set<object>): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string': {
      const problem = textProblem(value);
      if (problem) throw new ResultNotSerializableError(`${path}: ${problem}`);
      return value;
    }
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'function':
    case 'symbol':
      return null;
  }
  const obj = value as object;
  if (seen.has(obj))
    throw new ResultNotSerializableError(`${path} refers back to itself; a result must be a tree`);
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? null : obj.toISOString();
  if (Buffer.isBuffer(obj)) return obj.toString('base64');
  if (ArrayBuffer.isView(obj)) return Array.from(obj as unknown as ArrayLike<number>);
  if (obj instanceof Error) return { type: obj.name, message: obj.message };
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return convert(toJSON.call(obj), path, seen);
  seen.add(obj);
  try {
    if (Array.isArray(obj) || obj instanceof Set) {
      return Array.from(obj as Iterable<unknown>, (v, i) => convert(v, `${path}[${i}]`, seen));
    }
    const out: Record<string, unknown> = {};
    const entries =
      obj instanceof Map ? [...obj.entries()].map(([k, v]) => [String(k), v] as const) : Object.entries(obj);
    for (const [key, v] of entries) {
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      const problem = textProblem(key);
      if (problem) throw new ResultNotSerializableError(`${path}: key ${JSON.stringify(key)} ${problem}`);
      out[key] = convert(v, `${path}.${key}`, seen);
    }
    return out;
  } finally {
    seen.delete(obj);
  }
}
