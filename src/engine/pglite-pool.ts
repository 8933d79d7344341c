import { EventEmitter } from 'node:events';
import { chmod, lstat, mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { OwnerOnlyNodeFS } from '../shims/pglite-owner-only-fs.js';
import { DEFAULT_SCHEMA, runMigrations } from './bullmq.js';
import { initDataDirInChild, pgliteStartParams } from './pglite-start.js';
import { POOL_MAX_LISTENERS } from './store.js';

/**
 * A `pg.Pool`-shaped face over one PGlite instance, which is what BullMQ's PostgreSQL backend
 * accepts as a caller-owned pool.
 *
 * PGlite is a single session: every "client" shares it. Two things follow:
 * - a transaction (BEGIN … COMMIT/ROLLBACK) must own the session, so statements from other
 *   clients wait until it ends;
 * - notifications arrive once for the session and are fanned out to every checked-out client,
 *   which filter by channel as they would on a real connection.
 */

interface QueryResult<R = Record<string, unknown>> {
  rows: R[];
  rowCount: number;
}

type Query = <R = Record<string, unknown>>(
  text: string,
  params?: readonly unknown[],
) => Promise<QueryResult<R>>;

type Owner = object;

export interface PglitePool extends EventEmitter {
  query: Query;
  connect(): Promise<PglitePoolClient>;
  end(): Promise<void>;
  readonly db: PGlite;
  /** What BullMQ reads of a caller's pg.Pool options. */
  readonly options: { keepAlive: boolean };
}

export interface PglitePoolClient extends EventEmitter {
  query: Query;
  release(destroy?: boolean): void;
}

const TX_START = /^\s*(BEGIN|START\s+TRANSACTION)\b/i;
const TX_END = /^\s*(COMMIT|ROLLBACK|END|ABORT)\b/i;

export function createPglitePool(db: PGlite): PglitePool {
  let txOwner: Owner | null = null;
  let txDone: Promise<void> = Promise.resolve();
  let releaseTx: (() => void) | null = null;
  let ended = false;
  const clients = new Set<PglitePoolClient>();

  const unsubscribe = db.onNotification((channel, payload) => {
    for (const client of clients) client.emit('notification', { channel, payload });
  });

  async function run(owner: Owner, text: string, params?: readonly unknown[]): Promise<QueryResult> {
    if (ended) throw new Error('the embedded store is closed');
    while (txOwner !== null && txOwner !== owner) await txDone;
    const starts = TX_START.test(text);
    if (starts) {
      txOwner = owner;
      txDone = new Promise((resolve) => (releaseTx = resolve));
    }
    try {
      // Parameterless text may hold several statements (migrations): only `exec` runs those.
      if (!params || params.length === 0) {
        const results = await db.exec(text);
        const last = results[results.length - 1];
        return {
          rows: (last?.rows ?? []) as Record<string, unknown>[],
          rowCount: last?.affectedRows ?? last?.rows.length ?? 0,
        };
      }
      const result = await db.query<Record<string, unknown>>(text, params as unknown[]);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    } catch (error) {
      if (starts) endTx(owner);
      throw error;
    } finally {
      if (TX_END.test(text)) endTx(owner);
    }
  }

  function endTx(owner: Owner): void {
    if (txOwner !== owner) return;
    txOwner = null;
    releaseTx?.();
    releaseTx = null;
  }

  const poolOwner: Owner = {};
  const pool = Object.assign(new EventEmitter(), {
    db,
    // BullMQ caps a worker's wait for a delayed job at 10 s unless its LISTEN connection has TCP
    // keepalive, which would notice a silent drop; a session in this process cannot drop.
    options: { keepAlive: true },
    query: ((text: string, params?: readonly unknown[]) => run(poolOwner, text, params)) as Query,
    async connect(): Promise<PglitePoolClient> {
      if (ended) throw new Error('the embedded store is closed');
      const owner: Owner = {};
      const client = Object.assign(new EventEmitter(), {
        query: ((text: string, params?: readonly unknown[]) => run(owner, text, params)) as Query,
        release(): void {
          clients.delete(client);
          // A client released mid-transaction must not hold the session forever.
          if (txOwner === owner) void db.exec('ROLLBACK').finally(() => endTx(owner));
        },
      });
      clients.add(client);
      return client;
    },
    async end(): Promise<void> {
      if (ended) return;
      ended = true;
      unsubscribe();
      clients.clear();
    },
  });
  pool.setMaxListeners(POOL_MAX_LISTENERS);
  return pool;
}

const GROUP_OTHER = 0o077;

/** Walks `path`, children before parents; returns the paths it was not allowed to change. */
async function restrictTree(path: string, refused: string[]): Promise<void> {
  const stat = await lstat(path);
  if (stat.isSymbolicLink()) return;
  if (stat.isDirectory()) {
    await Promise.all((await readdir(path)).map((name) => restrictTree(join(path, name), refused)));
  }
  // A directory last: an interrupted walk leaves it open, so the next start walks again.
  if (!(stat.mode & GROUP_OTHER)) return;
  try {
    await chmod(path, stat.mode & 0o7777 & ~GROUP_OTHER);
  } catch (error) {
    // Another user's file (a directory shared by hand): reported, not fatal.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    refused.push(path);
  }
}

/**
 * Takes group and other permissions off `dir` and everything under it: data directories
 * written before aiecs kept them private are 0666/0755. A private `dir` (0700) was done already,
 * so a start costs one lstat, not one per file. Returns the paths it was not allowed to change.
 */
export async function restrictToOwner(dir: string): Promise<string[]> {
  const refused: string[] = [];
  if ((await lstat(dir)).mode & GROUP_OTHER) await restrictTree(dir, refused);
  return refused;
}

/**
 * A new data directory is made in a child process (pglite-start.ts says why), under another name
 * beside `dataDir` and renamed when whole: a start cut short leaves no half-made directory behind.
 * A `dataDir` with anything in it is left to PGlite, as before.
 */
async function initIfNew(dataDir: string): Promise<void> {
  const entries = await readdir(dataDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (entries !== undefined && entries.length > 0) return;
  const making = `${dataDir}.new`;
  await rm(making, { recursive: true, force: true });
  await initDataDirInChild(making);
  // Made by PGlite's plain NodeFS (files 0666 whatever the umask), inside the owner's private
  // store directory: every file is walked, as the directory's own mode says nothing of them.
  await restrictTree(making, []);
  if (entries !== undefined) await rmdir(dataDir);
  await rename(making, dataDir);
}

/**
 * PGlite in `dataDir` with BullMQ's schema migrated and on the search path: BullMQ does neither
 * for a caller-supplied pool. The caller ends the pool and closes the database. What PGlite
 * creates is the owner's only (0700/0600), whatever the umask; see restrictToOwner for what was there.
 */
export async function openMigratedPglite(dataDir: string): Promise<{ db: PGlite; pool: PglitePool }> {
  await initIfNew(dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const db = await PGlite.create({ fs: new OwnerOnlyNodeFS(dataDir), startParams: pgliteStartParams() });
  try {
    const pool = createPglitePool(db);
    const client = await pool.connect();
    try {
      await runMigrations(client, DEFAULT_SCHEMA);
    } finally {
      client.release();
    }
    await db.exec(`SET search_path TO ${DEFAULT_SCHEMA}, public`);
    return { db, pool };
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
}
