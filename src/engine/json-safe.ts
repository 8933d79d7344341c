import { ResultNotSerializableError } from '../core/errors.js';

/**
 * Turns what a service returned into plain JSON the store can keep, the way a caller would
 * expect to read it back: Dates as ISO strings, BigInt as strings, Maps as objects, Sets and
 * typed arrays as arrays, Buffers as base64, undefined as null. Cycles cannot be kept: they fail
 * the task with a clear error instead of a lost result.
 */
export function toJsonSafe(value: unknown, path = 'result', seen = new Set<object>()): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
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
  if (typeof toJSON === 'function') return toJsonSafe(toJSON.call(obj), path, seen);
  seen.add(obj);
  try {
    if (Array.isArray(obj) || obj instanceof Set) {
      return Array.from(obj as Iterable<unknown>, (v, i) => toJsonSafe(v, `${path}[${i}]`, seen));
    }
    const out: Record<string, unknown> = {};
    const entries =
      obj instanceof Map ? [...obj.entries()].map(([k, v]) => [String(k), v] as const) : Object.entries(obj);
    for (const [key, v] of entries) {
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      out[key] = toJsonSafe(v, `${path}.${key}`, seen);
    }
    return out;
  } finally {
    seen.delete(obj);
  }
}
