import { afterEach, describe, expect, it } from 'vitest';
import { STORE_KINDS, TestEnv } from './harness.js';

describe.each(STORE_KINDS)('smoke on %s', (kind) => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  it('runs a fast and a heavy task', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const h = await app.executeTask.delay({
      taskName: 'echo',
      userId: 'u1',
      mode: 'test',
      service: 'probe',
      inputData: { a: 1 },
    });
    const r = await h.get({ timeout: 20 });
    expect(r.status).toBe('completed');
    expect((r.result as { echo: unknown }).echo).toEqual({ a: 1 });
    const h2 = await app.executeHeavyTask.delay({
      taskName: 'echo',
      userId: 'u1',
      mode: 'test',
      service: 'probe',
      inputData: { b: 2 },
    });
    const r2 = await h2.get({ timeout: 20 });
    expect((r2.result as { pid: number }).pid).not.toBe(process.pid);
  });
});
