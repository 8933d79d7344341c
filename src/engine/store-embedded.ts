import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { DEFAULT_SCHEMA } from './bullmq.js';
import { AiecsError } from '../core/errors.js';
import { openMigratedPglite } from './pglite-pool.js';
import type { ResolvedStoreOptions, Store } from './store.js';
import { bullOnPostgres, pgExtras, storeFrom, type PgLike } from './store-postgres.js';

/** The embedded store's data directory is owned by one process at a time. */
export class StoreLockedError extends AiecsError {
  override readonly code = 'STORE_LOCKED';
  override readonly wireCode = 'E006';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `the embedded store ${dir} is in use by process ${pid} (a running \`aiecs up\`?); ` +
        'talk to that process over its HTTP API, or use a shared store (postgres:// or redis://)',
      { dir, pid },
    );
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function takeLock(dir: string): Promise<() => Promise<void>> {
  const lockFile = join(dir, 'aiecs.pid');
  for (let tries = 0; tries < 2; tries++) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
        throw new StoreLockedError(dir, pid);
      // A stale lock from a process that died: take it over.
      await rm(lockFile, { force: true });
    }
  }
  throw new StoreLockedError(dir, -1);
}

/**
 * BullMQ's PostgreSQL backend on PGlite in this process. BullMQ does not migrate or set
 * search_path on a caller-supplied pool, so both happen here, once.
 */
export async function openEmbeddedStore(dirInput: string, options: ResolvedStoreOptions): Promise<Store> {
  const dir = resolve(dirInput);
  await mkdir(dir, { recursive: true });
  const unlock = await takeLock(dir);
  let db: PGlite | undefined;
  try {
    const opened = await openMigratedPglite(join(dir, 'pgdata'));
    db = opened.db;
    const pool = opened.pool;
    const extras = await pgExtras(pool as unknown as PgLike, DEFAULT_SCHEMA);
    const openedDb = db;
    options.logger.debug({ dir }, 'embedded store open');
    return storeFrom(
      'embedded',
      `embedded:${dir}`,
      DEFAULT_SCHEMA,
      bullOnPostgres(pool),
      extras,
      async () => {
        await pool.end();
        await openedDb.close();
        await unlock();
      },
    );
  } catch (error) {
    await db?.close().catch(() => undefined);
    await unlock();
    throw error;
  }
}
