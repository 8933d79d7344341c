import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { QueueEvents } from 'bullmq';
import { TestEnv, sleep, until } from './harness.js';

/**
 * Events on PostgreSQL commit out of id order when several processes publish at once. These tests
 * make that happen on purpose with two sessions and check that a reader neither loses nor reorders.
 */
describe('event reading on postgres', () => {
  let env: TestEnv | undefined;
  const clients: pg.Client[] = [];
  let events: QueueEvents | undefined;

  afterEach(async () => {
    await events?.close();
    events = undefined;
    await Promise.allSettled(clients.splice(0).map((c) => c.end()));
    await env?.cleanup();
    env = undefined;
  });

  async function setUp() {
    env = await TestEnv.create('postgres');
    const store = await env.app().store();
    // A producer first, so BullMQ's schema exists before the raw sessions use it.
    const producer = store.createEventsProducer('fast_tasks');
    await producer.publishEvent({ eventName: 'warm-up' });
    await producer.close();
    events = store.createQueueEvents('fast_tasks');
    const seen: string[] = [];
    events.on('marker' as 'progress', (e: unknown) => seen.push((e as { n: string }).n));
    await events.waitUntilReady();
    await sleep(300); // the reader has taken its starting point
    const session = async () => {
      const client = new pg.Client({ connectionString: env!.brokerUrl });
      await client.connect();
      await client.query(`SET search_path TO "${env!.namespace}"`);
      clients.push(client);
      return client;
    };
    const publish = (client: pg.Client, n: string) =>
      client.query(`SELECT publish_event('fast_tasks', 'marker', $1::jsonb)`, [JSON.stringify({ n })]);
    return { seen, session, publish };
  }

  it('delivers an event whose transaction commits after a later one, in id order', async () => {
    const { seen, session, publish } = await setUp();
    const [slow, quick] = [await session(), await session()];
    await slow.query('BEGIN');
    await publish(slow, 'first');
    await publish(quick, 'second');
    // "first" holds the wake-up lock, so wake the reader by hand: it reads "second" now.
    await quick.query(`NOTIFY bullmq_events, 'fast_tasks'`);
    await sleep(100);
    await slow.query('COMMIT');
    await until(async () => seen.length >= 2, 10_000, 'both events');
    expect(seen).toEqual(['first', 'second']);
  });

  it('still delivers an event that commits long after later ones, and goes on past a rolled-back one', async () => {
    const { seen, session, publish } = await setUp();
    const [slow, quick, aborted] = [await session(), await session(), await session()];
    await slow.query('BEGIN');
    await publish(slow, 'late');
    await aborted.query('BEGIN');
    await publish(aborted, 'never');
    await publish(quick, 'on time');
    await until(async () => seen.includes('on time'), 10_000, 'the event after the gaps');
    await aborted.query('ROLLBACK');
    await sleep(1_000); // past the reader's hold: order gives way, delivery does not
    await slow.query('COMMIT');
    await publish(quick, 'after');
    await until(async () => seen.length >= 3, 10_000, 'the late event');
    await sleep(200);
    expect(seen).toEqual(['on time', 'late', 'after']);
  });

  it('finds an event whose wake-up another publisher swallowed', async () => {
    const { seen, session, publish } = await setUp();
    const [a, b] = [await session(), await session()];
    await a.query('BEGIN');
    await publish(a, 'a'); // takes the per-queue NOTIFY lock until it commits
    await b.query('BEGIN');
    await publish(b, 'b'); // so this one sends no NOTIFY at all
    await a.query('COMMIT');
    await until(async () => seen.includes('a'), 10_000, 'the notified event');
    await sleep(300);
    await b.query('COMMIT');
    // BullMQ's own reader would sleep until its 10 s blocking timeout; this one polls.
    await until(async () => seen.includes('b'), 5_000, 'the event committed without a NOTIFY');
    expect(seen).toEqual(['a', 'b']);
  });
});
