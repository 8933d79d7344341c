// Submit-time checks that are the same on every store and every way in (HTTP, batch, library):
// text no store can keep, the one-year cap on countdown and eta, expires, and the library's spellings.
import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import { findTextProblem, jsonTextProblem, textProblem } from './storable-text.js';
import { prepareSubmission } from './submission.js';
import { libraryToWire } from './library-wire.js';
import { MAX_DELAY_S } from './task.js';

const MiB = 1024 * 1024;
const base = { task_name: 'echo', user_id: 'u', mode: 'test', service: 'probe' };

function refusal(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError, got none');
}

const issuesOf = (error: ValidationError) => error.issues.map((i) => `${i.field}: ${i.message}`);

describe('text no store can keep', () => {
  const NUL = 'contains a NUL character (U+0000)';
  it.each([
    [{ input_data: { text: 'a\u0000b' } }, `input_data.text: ${NUL}`],
    [{ context: { deep: [{ x: ['ok', '\u0000'] }] } }, `context.deep[0].x[1]: ${NUL}`],
    [{ input_data: { 'a b': { c: '\u0000' } } }, `input_data["a b"].c: ${NUL}`],
    [{ input_data: { nested: { 'k\u0000': 1 } } }, `input_data.nested: key "k\\u0000" ${NUL}`],
    [{ input_data: { s: 'x\ud800y' } }, 'input_data.s: contains an unpaired surrogate (U+D800)'],
    [{ input_data: { s: 'end\udbff' } }, 'input_data.s: contains an unpaired surrogate (U+DBFF)'],
    [{ context: { s: '\udc00start' } }, 'context.s: contains an unpaired surrogate (U+DC00)'],
    [{ user_id: 'u\u0000' }, `user_id: ${NUL}`],
    [{ user_id: '\ud83d' }, 'user_id: contains an unpaired surrogate (U+D83D)'],
  ])('refuses %j naming the field', (extra, expected) => {
    const request = { ...base, ...extra };
    // Both ways through prepareSubmission: the hand-checked fast path and the schema's.
    for (const options of [undefined, { priority: 5 }]) {
      const error = refusal(() => prepareSubmission('fast_tasks', request, options, MiB));
      expect(issuesOf(error).join('; ')).toContain(expected);
      expect(error.wireCode).toBe('E001');
      expect(error.message).not.toContain('\u0000');
    }
  });

  it('keeps what every store can keep: pairs, other control characters, escaped look-alikes', () => {
    const input_data = {
      emoji: '😀 𝄞',
      controls: '\u0001\u001f\t\n',
      lookalike: '\\u0000 and \\ud800 are just text',
      bmp: '\uffff\ue000',
      date: new Date(0),
    };
    const { data } = prepareSubmission('fast_tasks', { ...base, input_data }, undefined, MiB);
    expect(data.input_data).toBe(input_data);
  });

  it('judges what is stored: toJSON output counts', () => {
    const sneaky = { toJSON: () => 'a\u0000' };
    const error = refusal(() =>
      prepareSubmission('fast_tasks', { ...base, input_data: { sneaky } }, undefined, MiB),
    );
    expect(issuesOf(error)).toEqual([`input_data.sneaky: contains a NUL character (U+0000)`]);
  });

  it('has helpers that agree with each other', () => {
    expect(textProblem('fine')).toBeUndefined();
    expect(textProblem('\ud83d\ude00')).toBeUndefined();
    expect(findTextProblem({ a: [1, null, true, { b: 'ok' }] }, 'x')).toBeUndefined();
    expect(jsonTextProblem(JSON.stringify({ a: '\\u0000' }), 'x')).toBeUndefined();
    expect(jsonTextProblem(JSON.stringify({ a: 'x\u0000' }), 'x')).toEqual({
      field: 'x.a',
      message: 'contains a NUL character (U+0000)',
    });
  });
});

describe('one cap for countdown and eta', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const submit = (options: Record<string, unknown>) =>
    prepareSubmission('fast_tasks', base, options, MiB, now);

  it('accepts both up to one year ahead', () => {
    expect(submit({ countdown: MAX_DELAY_S }).delayMs).toBe(MAX_DELAY_S * 1000);
    const eta = new Date(now + MAX_DELAY_S * 1000);
    expect(submit({ eta }).delayMs).toBe(MAX_DELAY_S * 1000);
    expect(submit({ eta: eta.toISOString() }).delayMs).toBe(MAX_DELAY_S * 1000);
    expect(submit({ eta: new Date(now - 5000) }).delayMs).toBe(0);
  });

  it('refuses both past one year, in the same words', () => {
    const countdown = issuesOf(refusal(() => submit({ countdown: MAX_DELAY_S + 1 })));
    expect(countdown).toEqual([`options.countdown: must be at most one year (${MAX_DELAY_S} s)`]);
    for (const eta of [new Date(now + MAX_DELAY_S * 1000 + 1000), '2099-01-01T00:00:00Z']) {
      const issues = issuesOf(refusal(() => submit({ eta })));
      expect(issues).toEqual([`options.eta: must be at most one year (${MAX_DELAY_S} s) from now`]);
    }
  });
});

describe('expires and eta', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const submit = (options: Record<string, unknown>) =>
    prepareSubmission('fast_tasks', base, options, MiB, now);

  it('stores the absolute expiry: seconds from now, or a date, a past one included', () => {
    expect(submit({ expires: 1.5 }).data.expires_at).toBe(now + 1500);
    expect(submit({ expires: 0 }).data.expires_at).toBe(now);
    expect(submit({ expires: '2030-01-01T01:00:00+01:00' }).data.expires_at).toBe(now);
    expect(submit({ expires: new Date(now - 60_000) }).data.expires_at).toBe(now - 60_000);
    expect(submit({ expires: '2029-12-31T23:00:00Z' }).data.expires_at).toBe(now - 3_600_000);
    expect(submit({ countdown: 2, expires: 1 })).toMatchObject({
      delayMs: 2000,
      data: { expires_at: now + 1000 },
    });
    expect(submit({ priority: 5 }).data).not.toHaveProperty('expires_at');
    expect(prepareSubmission('fast_tasks', base, undefined, MiB, now).data).not.toHaveProperty('expires_at');
  });

  it.each([
    [-1, 'must be >= 0'],
    [NaN, 'must be seconds from now (a number >= 0) or an ISO 8601 date-time with offset'],
    [Infinity, 'must be seconds from now (a number >= 0) or an ISO 8601 date-time with offset'],
    [MAX_DELAY_S + 1, `must be at most one year (${MAX_DELAY_S} s)`],
    ['tomorrow', 'Invalid ISO datetime'],
    ['2030-02-31T00:00:00Z', 'Invalid ISO datetime'],
    ['2030-01-02T00:00:00', 'Invalid ISO datetime'],
    [new Date(NaN), 'must be seconds from now (a number >= 0) or an ISO 8601 date-time with offset'],
    [null, 'must be seconds from now (a number >= 0) or an ISO 8601 date-time with offset'],
    ['2032-01-01T00:00:00Z', `must be at most one year (${MAX_DELAY_S} s) from now`],
  ])('refuses expires %j naming options.expires', (expires, message) => {
    expect(issuesOf(refusal(() => submit({ expires })))).toEqual([`options.expires: ${message}`]);
  });

  it('refuses countdown and eta together, naming both', () => {
    const issues = issuesOf(refusal(() => submit({ countdown: 1, eta: '2030-01-01T00:00:05Z' })));
    expect(issues).toEqual([
      'options.countdown: give countdown or eta, not both',
      'options.eta: give countdown or eta, not both',
    ]);
  });

  it('runs an eta in the past now, and one ahead after that long', () => {
    expect(submit({ eta: '2029-12-31T00:00:00Z' }).delayMs).toBe(0);
    expect(submit({ eta: '2030-01-01T00:00:02.500Z' }).delayMs).toBe(2500);
  });
});

describe("the library's spellings", () => {
  const camel = { taskName: 'echo', userId: 'u', mode: 'test', service: 'probe', inputData: { a: 1 } };
  const snake = { task_name: 'echo', user_id: 'u', mode: 'test', service: 'probe', input_data: { a: 1 } };

  it("takes the seed's snake_case as it takes camelCase, options too", () => {
    const a = libraryToWire(camel, { timeLimit: 5, softTimeLimit: 2, countdown: 1, expires: 9 });
    const b = libraryToWire(snake, { time_limit: 5, soft_time_limit: 2, countdown: 1, expires: 9 });
    expect(a.request).toEqual(snake);
    expect(b.request).toEqual(snake);
    expect(a.options).toEqual({ time_limit: 5, soft_time_limit: 2, countdown: 1, expires: 9 });
    expect(b.options).toEqual(a.options);
    // And it goes through the submit checks like any wire request.
    expect(prepareSubmission('fast_tasks', b.request, b.options, MiB).data.input_data).toEqual({ a: 1 });
  });

  it('takes both spellings of a field when they agree, and refuses them naming both when not', () => {
    const same = libraryToWire({ ...camel, input_data: { a: 1 }, task_name: 'echo' });
    expect(same.request).toEqual(snake);
    const error = refusal(() =>
      libraryToWire({ ...camel, task_name: 'other' }, { timeLimit: 1, time_limit: 2 }),
    );
    expect(issuesOf(error)).toEqual([
      'taskName: taskName and task_name are one field given twice with different values; give one',
      'options.timeLimit: timeLimit and time_limit are one field given twice with different values; give one',
    ]);
  });

  it('refuses unknown fields by name, with a hint naming the right one', () => {
    const error = refusal(() =>
      libraryToWire(
        {
          taskname: 'echo',
          user: 'u',
          mode: 'test',
          service: 'probe',
          input_dat: {},
          countdown: 3,
          bogus: 1,
        },
        { timelimit: 3, mode: 'x' },
      ),
    );
    expect(issuesOf(error)).toEqual([
      'taskname: unknown field; did you mean taskName?',
      'user: unknown field; did you mean userId?',
      'input_dat: unknown field; did you mean input_data?',
      'countdown: unknown field: it is a submit option, given in the second argument, delay(request, { options })',
      'bogus: unknown field; the fields are taskName, userId, taskId, step, mode, service, inputData, context',
      'options.timelimit: unknown option; did you mean timeLimit?',
      'options.mode: unknown option: it is a field of the task request, the first argument of delay()',
    ]);
    expect(issuesOf(refusal(() => libraryToWire('echo')))).toEqual([
      '(root): expected a task request object',
    ]);
  });

  it('names a field in later errors as the caller spelled it, never as missing when it was given', async () => {
    const fail = (issues: Array<{ field: string; message: string }>) =>
      Promise.reject(new ValidationError(issues));
    const fromCamel = libraryToWire({ ...camel, taskName: '' }, { timeLimit: -1 });
    const e1 = await fromCamel
      .respell(
        fail([
          { field: 'task_name', message: 'must not be empty' },
          { field: 'input_data.a', message: 'x' },
          { field: 'options.time_limit', message: 'must be positive' },
          { field: 'mode', message: 'y' },
        ]),
      )
      .catch((e: ValidationError) => e);
    expect(issuesOf(e1 as ValidationError)).toEqual([
      'taskName: must not be empty',
      'inputData.a: x',
      'options.timeLimit: must be positive',
      'mode: y',
    ]);
    const fromSnake = libraryToWire({ ...snake, task_name: '' });
    const e2 = await fromSnake
      .respell(fail([{ field: 'task_name', message: 'must not be empty' }]))
      .catch((e: ValidationError) => e);
    expect(issuesOf(e2 as ValidationError)).toEqual(['task_name: must not be empty']);
    // The seed's spelling passes the schema: no "expected string, received undefined" for a given field.
    const w = libraryToWire(snake);
    expect(() => prepareSubmission('fast_tasks', w.request, w.options, MiB)).not.toThrow();
  });
});
