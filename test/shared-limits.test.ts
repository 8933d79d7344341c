import { afterEach, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../src/core/task.js';
import { STORE_KINDS, TestEnv, sleep } from './harness.js';

/** Most intervals open at one instant. */
function maxOverlap(spans: Array<{ start: number; end: number }>): number {
  const edges = spans.flatMap((s) => [
    [s.start, 1],
    [s.end, -1],
  ]);
  edges.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let open = 0;
  let most = 0;
  for (const [, delta] of edges) most = Math.max(most, (open += delta!));
  return most;
}

describe.each(STORE_KINDS)('shared limits on %s', (kind) => {
  let env: TestEnv;
  afterEach(async () => env?.cleanup());

  it('counts hits per window and hands out leases up to the limit', async () => {
    env = await TestEnv.create(kind);
    const store = await env.app().store();
    const key = `k-${Date.now()}`;
    // Align to a fresh 2 s window so all three hits land in one.
    await sleep(2_000 - (Date.now() % 2_000) + 20);
    expect((await store.tryHit(key, 2, 2_000)).ok).toBe(true);
    expect((await store.tryHit(key, 2, 2_000)).ok).toBe(true);
    const refused = await store.tryHit(key, 2, 2_000);
    expect(refused.ok).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(2_000);

    expect(await store.acquireLease(key, 'a', 2, 400)).toBe(true);
    expect(await store.acquireLease(key, 'b', 2, 400)).toBe(true);
    expect(await store.acquireLease(key, 'c', 2, 400)).toBe(false);
    expect(await store.acquireLease(key, 'a', 2, 400)).toBe(true); // renewal
    await store.releaseLease(key, 'a');
    expect(await store.acquireLease(key, 'c', 2, 400)).toBe(true);
    await sleep(500); // b and c expire: a crashed holder frees its slot
    expect(await store.acquireLease(key, 'd', 1, 400)).toBe(true);
  });

  it('holds a concurrency limit across two workers and both pools', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    if (env.shared) await env.workerProcess();
    else await env.worker();
    const app = env.app();
    const request = {
      taskName: 'call',
      userId: 'u',
      mode: 'test',
      service: 'limited',
      inputData: { key: 'provider:fake', concurrency: 2, ms: 250 },
    };
    const handles = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        i % 2 ? app.executeTask.delay(request) : app.executeHeavyTask.delay(request),
      ),
    );
    const records: TaskRecord[] = await Promise.all(handles.map((h) => h.get({ timeout: 60 })));
    const spans = records.map((r) => r.result as { start: number; end: number; pid: number });
    expect(maxOverlap(spans)).toBe(2);
    expect(new Set(spans.map((s) => s.pid)).size).toBeGreaterThan(1);
  });

  it('gives up waiting for a slot when the task is cancelled', async () => {
    env = await TestEnv.create(kind);
    await env.worker();
    const app = env.app();
    const request = {
      taskName: 'call',
      userId: 'u',
      mode: 'test',
      service: 'limited',
      inputData: { key: 'solo', concurrency: 1, ms: 5_000 },
    };
    const holder = await app.executeTask.delay(request);
    const waiter = await app.executeTask.delay(request);
    await sleep(500);
    expect((await waiter.status()).status).toBe('running');
    await waiter.cancel();
    await expect(waiter.get({ timeout: 10 })).rejects.toMatchObject({ code: 'TASK_CANCELLED' });
    await holder.cancel();
  });
});
