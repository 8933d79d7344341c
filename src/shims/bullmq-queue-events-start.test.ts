import { describe, expect, it } from 'vitest';
import { QueueEvents, Redis } from '../engine/bullmq.js';
import { installedVersion, sourceHash } from './test-pins.js';

/**
 * Pins what bullmq-queue-events-start.ts relies on in BullMQ. If this fails after an upgrade, read
 * the new QueueEvents (classes/queue-events.js): does consumeEvents still take its first id from
 * `opts.lastEventId` when it starts, and does `run()` still start it? Then check whether upstream
 * fixed the start position (docs/upstream.md) and delete the shim, or update the pins.
 */
describe('the QueueEvents start-position shim pins BullMQ', () => {
  it('is written against bullmq 6.7.6', () => {
    expect(installedVersion('bullmq')).toBe('6.7.6');
  });

  it('consumeEvents takes its starting id from opts.lastEventId, read when it starts', () => {
    const consume = (QueueEvents.prototype as unknown as Record<string, unknown>).consumeEvents;
    expect(String(consume)).toContain("let id = opts.lastEventId || '$';");
    expect(sourceHash(consume)).toBe('8f75d2122efce4741bcf5656ce46468351768ade407c01d46185f0a1e0bfe2f0');
    expect(sourceHash(QueueEvents.prototype.run)).toBe(
      '231270362211b4afa01b10b023482a42cf4f3c4e94bb732b2d33869252091840',
    );
  });

  it('a QueueEvents made with autorun false has the stream key, opts and methods the shim uses', async () => {
    // Never connects: nothing listens on port 1, and the client does not retry.
    const connection = new Redis({
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    const events = new QueueEvents('pinned', { connection, prefix: 'pfx', autorun: false });
    events.on('error', () => undefined);
    try {
      expect(events.keys.events).toBe('pfx:pinned:events');
      expect(typeof events.opts).toBe('object');
      expect((events.opts as { lastEventId?: string }).lastEventId).toBeUndefined();
      expect(events.closing).toBeFalsy();
      expect(typeof events.waitUntilReady).toBe('function');
    } finally {
      await events.close().catch(() => undefined);
      connection.disconnect();
    }
  });
});
