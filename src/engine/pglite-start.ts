/**
 * How the embedded store's PGlite starts: its PostgreSQL settings, and a new data directory made
 * in a child process. Both are about memory (docs/design.md, "Embedded weight"); figures measured
 * on PGlite 0.5.16, Node 20, after opening a data directory and a few statements.
 *
 * Settings. PGlite starts PostgreSQL with a server's defaults, sized for many connections and a
 * large shared cache. Here one session runs in this process, and what PostgreSQL allocates at
 * start is resident for good (PostgreSQL zeroes it; WebAssembly memory never shrinks):
 * - shared_buffers 4MB (default 128MB): resident WebAssembly heap 151 MB with the default, 29 MB
 *   at 16MB, 21 MB at 8MB, 17 MB at 4MB (13.3 against 17.3 at 8MB with max_connections 10, after
 *   2,000 inserts). `aiecs up` ran 4,000 tasks at the same rate at 4, 8 and 16MB (372-536 tasks/s
 *   each, the machine's noise): the queues' hot pages are few. 512 pages.
 * - max_connections 10 (default 100): the process slots and lock tables are sized by it;
 *   21 -> 17 MB. Fewer slots beyond it (autovacuum_worker_slots 1, max_wal_senders 0,
 *   max_connections 5, max_pred_locks_per_transaction 10) moved the resident heap by nothing
 *   measurable: the tables are sized but their pages never touched. The lock table still holds 64 x (10 + 16 autovacuum + 10 WAL sender slots) locks.
 * - default_statistics_target 10 (default 100): ANALYZE samples 3,000 rows, not 30,000. PGlite's
 *   one session waits for it (pglite-upkeep.ts): ANALYZE of the job table took 80 -> 560 ms as it
 *   grew from 5,000 to 30,000 retained jobs (their jsonb columns), about 50 ms throughout at 10.
 *   The queues' plans are index lookups, which coarser statistics serve as well.
 *
 * A new data directory. PGlite's initdb runs a second PGlite and an initdb module beside the
 * first, and copies the new directory through memory: the process peaked at 610 MB and, after
 * three full garbage collections, stayed 216 MB resident against 114 MB for opening an existing
 * directory (freed to malloc, not to the system; a worker thread keeps it too: 222 MB after the
 * thread exited). A child process returns all of it; it costs the first start about 1.9 s of its
 * own (the child compiles PGlite again), and nothing on later starts.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { PGlite } from '@electric-sql/pglite';
import { StorageError } from '../core/errors.js';

/** See the module comment for each setting's figures. */
export const PGLITE_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: '4MB',
  max_connections: '10',
  default_statistics_target: '10',
};

/** PGlite's own start parameters, then ours (a later -c wins). */
export function pgliteStartParams(): string[] {
  return [
    ...PGlite.defaultStartParams,
    ...Object.entries(PGLITE_SETTINGS).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
  ];
}

/**
 * The child: PGlite (its CommonJS build, by path) makes `dir`, then the process exits (PGlite
 * leaves a timer that would keep it alive). Evaluated, so it needs no file of its own beside a
 * TypeScript source.
 */
const CHILD = `
const [pglite, dir, params] = process.argv.slice(1);
const { PGlite } = require(pglite);
PGlite.create({ dataDir: dir, startParams: JSON.parse(params) })
  .then((db) => db.close())
  .then(() => process.exit(0), (error) => {
    process.stderr.write(String(error && error.message ? error.message : error));
    process.exit(1);
  });
`;

/** How long a new data directory may take (a loaded machine took 4 s). */
const INIT_TIMEOUT_MS = 120_000;

/** Makes a new PostgreSQL data directory at `dir` (which must not exist) in a child process. */
export function initDataDirInChild(dir: string): Promise<void> {
  const pglite = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  const args = ['-e', CHILD, pglite, dir, JSON.stringify(pgliteStartParams())];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { timeout: INIT_TIMEOUT_MS }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const detail = stderr.trim() || error.message;
      reject(new StorageError(`could not create the embedded store's database in ${dir}: ${detail}`));
    });
  });
}
