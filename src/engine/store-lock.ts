/**
 * The embedded store's directory belongs to one process. The lock is a Unix domain socket that
 * process listens on: the kernel closes it when the process dies, however it dies, so a killed
 * owner that nobody reaps (a zombie: `kill(pid, 0)` still succeeds) no longer holds the store.
 *
 * Owners come in generations, each a symlink `<dir>/.lock-<n>` to its owner's socket
 * `<dir>/.lock.<pid>.<random>`, made only once that socket listens. The owner is the highest
 * generation; it lives if its socket accepts a connection (the kernel accepts one even while
 * the owner's event loop is busy), and the link's target names its pid.
 * - Taking it: find the highest generation n. If it lives, the store is in use. If not (or
 *   there is none), create `.lock-<n+1>`: symlink() fails when the name exists, so of openers
 *   racing exactly one makes it. Then look again: a higher generation than ours (ours was made
 *   from a stale look) wins, and ours is withdrawn.
 * - Nothing is ever removed on the mere belief that its owner is dead, so no opener can remove a
 *   lock that was taken a moment ago. An owner clears older generations, which are dead or
 *   withdrawing.
 *
 * The socket's path must fit in sun_path (Node truncates a longer one silently): a longer
 * directory uses an abstract socket named after the directory on Linux (released by the kernel
 * too, but seen only in this network namespace), and is refused elsewhere.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, type Stats, unlinkSync } from 'node:fs';
import { lstat, readdir, readlink, realpath, rm, symlink, unlink } from 'node:fs/promises';
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
    /** This process holds it (a pid alone cannot say: pid 1 in two containers on one volume). */
    readonly inThisProcess = false,
  ) {
    super(
      inThisProcess
        ? `the embedded store ${dir} is already open in this process; ` +
            'open it once and pass that store to createApp and startWorker'
        : `the embedded store ${dir} is in use by ${pid > 0 ? `process ${pid}` : 'another process'} ` +
            '(a running `aiecs up`?); stop it or talk to it over its HTTP API, ' +
            'or use a shared store (--broker postgres://… or redis://…)',
      { dir, pid, inThisProcess },
    );
  }
}

export interface StoreDirLock {
  release(): Promise<void>;
}

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
/** The lock sockets this process listens on (paths, abstract names). */
const ownSockets = new Set<string>();
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
  // An abstract name this process holds already stays its own when a second listen fails.
  const fresh = !ownSockets.has(path);
  ownSockets.add(path);
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => {
      if (fresh) ownSockets.delete(path);
      reject(error);
    };
    server.once('error', fail);
    server.listen(path, () => {
      server.off('error', fail);
      resolve();
    });
  });
}

function closeServer(server: Server, path: string): Promise<void> {
  return new Promise((resolve) =>
    server.close(() => {
      ownSockets.delete(path);
      resolve();
    }),
  );
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

/** `.lock.<pid>.<random>`: an owner's socket, which its generation's link points at. */
const SOCKET_NAME = /^\.lock\.(\d+)\.[0-9a-f]+$/;

function hold(
  server: Server,
  path: string,
  release: () => Promise<void>,
  releaseSync: () => void,
): StoreDirLock {
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
      await closeServer(server, path);
    },
  };
}

const GENERATION = /^\.lock-(\d+)$/;

/** The generations in `dir`, highest first. */
async function generations(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir(dir)) {
    const match = GENERATION.exec(name);
    if (match) found.push(Number(match[1]));
  }
  return found.sort((a, b) => b - a);
}

const generationPath = (dir: string, n: number): string => join(dir, `.lock-${n}`);

async function lockByFile(dir: string, shown: string): Promise<StoreDirLock> {
  const name = `.lock.${process.pid}.${suffix()}`;
  const socketPath = join(dir, name);
  const server = lockServer();
  // Closing the server removes its socket file.
  await listen(server, socketPath);
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const top = (await generations(dir))[0] ?? 0;
      if (top > 0) {
        const topPath = generationPath(dir, top);
        const target = await readlink(topPath).catch(() => undefined);
        const found = await probe(topPath, false);
        if (found.state === 'live') {
          const pid = Number(SOCKET_NAME.exec(target ?? '')?.[1] ?? 0);
          throw new StoreLockedError(shown, pid, target !== undefined && ownSockets.has(join(dir, target)));
        }
      }
      const mine = generationPath(dir, top + 1);
      try {
        await symlink(name, mine);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw error;
      }
      if (((await generations(dir))[0] ?? 0) > top + 1) {
        await unlink(mine).catch(() => undefined);
        continue;
      }
      await clearOlder(dir, top + 1);
      const link = await lstat(mine);
      return hold(
        server,
        socketPath,
        async () => {
          const now = await statOrUndefined(mine);
          if (now && sameFile(now, link)) await unlink(mine).catch(() => undefined);
        },
        () => {
          try {
            if (sameFile(lstatSync(mine), link)) unlinkSync(mine);
            unlinkSync(socketPath);
          } catch {
            // Gone already.
          }
        },
      );
    }
    throw new StoreLockedError(shown, 0);
  } catch (error) {
    await closeServer(server, socketPath);
    throw error;
  }
}

/**
 * Removes the generations below `mine`, whose owners are dead or withdrawing, and the sockets of
 * the dead ones (a withdrawing opener's socket still listens and is its own to remove).
 */
async function clearOlder(dir: string, mine: number): Promise<void> {
  for (const n of await generations(dir)) {
    if (n >= mine) continue;
    const path = generationPath(dir, n);
    const target = await readlink(path).catch(() => undefined);
    const dead = (await probe(path, false)).state !== 'live';
    await rm(path, { force: true });
    if (dead && target && SOCKET_NAME.test(target)) await rm(join(dir, target), { force: true });
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
        name,
        async () => undefined,
        () => undefined,
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
    const found = await probe(name, true);
    if (found.state === 'live') throw new StoreLockedError(shown, found.pid, ownSockets.has(name));
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
