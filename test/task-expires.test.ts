// Celery's `expires` and `eta` (issue 15) on every store: a task not started by its expiry time
// never runs and ends cancelled with reason `expired`; eta is a countdown written as a date.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ScheduleInvalidError, TaskCancelledError, ValidationError } from '../src/core/errors.js';
import { checkSchedule } from '../src/gateway/schedule-schema.js';
import { GatewayEnv, probe as httpProbe, uid } from './gateway-harness.js';
import { STORE_KINDS, TestEnv, probe, until } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'aiecs-expires-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let logs = 0;
/** A file the probe's sleep task writes `start <id>` to when it runs. */
const runLog = () => join(dir, `run-${++logs}.log`);
const ran = (log: string) => existsSync(log) && readFileSync(log, 'utf8').includes('start');

describe.each(STORE_KINDS)('expires and eta on %s', (kind) => {
  let env: TestEnv;
  const closeAfter: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.allSettled(closeAfter.splice(0).map((close) => close()));
    await env?.cleanup();
  });

  it('ends a delayed task cancelled (expired) when its expiry passes first: the service never runs', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    await env.worker();
    const store = await app.store();
    const events = store.createQueueEvents('fast_tasks');
    const finals: unknown[] = [];
    events.on('progress', ({ data }) => finals.push(data));
    await events.waitUntilReady();
    closeAfter.push(() => events.close());
    const log = runLog();
    const handle = await app.executeTask.delay(probe('sleep', { ms: 10, log }), { countdown: 2, expires: 1 });

    const error = await handle.get({ timeout: 30 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskCancelledError);
    expect((error as TaskCancelledError).reason).toBe('expired');
    expect((error as TaskCancelledError).message).toMatch(/^expired: not started by its expiry time /);
    const record = await handle.status();
    expect(record).toMatchObject({
      status: 'cancelled',
      error: { type: 'TaskCancelledError', code: 'E004', details: { reason: 'expired' } },
      // It never ran: no start time, no attempt spent.
      started_at: null,
      duration_ms: null,
      attempt: 0,
    });
    expect(ran(log)).toBe(false);
    // Its end went out as an event, as any cancel's does (the gateway relays it to the user).
    await until(async () => finals.some((p) => (p as { status?: string }).status === 'cancelled'), 10_000);
  });

  it('accepts an expiry already past at submit; the task ends expired once a worker takes it', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const log = runLog();
    const past = new Date(Date.now() - 60_000).toISOString();
    const handle = await app.executeTask.delay(probe('sleep', { ms: 10, log }), { expires: past });
    expect((await handle.status()).status).toBe('pending');
    await env.worker();
    const error = await handle.get({ timeout: 30 }).catch((e: unknown) => e);
    expect((error as TaskCancelledError).reason).toBe('expired');
    expect(ran(log)).toBe(false);
  });

  it('runs a task started before its expiry, and an eta task no earlier than its eta', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    await env.worker();
    const eta = new Date(Date.now() + 1500);
    const handle = await app.executeTask.delay(probe('echo', { n: 1 }), {
      eta: eta.toISOString(),
      expires: 120,
    });
    expect((await handle.status()).status).toBe('pending');
    const record = await handle.get({ timeout: 30 });
    expect(record.status).toBe('completed');
    expect(Date.parse(record.started_at!)).toBeGreaterThanOrEqual(eta.getTime());
  });

  it('refuses bad values naming the field, and countdown with eta naming both', async () => {
    env = await TestEnv.create(kind);
    const app = env.app();
    const refused = async (options: Record<string, unknown>) => {
      const error = await app.executeTask.delay(probe('echo'), options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      return (error as ValidationError).issues.map((i) => i.field);
    };
    expect(await refused({ expires: -1 })).toEqual(['options.expires']);
    expect(await refused({ expires: NaN })).toEqual(['options.expires']);
    expect(await refused({ expires: 'next tuesday' })).toEqual(['options.expires']);
    expect(await refused({ eta: 'soon' })).toEqual(['options.eta']);
    expect(await refused({ countdown: 1, eta: new Date().toISOString() })).toEqual([
      'options.countdown',
      'options.eta',
    ]);
  });
});

describe('expires over HTTP', () => {
  let ge: GatewayEnv;
  afterEach(async () => ge?.cleanup());

  it("takes expires on POST /api/tasks, refuses bad values naming it, and tells the user's socket", async () => {
    ge = await GatewayEnv.create('embedded');
    const user = uid('u');
    const api = await ge.api(user);
    const client = await ge.client(user);

    // A validation error is the gateway's 400 (VALIDATION_ERROR), naming the field as the body has it.
    const fields = (res: { body: { error: { details: { issues: Array<{ field: string }> } } } }) =>
      res.body.error.details.issues.map((i) => i.field);
    const bad = await api.submit(httpProbe('echo', {}, { expires: -5 }));
    expect(bad.status).toBe(400);
    expect(fields(bad)).toEqual(['expires']);
    const unparsable = await api.submit(httpProbe('echo', {}, { expires: '2030-02-31T00:00:00Z' }));
    expect(fields(unparsable)).toEqual(['expires']);
    const both = await api.submit(httpProbe('echo', {}, { countdown: 1, eta: new Date().toISOString() }));
    expect(both.status).toBe(400);
    expect(fields(both)).toEqual(['countdown', 'eta']);

    const log = runLog();
    const res = await api.submit(httpProbe('sleep', { ms: 10, log }, { countdown: 2, expires: 1 }));
    expect(res.status).toBe(202);
    const id = res.body.task_id as string;
    client.subscribe(id);
    await client.waitTerminal([id]);
    expect(client.terminal(id)).toMatchObject({ status: 'cancelled', error_code: 'E004' });
    const record = await api.settled(id);
    expect(record).toMatchObject({ status: 'cancelled', error: { details: { reason: 'expired' } } });
    expect(ran(log)).toBe(false);
  });
});

describe('expires in a schedule', () => {
  it('is refused: it would be fixed when the schedule is loaded and expire every later fire', () => {
    const task = { task_name: 'echo', user_id: 'u', mode: 'test', service: 'probe', expires: 60 };
    const error = (() => {
      try {
        return checkSchedule({ name: 'nightly', every: 60, task }, 1024);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ScheduleInvalidError);
    expect((error as ScheduleInvalidError).issues.map((i) => i.field)).toEqual(['task.expires']);
  });
});
