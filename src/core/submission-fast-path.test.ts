// The hand-checked fast path of prepareSubmission against the zod schema it stands in for: over
// requests generated field by field (good, bad, missing and extra values, unicode, sizes at the
// limits), the fast path either declines (the schema decides) or gives exactly the schema's
// result, and it declines nothing the schema accepts that it is meant to take. A limit changed in
// one of the two places only fails here.
import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import { isFastRequest, prepareSubmission, taskRequestSchema } from './submission.js';
import { DEFAULT_PRIORITY, FAST_QUEUE } from './task.js';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const MAX_INPUT_BYTES = 200;
const base = { task_name: 'analyze_text', user_id: 'user-1', mode: 'chat', service: 'text_analyzer' };

const x = (n: number, c = 'x') => c.repeat(n);
const names = {
  good: ['a', '_', 'A.b-c_9', x(128), `a${x(127, '9')}`, '_.-'],
  bad: ['', x(129), `a${x(128)}`, '9abc', '.a', '-a', 'a b', 'a:b', 'é', 'aé', '😀', 'a\u0000', ' a', 'a\n'],
};
const notStrings = [5, 0, null, true, ['a'], {}, new Date(0)];
const userIds = {
  // zod counts length in code points: a surrogate pair (😀) is one.
  good: ['u', x(256), x(256, 'é'), x(256, '😀'), `${x(255)}😀`, 'a\u0001\t', '💡 user', '\uffff'],
  bad: ['', x(257), `${x(256)}😀`, `${x(256, '😀')}a`, 'a\u0000', '\ud800', 'x\udfff', `${x(255)}\ud83d`],
};
const steps = {
  good: [0, 1, 42, Number.MAX_SAFE_INTEGER, -0],
  bad: [-1, 1.5, -0.5, Number.MAX_SAFE_INTEGER + 1, 2 ** 60, NaN, Infinity, -Infinity, '1', null, true],
};
const sized = (bytes: number) => ({ t: x(bytes - '{"t":""}'.length) }); // JSON of exactly `bytes`
const objects = {
  good: [{}, { a: 1 }, { nested: { deep: [1, 'two', null] } }, { date: new Date(0) }, { 'k é': '😀' }],
  bad: [[], null, 'text', 5, true, new Date(0), [{ a: 1 }]],
  // What the schema takes and the fast path leaves to it by design: not plain objects.
  notPlain: [Object.create(null) as object, Object.assign(Object.create(null) as object, { a: 1 })],
};

type Req = Record<string, unknown>;
const missing = Symbol('missing');

/** Every field of the request, each with each of its values, the others at their base values. */
function fieldByField(): Req[] {
  const out: Req[] = [];
  const vary = (field: string, values: unknown[]) => {
    for (const value of values) {
      const req: Req = { ...base };
      if (value === missing) delete req[field];
      else req[field] = value;
      out.push(req);
    }
  };
  for (const field of ['task_name', 'mode', 'service'])
    vary(field, [...names.good, ...names.bad, ...notStrings, undefined, missing]);
  vary('user_id', [...userIds.good, ...userIds.bad, ...notStrings, undefined, missing]);
  vary('step', [...steps.good, ...steps.bad, undefined, missing]);
  for (const field of ['input_data', 'context'])
    vary(field, [
      ...objects.good,
      ...objects.bad,
      ...objects.notPlain,
      sized(MAX_INPUT_BYTES - 2), // with the other one at {} (2 bytes): exactly the limit
      sized(MAX_INPUT_BYTES - 1),
      { s: 'a\u0000' },
      { s: '\udc00' },
      undefined,
      missing,
    ]);
  vary('task_id', ['abc', 'a.b-c', '12', '', 'a:b', x(129), undefined, missing]);
  // Extra keys: misspellings, the library's camelCase, options in the wrong place, a JSON __proto__.
  for (const extra of ['taskName', 'userId', 'countdown', 'priority', 'extra', 'TASK_NAME'])
    out.push({ ...base, [extra]: 'x' });
  out.push(JSON.parse('{"task_name":"a","user_id":"u","mode":"m","service":"s","__proto__":{"x":1}}') as Req);
  out.push(Object.assign(Object.create({ inherited: 1 }) as Req, base));
  return out;
}

/** A small seeded generator (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Requests mixing several fields' values at once, good and bad. */
function mixed(count: number): Req[] {
  const next = random(14);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const goodOrBad = <T>(good: T[], bad: unknown[]) => (next() < 0.8 ? pick(good) : pick(bad));
  const out: Req[] = [];
  for (let i = 0; i < count; i++) {
    const req: Req = {
      task_name: goodOrBad(names.good, [...names.bad, ...notStrings]),
      user_id: goodOrBad(userIds.good, [...userIds.bad, ...notStrings]),
      mode: goodOrBad(names.good, names.bad),
      service: goodOrBad(names.good, names.bad),
    };
    if (next() < 0.5) req.step = goodOrBad(steps.good, steps.bad);
    if (next() < 0.5) req.input_data = goodOrBad(objects.good, [...objects.bad, ...objects.notPlain]);
    if (next() < 0.5) req.context = goodOrBad(objects.good, objects.bad);
    if (next() < 0.05) req.task_id = 'chosen-id';
    if (next() < 0.05) req[pick(['extra', 'taskName', 'eta'])] = 1;
    out.push(req);
  }
  return out;
}

const isPlain = (v: unknown) =>
  typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
/** What the fast path is meant to take whenever the schema does: plain objects, no chosen task id. */
const meantForFastPath = (req: Req) =>
  isPlain(req) &&
  req.task_id === undefined &&
  (req.input_data === undefined || isPlain(req.input_data)) &&
  (req.context === undefined || isPlain(req.context));

/** prepareSubmission's outcome, comparable: the job without its random id, or the refusal. */
function outcome(run: () => ReturnType<typeof prepareSubmission>): unknown {
  try {
    const { data, ...rest } = run();
    const { task_id: _id, ...job } = data;
    return { ...rest, data: { ...job, options: { ...data.options } } };
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    const issues = error instanceof ValidationError ? error.issues : undefined;
    return { error: error.constructor.name, message: error.message, issues };
  }
}

describe('the fast path of prepareSubmission against the schema', () => {
  const requests = [...fieldByField(), ...mixed(3000)];

  it('gives exactly the schema path’s result or refusal, and takes all it is meant to take', () => {
    let fast = 0;
    let schemaAccepts = 0;
    for (const req of requests) {
      const took = isFastRequest(req);
      const parsed = taskRequestSchema.safeParse(req);
      const label = JSON.stringify(req) ?? String(req);
      if (took) {
        fast++;
        expect(parsed.success, `fast path took what the schema refuses: ${label}`).toBe(true);
      }
      if (parsed.success) schemaAccepts++;
      if (parsed.success && meantForFastPath(req))
        expect(took, `fast path declined what the schema accepts: ${label}`).toBe(true);
      // Without options the fast path may run; with options the schema always does. The default
      // priority as an option changes nothing else in the job.
      const viaFast = outcome(() => prepareSubmission(FAST_QUEUE, req, undefined, MAX_INPUT_BYTES, NOW));
      const viaSchema = outcome(() =>
        prepareSubmission(FAST_QUEUE, req, { priority: DEFAULT_PRIORITY[FAST_QUEUE] }, MAX_INPUT_BYTES, NOW),
      );
      expect(viaFast, label).toEqual(viaSchema);
    }
    // Not vacuous: both paths and both answers are exercised.
    expect(fast).toBeGreaterThan(500);
    expect(schemaAccepts - fast).toBeGreaterThan(50);
    expect(requests.length - schemaAccepts).toBeGreaterThan(1000);
  });

  it('reaches every limit from both sides', () => {
    const accepted = (req: Req) => taskRequestSchema.safeParse(req).success;
    expect(accepted({ ...base, task_name: x(128) })).toBe(true);
    expect(accepted({ ...base, task_name: x(129) })).toBe(false);
    expect(accepted({ ...base, user_id: x(256) })).toBe(true);
    expect(accepted({ ...base, user_id: x(257) })).toBe(false);
    expect(accepted({ ...base, user_id: x(256, '😀') })).toBe(true);
    expect(accepted({ ...base, user_id: `${x(256, '😀')}a` })).toBe(false);
    expect(accepted({ ...base, step: Number.MAX_SAFE_INTEGER })).toBe(true);
    expect(accepted({ ...base, step: Number.MAX_SAFE_INTEGER + 1 })).toBe(false);
    const atLimit = { ...base, input_data: sized(MAX_INPUT_BYTES - 2) };
    expect(() => prepareSubmission(FAST_QUEUE, atLimit, undefined, MAX_INPUT_BYTES, NOW)).not.toThrow();
    const over = { ...base, input_data: sized(MAX_INPUT_BYTES - 1) };
    expect(() => prepareSubmission(FAST_QUEUE, over, undefined, MAX_INPUT_BYTES, NOW)).toThrow(
      /over the limit/,
    );
  });
});
