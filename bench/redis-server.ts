/**
 * A private redis-server for one benchmark run: its own free port on 127.0.0.1, no persistence
 * (so disk speed does not enter the figures), its own temp dir, stopped at the end.
 */
import { Redis } from 'ioredis';
import { freePort, makeTempDir, removeTempDir, sleep, spawnTracked, stopChild } from './lifecycle.js';

export interface RedisServer {
  port: number;
  url: string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

/** Whether a redis-server on 127.0.0.1:`port` answers PING (false while it starts or is gone). */
export async function redisAnswers(port: number): Promise<boolean> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // ioredis reports refused connections as 'error' events too; they are expected while starting.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = makeTempDir('redis');
  const child = spawnTracked(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));

  const stop = async () => {
    await stopChild(child, 5_000);
    removeTempDir(dir);
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (spawnError) {
      removeTempDir(dir);
      throw new Error(`cannot start redis-server (${spawnError.message}); is it installed and on PATH?`);
    }
    if (child.exitCode !== null) {
      removeTempDir(dir);
      throw new Error(`redis-server exited with code ${child.exitCode} (port ${port} taken?)`);
    }
    if (await redisAnswers(port)) return { port, url: `redis://127.0.0.1:${port}`, stop };
    await sleep(100);
  }
  await stop();
  throw new Error(`redis-server did not answer on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms`);
}

/**
 * Deletes every key under `namespace:`, so that the next round starts on the Redis the first one
 * had: with 10,000 finished jobs left behind per round, later rounds ran on a growing keyspace.
 * DEL rather than UNLINK: memory is freed now, not by a background thread during the next round.
 */
export async function dropNamespace(url: string, namespace: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1_000);
      cursor = next;
      if (keys.length) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}
