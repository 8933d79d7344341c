import { chmod, mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { DEFAULT_SCHEMA } from './bullmq.js';
import type { Logger } from '../core/logger.js';
import { openMigratedPglite, restrictToOwner } from './pglite-pool.js';
import { PgliteUpkeep } from './pglite-upkeep.js';
import { lockStoreDir } from './store-lock.js';
import type { ResolvedStoreOptions, Store } from './store.js';
import { bullOnPostgres, pgExtras, storeFrom, type PgLike } from './postgres-common.js';

export { StoreLockedError } from './store-lock.js';

const PGDATA = 'pgdata';

/**
 * BullMQ's waits on an idle embedded store. On PostgreSQL the event readers poll every 250 ms, as a
 * publisher there may skip its NOTIFY (bullmq-pg-event-reader.ts), and a worker asks for a job
 * every 5 s. Here every change is announced (one session: the backend's NOTIFY try-lock is always
 * free; add_jobs_bulk announces its events on the jobs channel, which the readers also hear; every
 * function that makes a job claimable or delayed notifies the workers), so these waits only guard
 * against the unforeseen. An idle `aiecs up` has four event readers (gateway and history, two
 * queues each) and two workers: at PostgreSQL's waits they woke it 18 times and ran 34 queries a
 * second (docs/design.md, "Embedded weight"). At 30 s they still made 28 of an idle minute's 80
 * queries (about 2.3 ms of PGlite's CPU each); at 120 s, 7.
 */
const IDLE_WAITS = { eventPollMs: 120_000, wakeOnJobs: true, drainDelayS: 120 };

/**
 * The store's directory and everything in it are the owner's only: the data, the lock, and the
 * secret `aiecs up` keeps there. Stores made before aiecs did this are made private here.
 */
async function makePrivate(dir: string, logger: Logger): Promise<void> {
  const refused = await restrictToOwner(join(dir, PGDATA)).catch((error: NodeJS.ErrnoException): string[] => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const { mode } = await stat(dir);
  if (mode & 0o077) {
    await chmod(dir, mode & 0o7700).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPERM') throw error;
      refused.push(dir);
    });
  }
  if (refused.length > 0) {
    logger.warn(
      { dir, paths: refused.slice(0, 5), count: refused.length },
      'some files of the embedded store belong to another user, so they stay open to others; run chmod -R go-rwx on the directory',
    );
  }
}

/**
 * BullMQ's PostgreSQL backend on PGlite in this process. BullMQ does not migrate or set
 * search_path on a caller-supplied pool, so both happen here, once.
 */
export async function openEmbeddedStore(dirInput: string, options: ResolvedStoreOptions): Promise<Store> {
  const dir = resolve(dirInput);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { release: unlock } = await lockStoreDir(dir);
  let db: PGlite | undefined;
  try {
    await makePrivate(dir, options.logger);
    const opened = await openMigratedPglite(join(dir, PGDATA));
    db = opened.db;
    const pool = opened.pool;
    const extras = await pgExtras(pool as unknown as PgLike, DEFAULT_SCHEMA);
    const openedDb = db;
    // No autovacuum or checkpointer in PGlite: without this the store grows as long as it runs.
    const upkeep = new PgliteUpkeep(pool, {
      schema: DEFAULT_SCHEMA,
      logger: options.logger,
      ...(options.upkeepIntervalMs !== undefined ? { intervalMs: options.upkeepIntervalMs } : {}),
    }).start();
    options.logger.debug({ dir }, 'embedded store open');
    return storeFrom(
      'embedded',
      `embedded:${dir}`,
      DEFAULT_SCHEMA,
      bullOnPostgres(pool, options.eventsMaxLen, IDLE_WAITS),
      extras,
      async () => {
        await upkeep.close();
        await pool.end();
        await openedDb.close();
        await unlock();
      },
      { pool, schema: DEFAULT_SCHEMA },
    );
  } catch (error) {
    await db?.close().catch(() => undefined);
    await unlock();
    throw error;
  }
}
