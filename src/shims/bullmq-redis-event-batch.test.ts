import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { QueueEventsProducer } from '../engine/bullmq.js';
import { installedVersion, packageFile, sha256, sourceHash } from './test-pins.js';

const require = createRequire(import.meta.url);
const { QueueKeys, RedisQueueBackend } = require('bullmq') as {
  QueueKeys: new (prefix: string) => {
    getKeys(queue: string): Record<string, string>;
    toKey(queue: string, id: string): string;
  };
  RedisQueueBackend: { prototype: { publishEvent: unknown } };
};

/**
 * Pins what bullmq-redis-event-batch.lua mirrors in BullMQ. If this fails after an upgrade, diff
 * the new updateProgress-*.lua (and its include getOrSetMaxEvents.lua) and the Redis backend's
 * publishEvent against bullmq-redis-event-batch.lua: the job's progress field, the `progress`
 * entry's fields, the default and the key of MAXLEN, the key names. Port what changed (or drop
 * the shim: the worker then writes through job.updateProgress and publishEvent), then update the pins.
 */
describe('the Redis event batch shim pins BullMQ', () => {
  it('is written against bullmq 6.7.6', () => {
    expect(installedVersion('bullmq')).toBe('6.7.6');
  });

  it('mirrors updateProgress-3.lua and getOrSetMaxEvents as they were', () => {
    expect(sha256(packageFile('bullmq', 'dist/cjs/commands/updateProgress-3.lua'))).toBe(
      '32508585fe79742cc08d615ea122bc9e73952551ab3fdae71b3246948755b269',
    );
    expect(sha256(packageFile('bullmq', 'dist/cjs/commands/includes/getOrSetMaxEvents.lua'))).toBe(
      'ec9e059a7d303cff34329453cc4747be9f20bc4824abcb397ca4847c52bac8c4',
    );
  });

  it("mirrors publishEvent's XADD as it was", () => {
    expect(sourceHash(QueueEventsProducer.prototype.publishEvent)).toBe(
      '94bd3b7f026e0f960ac70206c1d3b05bb2000a27efc5bb688eb75a53f95ea6e4',
    );
    expect(sourceHash(RedisQueueBackend.prototype.publishEvent)).toBe(
      '7bd57dd412e30b068866dd689921486544b1ac926e5c573df0dcc7547197b1c7',
    );
  });

  it('uses the key layout it was written against: <prefix>:<queue>:events, :meta and :<job id>', () => {
    const keys = new QueueKeys('pfx');
    expect(keys.getKeys('q').events).toBe('pfx:q:events');
    expect(keys.getKeys('q').meta).toBe('pfx:q:meta');
    expect(keys.toKey('q', '42')).toBe('pfx:q:42');
  });
});
