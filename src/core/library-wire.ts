/**
 * The library's submission (camelCase or the seed's snake_case) turned into the wire form the
 * submission schemas check. Apart from task.ts, which the wire types would otherwise tie to
 * submission.ts in a cycle, and from submission.ts's schemas, which it does not need.
 */
import type { FieldIssue } from './errors.js';
import { ValidationError } from './errors.js';
import type { WireSubmitOptions, WireTaskRequest } from './submission.js';
import { canonicalJson } from './task.js';

/** Each field's wire name under both of its spellings: the TypeScript one and the seed's. */
const REQUEST_FIELDS: Readonly<Record<string, string>> = {
  taskName: 'task_name',
  userId: 'user_id',
  taskId: 'task_id',
  step: 'step',
  mode: 'mode',
  service: 'service',
  inputData: 'input_data',
  context: 'context',
  task_name: 'task_name',
  user_id: 'user_id',
  task_id: 'task_id',
  input_data: 'input_data',
};
const OPTION_FIELDS: Readonly<Record<string, string>> = {
  priority: 'priority',
  countdown: 'countdown',
  eta: 'eta',
  expires: 'expires',
  timeLimit: 'time_limit',
  softTimeLimit: 'soft_time_limit',
  attempts: 'attempts',
  time_limit: 'time_limit',
  soft_time_limit: 'soft_time_limit',
};
const CAMEL_NAMES = (fields: Readonly<Record<string, string>>) =>
  Object.keys(fields).filter((k) => !k.includes('_'));

/** The library's request and options on the wire, and how to name a wire field as the caller did. */
export interface LibrarySubmission {
  request: WireTaskRequest;
  options: WireSubmitOptions;
  /** Re-throws a ValidationError from the submit with its fields spelled as the caller spelled them. */
  respell<T>(submit: Promise<T>): Promise<T>;
}

/**
 * The one place where camelCase meets snake_case. The library takes the TypeScript spelling
 * (`taskName`) and the seed's (`task_name`, as Python callers write it); the same field twice
 * with different values, or an unknown field, is refused by name.
 */
export function libraryToWire(request: unknown, options: unknown = {}): LibrarySubmission {
  const issues: FieldIssue[] = [];
  const spelling = new Map<string, string>();
  const wireRequest = convert(request, REQUEST_FIELDS, '', issues, spelling, OPTION_FIELDS);
  const wireOptions = convert(options ?? {}, OPTION_FIELDS, 'options.', issues, spelling, REQUEST_FIELDS);
  if (issues.length) throw new ValidationError(issues);
  const spell = (field: string): string => {
    const m = /^((?:options\.)?[a-z_]+)(.*)$/.exec(field);
    const given = m && spelling.get(m[1]!);
    return given ? `${given}${m[2]}` : field;
  };
  return {
    request: wireRequest as WireTaskRequest,
    options: wireOptions as WireSubmitOptions,
    respell: (submit) =>
      submit.catch((error: unknown) => {
        if (!(error instanceof ValidationError) || spelling.size === 0) throw error;
        throw error.renamed(spell);
      }),
  };
}

function convert(
  given: unknown,
  fields: Readonly<Record<string, string>>,
  prefix: string,
  issues: FieldIssue[],
  spelling: Map<string, string>,
  otherFields: Readonly<Record<string, string>>,
): Record<string, unknown> {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    const what = prefix ? 'an options object' : 'a task request object';
    issues.push({ field: prefix ? 'options' : '(root)', message: `expected ${what}` });
    return {};
  }
  const wire: Record<string, unknown> = {};
  const givenAs = new Map<string, string>();
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined) continue;
    const name = fields[key];
    if (name === undefined) {
      const message = unknownFieldMessage(key, fields, otherFields, !prefix);
      issues.push({ field: `${prefix}${key}`, message });
      continue;
    }
    const earlier = givenAs.get(name);
    if (earlier !== undefined) {
      if (!sameValue(wire[name], value))
        issues.push({
          field: `${prefix}${earlier}`,
          message: `${earlier} and ${key} are one field given twice with different values; give one`,
        });
      continue;
    }
    givenAs.set(name, key);
    // Errors name wire fields: remember the spellings that differ, to name them as given.
    if (key !== name) spelling.set(`${prefix}${name}`, `${prefix}${key}`);
    wire[name] = value;
  }
  return wire;
}

function unknownFieldMessage(
  key: string,
  fields: Readonly<Record<string, string>>,
  otherFields: Readonly<Record<string, string>>,
  inRequest: boolean,
): string {
  if (otherFields[key] !== undefined) {
    return inRequest
      ? 'unknown field: it is a submit option, given in the second argument, delay(request, { options })'
      : 'unknown option: it is a field of the task request, the first argument of delay()';
  }
  const noun = inRequest ? 'field' : 'option';
  const names = CAMEL_NAMES(fields);
  const hint = closest(key, names);
  // A snake_case caller is pointed at the snake_case spelling.
  const spelled = hint && key.includes('_') ? fields[hint] : hint;
  return spelled
    ? `unknown ${noun}; did you mean ${spelled}?`
    : `unknown ${noun}; the ${noun}s are ${names.join(', ')}`;
}

/** The known name that `key` most likely meant: same letters ignoring case and _/-, or a near miss. */
function closest(key: string, names: string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const k = norm(key);
  let best: { name: string; d: number } | undefined;
  for (const name of names) {
    const n = norm(name);
    const prefix = k.length >= 3 && (n.startsWith(k) || k.startsWith(n) || sharedPrefix(k, n) >= 5);
    const d = n === k ? 0 : prefix ? 1 : editDistance(k, n);
    if (d <= 2 && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

function sharedPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}
