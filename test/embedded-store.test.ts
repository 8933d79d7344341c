import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/core/logger.js';
import { openStore } from '../src/engine/open-store.js';
import { lockStoreDir, StoreLockedError } from '../src/engine/store-lock.js';
import { until } from './harness.js';

const OWNER = fileURLToPath(new URL('./fixtures/store-owner.mjs', import.meta.url));

/** Every path under `root` (itself included) that its group or others may use, with its mode. */
function shared(root: string): string[] {
  const found: string[] = [];
  const walk = (path: string): void => {
    const stat = lstatSync(path);
    if (!stat.isSymbolicLink() && stat.mode & 0o077)
      found.push(`${(stat.mode & 0o777).toString(8)} ${relative(root, path) || '.'}`);
    if (stat.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(root);
  return found;
}

function count(root: string): number {
  const stat = lstatSync(root);
  return stat.isDirectory() ? readdirSync(root).reduce((n, name) => n + count(join(root, name)), 1) : 1;
}

/** The state letter of /proc/<pid>/stat (R, S, Z, …), or undefined once the process is reaped. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** Dead and unreaped: its main thread shows Z once it exits, so wait for its other threads too. */
const zombie = (pid: number): boolean =>
  procState(pid) === 'Z' && readdirSync(`/proc/${pid}/task`).length === 1;

const exited = (proc: ChildProcess): Promise<unknown> =>
  proc.exitCode !== null || proc.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => proc.once('exit', r));

let template: string;
const dirs: string[] = [];
const procs: ChildProcess[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** A migrated, closed store to copy: initdb takes seconds, a copy milliseconds. */
function storeCopy(): string {
  const dir = join(tempDir('aiecs-store-'), 'store');
  cpSync(template, dir, { recursive: true });
  return dir;
}

/** Runs test/fixtures/store-owner.mjs; `output()` is what it printed so far. */
function owner(mode: 'lock' | 'store' | 'write', dir: string, env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, [OWNER, mode, dir], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  procs.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const line = (pattern: RegExp, what: string) =>
    until(
      async () => {
        if (proc.exitCode !== null && !pattern.test(out)) {
          throw new Error(`${what}: exited ${proc.exitCode}: ${err.slice(-2_000)}`);
        }
        return pattern.exec(out) ?? undefined;
      },
      120_000,
      what,
    );
  return { proc, line, output: () => out };
}

beforeAll(async () => {
  template = join(tempDir('aiecs-template-'), 'store');
  const store = await openStore(`embedded:${template}`, { logger: silentLogger });
  await store.close();
}, 180_000);

afterEach(async () => {
  for (const proc of procs.splice(0)) {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
    }
    await exited(proc);
  }
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('embedded store files', () => {
  it('are the owner’s only (0700/0600) under umask 0, after tasks and after PostgreSQL adds files', async () => {
    const dir = join(tempDir('aiecs-umask-'), 'store');
    const writer = owner('write', dir);
    await writer.line(/^done$/m, 'store written under umask 0');
    await exited(writer.proc);
    expect(writer.proc.exitCode).toBe(0);
    // Not an empty walk: the PostgreSQL cluster, its later relation and the second WAL segment are there.
    expect(count(dir)).toBeGreaterThan(900);
    expect(
      readdirSync(join(dir, 'pgdata', 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n)).length,
    ).toBeGreaterThan(0);
    expect(shared(dir)).toEqual([]);
  }, 240_000);

  it('of a new store are made whole beside it, then moved in: a start cut short leaves nothing half-made', async () => {
    const dir = join(tempDir('aiecs-new-'), 'store');
    // What a first start killed while it made the directory leaves behind, and an empty pgdata.
    mkdirSync(join(dir, 'pgdata.new', 'base'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dir, 'pgdata'), { mode: 0o700 });
    const store = await openStore(`embedded:${dir}`, { logger: silentLogger });
    await store.close();
    expect(readdirSync(dir).filter((name) => name.startsWith('pgdata'))).toEqual(['pgdata']);
    expect(readFileSync(join(dir, 'pgdata', 'PG_VERSION'), 'utf8').trim()).toMatch(/^\d+$/);
    expect(count(join(dir, 'pgdata'))).toBeGreaterThan(900);
    expect(shared(dir)).toEqual([]);
  }, 120_000);

  it('of a store written by an older aiecs (0666 files, 0777 directories) are made private on open', async () => {
    const dir = storeCopy();
    const loosen = (path: string): void => {
      const stat = lstatSync(path);
      chmodSync(path, stat.isDirectory() ? 0o777 : 0o666);
      if (stat.isDirectory()) for (const name of readdirSync(path)) loosen(join(path, name));
    };
    loosen(dir);
    expect(shared(dir).length).toBeGreaterThan(900);
    const store = await openStore(`embedded:${dir}`, { logger: silentLogger });
    await store.close();
    expect(shared(dir)).toEqual([]);
  }, 120_000);
});

describe('embedded store lock', () => {
  it('refuses a second opener while its owner lives, and is free once the owner is killed, though nobody reaps it', async () => {
    const dir = storeCopy();
    // The owner is the child of a shell that waits for it; stopping the shell keeps it from
    // reaping, so the killed owner stays a zombie (as in a container without an init).
    const shell = spawn(
      '/bin/sh',
      ['-c', '"$0" "$1" store "$2" & echo "child $!"; wait', process.execPath, OWNER, dir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    procs.push(shell);
    let out = '';
    shell.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const pid = Number(
      (await until(async () => /^child (\d+)$/m.exec(out) ?? undefined, 30_000, 'owner pid'))[1],
    );
    try {
      await until(async () => /^ready /m.test(out), 120_000, 'owner ready');

      const refused = await openStore(`embedded:${dir}`, { logger: silentLogger }).then(
        async (store) => {
          await store.close();
          throw new Error('a second opener got the store of a live owner');
        },
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(StoreLockedError);
      expect((refused as StoreLockedError).pid).toBe(pid);
      expect((refused as Error).message).toContain(`in use by process ${pid}`);
      expect((refused as Error).message).not.toContain('\n');

      process.kill(shell.pid!, 'SIGSTOP');
      process.kill(pid, 'SIGKILL');
      await until(async () => zombie(pid), 30_000, 'the killed owner to be a zombie');
      // What the old pid check saw: the zombie "exists".
      expect(() => process.kill(pid, 0)).not.toThrow();

      const store = await openStore(`embedded:${dir}`, { logger: silentLogger });
      expect(await store.listHeartbeats()).toEqual([]);
      await store.close();
    } finally {
      process.kill(pid, 'SIGKILL');
      process.kill(shell.pid!, 'SIGCONT');
      await exited(shell);
    }
    expect(procState(pid)).toBeUndefined();
  }, 240_000);

  it.each([
    ['a free directory', false],
    ['the directory of a killed owner', true],
  ])(
    'lets exactly one of two processes racing for %s win',
    async (_what, stale) => {
      const dir = tempDir('aiecs-race-');
      if (stale) {
        const dead = owner('lock', dir);
        await dead.line(/^ready /m, 'first owner');
        dead.proc.kill('SIGKILL');
        await exited(dead.proc);
        // What it leaves: its generation's link and its socket file, which nobody listens on.
        const left = readdirSync(dir);
        expect(left).toContain('.lock-1');
        expect(left.filter((n) => n.startsWith(`.lock.${dead.proc.pid}.`))).toHaveLength(1);
      }
      const racers = [owner('lock', dir, { GO_ON_STDIN: '1' }), owner('lock', dir, { GO_ON_STDIN: '1' })];
      for (const racer of racers) await racer.line(/^waiting$/m, 'racer waiting');
      for (const racer of racers) racer.proc.stdin!.write('go\n');
      const outcomes = await Promise.all(
        racers.map((racer) => racer.line(/^(ready|refused) (\d+)$/m, 'racer outcome')),
      );
      const winners = outcomes.filter((m) => m[1] === 'ready');
      expect(winners).toHaveLength(1);
      const loser = outcomes.find((m) => m[1] === 'refused')!;
      expect(Number(loser[2])).toBe(Number(winners[0]![2]));
      // The winner's link and socket are all there is; a dead owner's are cleared.
      expect(readdirSync(dir).sort()).toEqual([
        stale ? '.lock-2' : '.lock-1',
        expect.stringMatching(`^\\.lock\\.${winners[0]![2]}\\.`),
      ]);
    },
    120_000,
  );

  it('lets exactly one of many openers in one process take a killed owner’s lock', async () => {
    const dir = tempDir('aiecs-race-');
    const dead = owner('lock', dir);
    await dead.line(/^ready /m, 'first owner');
    dead.proc.kill('SIGKILL');
    await exited(dead.proc);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => lockStoreDir(dir)));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') {
        expect(r.reason).toBeInstanceOf(StoreLockedError);
        expect((r.reason as StoreLockedError).pid).toBe(process.pid);
        expect((r.reason as Error).message).toContain('already open in this process');
      }
    }
    await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
    // Nothing left behind (a copy of the directory would fail on a socket), and free again.
    expect(readdirSync(dir)).toEqual([]);
    const again = await lockStoreDir(dir);
    await again.release();
  }, 60_000);

  it('works for a directory whose path is too long for a socket file', async () => {
    const dir = join(tempDir('aiecs-long-'), 'd'.repeat(60), 'e'.repeat(60));
    mkdirSync(dir, { recursive: true });
    const lock = await lockStoreDir(dir);
    // Twice: a failed second listen must not make the name look foreign to this process.
    for (let i = 0; i < 2; i++) {
      await expect(lockStoreDir(dir)).rejects.toThrow(
        `the embedded store ${dir} is already open in this process`,
      );
    }
    const other = owner('lock', dir);
    expect(Number((await other.line(/^refused (\d+)$/m, 'second process'))[1])).toBe(process.pid);
    await lock.release();
    expect(readdirSync(dir)).toEqual([]);
    const again = await lockStoreDir(dir);
    await again.release();
  }, 60_000);
});
