import { afterEach, describe, expect, it } from 'vitest';
import { STORE_KINDS, TestEnv, until } from './harness.js';

describe.each(STORE_KINDS)('queue events on %s', (kind) => {
  let env: TestEnv | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  it('receives an event published the moment waitUntilReady resolves, and none from before', async () => {
    env = await TestEnv.create(kind);
    const store = await env.app().store();
    const producer = store.createEventsProducer('fast_tasks');
    await producer.publishEvent({ eventName: 'marker', n: 'before' });
    for (let round = 0; round < 5; round++) {
      const events = store.createQueueEvents('fast_tasks');
      const seen: string[] = [];
      events.on('marker' as 'progress', (e: unknown) => seen.push((e as { n: string }).n));
      await events.waitUntilReady();
      // No pause here: the reader's starting point was fixed before it said it was ready.
      await producer.publishEvent({ eventName: 'marker', n: `after-${round}` });
      await until(async () => seen.length > 0, 10_000, 'the event published right after ready');
      expect(seen).toEqual([`after-${round}`]);
      await events.close();
    }
    await producer.close();
  });
});
