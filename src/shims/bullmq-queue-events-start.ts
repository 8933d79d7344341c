/**
 * QueueEvents on Redis that reads every event published after it said it was ready.
 *
 * Written against bullmq 6.7.0, its pins unchanged in 6.7.6 (QueueEvents.run/consumeEvents,
 * classes/queue-events.js).
 *
 * Upstream behaviour it replaces: QueueEvents starts reading at `opts.lastEventId || '$'`, and `$`
 * is resolved by Redis at the first XREAD, which happens some time after `waitUntilReady()` has
 * resolved (after the connection is named, on the next turns of the event loop). An event
 * published in between is never delivered: docs/upstream.md, "QueueEvents misses events published
 * right after waitUntilReady" (20 of 20 lost in the reproduction there).
 *
 * What this does instead: the QueueEvents is made with `autorun: false`; the id of the stream's
 * last entry, read now, becomes its `opts.lastEventId` (the documented option, set once the value
 * is known), then `run()` starts it; `waitUntilReady()` resolves only after that point is fixed.
 * A correctness fix, not a speed one: it costs one XREVRANGE per QueueEvents at start and nothing
 * per event (no bench figure moves with it). src/shims/bullmq-queue-events-start.test.ts pins
 * the internals it relies on (where consumeEvents takes its starting id; `keys.events`; the
 * methods it wraps), so an upgrade that changes them fails that test.
 */
import type { QueueEvents } from 'bullmq';
import type { Redis as RedisClient } from 'ioredis';

/**
 * Starts `events` (made with `autorun: false`) at the stream's last entry as it is now; its
 * waitUntilReady resolves once that point is fixed. Returns `events`.
 */
export function startAtStreamEnd(events: QueueEvents, command: RedisClient): QueueEvents {
  const started = fixStartingPoint(command, events.keys.events!, () => Boolean(events.closing)).then(
    (from) => {
      if (events.closing || from === undefined) return;
      (events.opts as { lastEventId?: string }).lastEventId = from;
      events.run().catch((error: Error) => events.emit('error', error));
    },
  );
  const ready = events.waitUntilReady.bind(events);
  events.waitUntilReady = async () => {
    await started;
    return ready();
  };
  return events;
}

/**
 * The id of the stream's last entry ('0-0' when it is empty), where a reader starts. While Redis
 * is away it keeps asking: starting at '$' instead would skip whatever is added between Redis
 * coming back and the reader's first read. Undefined once the reader is closing.
 */
async function fixStartingPoint(
  command: RedisClient,
  key: string,
  closing: () => boolean,
): Promise<string | undefined> {
  for (let attempt = 1; !closing(); attempt++) {
    try {
      const entries = await command.xrevrange(key, '+', '-', 'COUNT', 1);
      return entries[0]?.[0] ?? '0-0';
    } catch {
      await new Promise((resolve) => setTimeout(resolve, Math.min(200 * attempt, 2_000)));
    }
  }
  return undefined;
}
