/**
 * The embedded store's directory belongs to one process. The lock is a Unix domain socket that
 * process listens on: the kernel closes it when the process dies, however it dies, so a killed
 * owner that nobody reaps (a zombie: `kill(pid, 0)` still succeeds) no longer holds the store.
 *
 * - Taking it: listen on `<dir>/.lock.<pid>.<random>`, then create the symlink `<dir>/.lock.sock`
 *   to it (symlink() fails if the name exists, so of two openers exactly one gets it).
 * - Held: an opener that can connect through `.lock.sock` knows the owner lives, even while the
 *   owner is too busy to answer; the link's target names the owner's pid.
 * - Stale: a link whose socket refuses connections, or is gone, belongs to a dead owner. It is
 *   renamed away (atomic) and removed only if it is still the link that was found dead; a fresh
 *   lock moved by mistake is put back.
 *
 * The socket's path must fit in sun_path (Node truncates a longer one silently): a longer
 * directory uses an abstract socket named after the directory on Linux (released by the kernel
 * too, but seen only in this network namespace), and is refused elsewhere.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, type Stats, unlinkSync } from 'node:fs';
import { link, lstat, readlink, realpath, rename, rm, symlink, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AiecsError, ConfigError } from '../core/errors.js';

/** The embedded store's data directory is owned by one process at a time. */
export class StoreLockedError extends AiecsError {
  override readonly code = 'STORE_LOCKED';
  override readonly wireCode = 'E006';
  /** `pid` is 0 when the owner did not say who it is in time. */
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      pid === process.pid
        ? `the embedded store ${dir} is already open in this process; ` +
            'open it once and pass that store to createApp and startWorker'
        : `the embedded store ${dir} is in use by ${pid > 0 ? `process ${pid}` : 'another process'} ` +
            '(a running `aiecs up`?); stop it or talk to it over its HTTP API, ' +
            'or use a shared store (--broker postgres://… or redis://…)',
      { dir, pid },
    );
  }
}

export interface StoreDirLock {
  release(): Promise<void>;
}

const LOCK_NAME = '.lock.sock';
/** The longest name of an owner's socket: `.lock.<pid>.<8 hex>`, pids up to 2^22 (Linux's cap). */
const LONGEST_SOCKET_NAME = `.lock.${2 ** 22}.${'f'.repeat(8)}`;
/** The pid file of aiecs versions before the socket lock; nothing reads it any more. */
const LEGACY_PID_FILE = 'aiecs.pid';
/** sun_path is 108 bytes on Linux, 104 on macOS and the BSDs, its NUL included. */
const MAX_SOCKET_PATH = process.platform === 'linux' ? 107 : 103;
/** How long an opener waits for a live owner of an abstract socket to say its pid. */
const PID_WAIT_MS = 2_000;
const ATTEMPTS = 20;

/** Locks released at exit by the process 'exit' hook: a socket file left behind is stale. */
const held = new Set<() => void>();
let exitHooked = false;

const suffix = (): string => randomBytes(4).toString('hex');

function lockServer(): Server {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end(`${process.pid}\n`);
  });
  // The lock must not keep the process alive on its own.
  server.unref();
  return server;
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => reject(error);
    server.once('error', fail);
    server.listen(path, () => {
      server.off('error', fail);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

type Probe = { state: 'live'; pid: number } | { state: 'refused' } | { state: 'missing' };

/**
 * Connects to the lock: a listener means a live owner, which the kernel accepts even while the
 * owner's event loop is busy. With `askPid`, waits a while for the owner's first line, its pid.
 */
function probe(path: string, askPid: boolean): Promise<Probe> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    let text = '';
    const done = (result: Probe): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const answered = (): void => done({ state: 'live', pid: Number(text.trim()) || 0 });
    // No answer in time: a busy owner; it lives all the same.
    const timer = setTimeout(answered, PID_WAIT_MS);
    timer.unref();
    socket.on('connect', () => {
      if (!askPid) answered();
    });
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) answered();
    });
    socket.on('end', answered);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // Refused: nobody listens (a dead owner's socket); missing: the link points at nothing.
      // Anything else (EACCES, EAGAIN on a full backlog) cannot prove the owner dead.
      if (error.code === 'ECONNREFUSED') done({ state: 'refused' });
      else if (error.code === 'ENOENT') done({ state: 'missing' });
      else done({ state: 'live', pid: 0 });
    });
  });
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

const sameFile = (a: Stats, b: Stats): boolean => a.ino === b.ino && a.dev === b.dev;

/** `.lock.<pid>.<random>`: the owner's socket, which the lock link points at. */
const SOCKET_NAME = /^\.lock\.(\d+)\.[0-9a-f]+$/;

/** Removes the dead owner's lock link `stale` (and its socket file), and nothing else. */
async function removeStale(
  dir: string,
  lockPath: string,
  stale: Stats,
  target: string | undefined,
): Promise<void> {
  const grave = join(dir, `.lock.${suffix()}.stale`);
  try {
    await rename(lockPath, grave);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (sameFile(await lstat(grave), stale)) {
    await unlink(grave);
    if (target && SOCKET_NAME.test(target)) await rm(join(dir, target), { force: true });
    return;
  }
  // Another opener took the lock between our look and the rename: give it back. (Should a third
  // opener take the empty name in those microseconds, the second loses its lock unawares; that
  // needs three openers racing on one dead owner's directory.)
  await link(grave, lockPath).catch(() => undefined);
  await unlink(grave);
}

function hold(server: Server, release: () => Promise<void>, releaseSync: () => void): StoreDirLock {
  let released = false;
  held.add(releaseSync);
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => {
      for (const releaseNow of held) releaseNow();
    });
  }
  return {
    async release() {
      if (released) return;
      released = true;
      held.delete(releaseSync);
      await release();
      await closeServer(server);
    },
  };
}

async function lockByFile(dir: string, shown: string): Promise<StoreDirLock> {
  const lockPath = join(dir, LOCK_NAME);
  const name = `.lock.${process.pid}.${suffix()}`;
  const socketPath = join(dir, name);
  const server = lockServer();
  // Closing the server removes its socket file.
  await listen(server, socketPath);
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      try {
        await symlink(name, lockPath);
        const mine = await lstat(lockPath);
        return hold(
          server,
          async () => {
            const now = await statOrUndefined(lockPath);
            if (now && sameFile(now, mine)) await unlink(lockPath).catch(() => undefined);
          },
          () => {
            try {
              if (sameFile(lstatSync(lockPath), mine)) unlinkSync(lockPath);
              unlinkSync(socketPath);
            } catch {
              // Gone already.
            }
          },
        );
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const before = await statOrUndefined(lockPath);
      if (!before) continue;
      const target = await readlink(lockPath).catch(() => undefined);
      const found = await probe(lockPath, false);
      if (found.state === 'live') {
        throw new StoreLockedError(shown, Number(SOCKET_NAME.exec(target ?? '')?.[1] ?? 0));
      }
      // Stale only if the name still holds the very link that refused.
      const after = await statOrUndefined(lockPath);
      if (after && sameFile(before, after)) await removeStale(dir, lockPath, before, target);
    }
    throw new StoreLockedError(shown, 0);
  } catch (error) {
    await closeServer(server);
    throw error;
  }
}

async function lockByAbstractName(dir: string, shown: string): Promise<StoreDirLock> {
  const name = `\0aiecs-store-${createHash('sha256').update(dir).digest('hex').slice(0, 40)}`;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const server = lockServer();
    try {
      await listen(server, name);
      return hold(
        server,
        async () => undefined,
        () => undefined,
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
    const found = await probe(name, true);
    if (found.state === 'live') throw new StoreLockedError(shown, found.pid);
    // Bound but not listening yet (an owner between bind and listen): look again shortly.
    await sleep(50);
  }
  throw new StoreLockedError(shown, 0);
}

/**
 * Takes the lock of the existing directory `dir` for this process, or throws StoreLockedError
 * naming the owner. `release()` gives it back; a process that dies gives it back too.
 */
export async function lockStoreDir(dir: string): Promise<StoreDirLock> {
  const real = await realpath(dir);
  // The same choice for every process on this directory: it depends on the directory alone.
  const fits = Buffer.byteLength(join(real, LONGEST_SOCKET_NAME)) <= MAX_SOCKET_PATH;
  let lock: StoreDirLock;
  if (fits) lock = await lockByFile(real, dir);
  else if (process.platform === 'linux') lock = await lockByAbstractName(real, dir);
  else {
    throw new ConfigError(
      `the embedded store ${dir} has too long a path for its lock socket ` +
        `(${MAX_SOCKET_PATH - LONGEST_SOCKET_NAME.length - 1} bytes at most); use a shorter directory`,
    );
  }
  await rm(join(real, LEGACY_PID_FILE), { force: true });
  return lock;
}
