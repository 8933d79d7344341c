/**
 * The Celery result backend on Redis as the relay uses it: the relay's lock (one active relay per
 * deployment), its saved positions in the store's event streams, and the writes of Celery's result
 * metas, fenced by the lock (./lua). Keys of the relay are under `aiecs:celery:` and the
 * deployment's namespace, beside Celery's own `celery-task-meta-*` keys in the same database.
 */
import { Redis } from 'ioredis';
import { readScript } from '../../core/script-files.js';
import type { QueueKind } from '../../core/task.js';
import { celeryResultKey, type CeleryMeta } from './celery-meta.js';

const WRITE_RESULTS = readScript('./lua/write-results.lua', import.meta.url);
const RENEW_LOCK = readScript('./lua/renew-lock.lua', import.meta.url);
const RELEASE_LOCK = readScript('./lua/release-lock.lua', import.meta.url);

type Scripts = {
  aiecsCeleryWrite(numKeys: number, ...args: Array<string | number>): Promise<number>;
  aiecsCeleryRenew(lock: string, holder: string, ttlMs: number): Promise<number>;
  aiecsCeleryRelease(lock: string, holder: string): Promise<number>;
};

/** The lock was taken by another relay (ours expired): this one must stop writing. */
export class RelayLockLost extends Error {
  constructor() {
    super('the Celery results relay lost its lock to another relay');
  }
}

export class ResultBackend {
  readonly client: Redis;
  private readonly scripts: Scripts;
  private readonly lockKey: string;

  constructor(
    url: string,
    private readonly namespace: string,
    private readonly holder: string,
  ) {
    // Commands fail while the backend is down (the relay retries with backoff) instead of queueing.
    this.client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
    this.client.on('error', () => undefined);
    this.client.defineCommand('aiecsCeleryWrite', { lua: WRITE_RESULTS });
    this.client.defineCommand('aiecsCeleryRenew', { numberOfKeys: 1, lua: RENEW_LOCK });
    this.client.defineCommand('aiecsCeleryRelease', { numberOfKeys: 1, lua: RELEASE_LOCK });
    this.scripts = this.client as unknown as Scripts;
    this.lockKey = `aiecs:celery:relay-lock:${namespace}`;
  }

  async connect(): Promise<void> {
    if (this.client.status === 'wait') await this.client.connect();
    else if (this.client.status !== 'ready')
      throw new Error(`Celery result backend not ready (${this.client.status})`);
  }

  positionKey(queue: QueueKind): string {
    return `aiecs:celery:relay:${this.namespace}:${queue}`;
  }

  /** Takes the lock if free (or already ours). */
  async acquire(ttlMs: number): Promise<boolean> {
    const set = await this.client.set(this.lockKey, this.holder, 'PX', ttlMs, 'NX');
    if (set === 'OK') return true;
    return (await this.scripts.aiecsCeleryRenew(this.lockKey, this.holder, ttlMs)) === 1;
  }

  /** Extends the lock; false when another relay holds it. */
  async renew(ttlMs: number): Promise<boolean> {
    return (await this.scripts.aiecsCeleryRenew(this.lockKey, this.holder, ttlMs)) === 1;
  }

  async release(): Promise<void> {
    await this.scripts.aiecsCeleryRelease(this.lockKey, this.holder);
  }

  /** The saved positions of `queues` (absent: none saved). */
  async positions(queues: readonly QueueKind[]): Promise<Map<QueueKind, string>> {
    const values = await this.client.mget(...queues.map((q) => this.positionKey(q)));
    const found = new Map<QueueKind, string>();
    queues.forEach((q, i) => {
      const value = values[i];
      if (typeof value === 'string') found.set(q, value);
    });
    return found;
  }

  /**
   * Writes `metas` (each set with the expiry and published, unless its key is already ready) and
   * the positions reached, in one step under the lock. Returns how many metas were written.
   */
  async write(
    metas: readonly CeleryMeta[],
    positions: Record<string, string>,
    expiresS: number,
  ): Promise<number> {
    const queues = Object.keys(positions) as QueueKind[];
    const keys = [
      this.lockKey,
      ...queues.map((q) => this.positionKey(q)),
      ...metas.map((m) => celeryResultKey(m.task_id)),
    ];
    const args = [
      this.holder,
      Math.max(0, Math.floor(expiresS)),
      queues.length,
      ...queues.map((q) => positions[q]!),
      ...metas.map((m) => JSON.stringify(m)),
    ];
    const written = await this.scripts.aiecsCeleryWrite(keys.length, ...keys, ...args);
    if (written < 0) throw new RelayLockLost();
    return written;
  }

  close(): void {
    this.client.disconnect();
  }
}
