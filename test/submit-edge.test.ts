// The library's submit edge on every store: text PostgreSQL's JSON cannot keep is refused the same
// way everywhere (before any store sees it), the seed's snake_case spelling works, and one cap
// holds for countdown and eta.
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../src/core/errors.js';
import { prepareSubmission } from '../src/core/submission.js';
import type { TaskRequest } from '../src/core/task.js';
import { MAX_DELAY_S } from '../src/core/task.js';
import { STORE_KINDS, TestEnv, probe } from './harness.js';

const fieldsOf = (error: unknown) => {
  expect(error).toBeInstanceOf(ValidationError);
  return (error as ValidationError).issues.map((i) => `${i.field}: ${i.message}`);
};

describe.each(STORE_KINDS)('library submit edge on %s', (kind) => {
  let env: TestEnv | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  it('refuses NUL and unpaired surrogates with a validation error naming the field, and queues nothing', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const cases: Array<[TaskRequest, string]> = [
      [probe('echo', { text: 'a\u0000b' }), 'inputData.text: contains a NUL character (U+0000)'],
      [probe('echo', {}, { context: { lang: { 'k\u0000': 1 } } }), 'context.lang: key "k\\u0000"'],
      [probe('echo', { s: 'x\ud800' }), 'inputData.s: contains an unpaired surrogate (U+D800)'],
      [probe('echo', {}, { userId: 'u\u0000' }), 'userId: contains a NUL character (U+0000)'],
    ];
    for (const [request, expected] of cases) {
      const error = await app.executeTask.delay(request).catch((e: unknown) => e);
      expect(fieldsOf(error).join('; '), expected).toContain(expected);
      expect((error as ValidationError).wireCode).toBe('E001');
      const heavy = await app.executeHeavyTask.delay(request).catch((e: unknown) => e);
      expect(heavy).toBeInstanceOf(ValidationError);
    }
    // A bulk submit names the item; nothing of it is queued.
    const bulk = await app
      .submitWire([
        { queue: 'fast_tasks', request: { task_name: 'echo', user_id: 'u', mode: 'test', service: 'probe' } },
        {
          queue: 'fast_tasks',
          request: {
            task_name: 'echo',
            user_id: 'u',
            mode: 'test',
            service: 'probe',
            input_data: { t: '\0' },
          },
        },
      ])
      .catch((e: unknown) => e);
    expect(fieldsOf(bulk)).toEqual(['[1].input_data.t: contains a NUL character (U+0000)']);
    const queue = await app.queue('fast_tasks');
    expect(await queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active')).toEqual({
      waiting: 0,
      delayed: 0,
      prioritized: 0,
      active: 0,
    });
    // What every store keeps is kept, losslessly.
    await env.worker();
    const text = 'pairs 😀 𝄞, controls \u0001\t, look-alikes \\u0000 \\ud800';
    const done = await (await app.executeTask.delay(probe('echo', { text }))).get({ timeout: 30 });
    expect(done.result).toMatchObject({ echo: { text } });
  });

  it("runs a request written in the seed's snake_case, and names fields as the caller spelled them", async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    await env.worker();
    const seed = {
      task_name: 'echo',
      user_id: 'user-1',
      mode: 'test',
      service: 'probe',
      input_data: { n: 1 },
      context: { language: 'en' },
    } as unknown as TaskRequest;
    const handle = await app.executeTask.delay(seed, { time_limit: 30 } as never);
    const record = await handle.get({ timeout: 30 });
    expect(record).toMatchObject({ status: 'completed', user_id: 'user-1', input_data: { n: 1 } });

    const mixed = await app.executeTask
      .delay({ ...seed, taskName: 'other' } as unknown as TaskRequest)
      .catch((e: unknown) => e);
    expect(fieldsOf(mixed)).toEqual([
      'task_name: task_name and taskName are one field given twice with different values; give one',
    ]);
    const unknown = await app.executeTask
      .delay({ ...seed, inputs: {} } as unknown as TaskRequest)
      .catch((e: unknown) => e);
    expect(fieldsOf(unknown)).toEqual(['inputs: unknown field; did you mean inputData?']);
    const badSnake = await app.executeTask
      .delay({ ...seed, task_name: '9x' } as unknown as TaskRequest)
      .catch((e: unknown) => e);
    expect(fieldsOf(badSnake)[0]).toMatch(/^task_name: must start with a letter/);
  });

  it('caps eta at one year as it caps countdown', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const far = new Date(Date.now() + (MAX_DELAY_S + 86400) * 1000);
    const eta = await app.executeTask.delay(probe('echo'), { eta: far }).catch((e: unknown) => e);
    expect(fieldsOf(eta)).toEqual([`options.eta: must be at most one year (${MAX_DELAY_S} s) from now`]);
    const countdown = await app.executeTask
      .delay(probe('echo'), { countdown: MAX_DELAY_S + 1 })
      .catch((e: unknown) => e);
    expect(fieldsOf(countdown)).toEqual([`options.countdown: must be at most one year (${MAX_DELAY_S} s)`]);
    const near = await app.executeTask.delay(probe('echo'), { eta: new Date(Date.now() + 3_600_000) });
    expect((await near.status()).status).toBe('pending');
  });
});

// The check is on the hot path: the figures are printed for the report, never asserted.
describe('the text check on the submit path', () => {
  it('finds a NUL at the end of a 1 MB input, in about the time JSON.stringify takes anyway', () => {
    const text = 'lorem ipsum dolor sit amet, '.repeat(36_000);
    const request = (input_data: Record<string, unknown>) => ({
      task_name: 'echo',
      user_id: 'u',
      mode: 'test',
      service: 'probe',
      input_data,
    });
    const clean = request({ text, n: [1, 2, 3] });
    const dirty = request({ text, n: [1, 2, 3], last: ['ok', 'x\u0000'] });
    const limit = 2 * 1024 * 1024;
    const error = (() => {
      try {
        prepareSubmission('fast_tasks', dirty, undefined, limit);
      } catch (e) {
        return e;
      }
    })();
    expect(fieldsOf(error)).toEqual(['input_data.last[1]: contains a NUL character (U+0000)']);
    const runs = 20;
    prepareSubmission('fast_tasks', clean, undefined, limit);
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) prepareSubmission('fast_tasks', clean, undefined, limit);
    const submit = (performance.now() - t0) / runs;
    const t1 = performance.now();
    for (let i = 0; i < runs; i++) Buffer.byteLength(JSON.stringify(clean.input_data));
    const sizeOnly = (performance.now() - t1) / runs;
    console.info(
      `1 MB input: prepareSubmission ${submit.toFixed(2)} ms; JSON.stringify + byteLength alone ${sizeOnly.toFixed(2)} ms`,
    );
  });
});
