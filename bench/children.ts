/**
 * Workloads that need a process of their own: the idle memory of a worker, and the start-up time
 * and idle weight of `aiecs up`. They run the built CLI (dist/cli/main.js) exactly as a user would.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  makeTempDir,
  removeTempDir,
  rssMb,
  sleep,
  spawnTracked,
  stopChild,
  waitForLine,
} from './lifecycle.js';
import { CLI, READY_TIMEOUT_MS, cliEnv } from './cli-child.js';
import { processTree, treeCounters, treeMemory, type ProcessFigures } from './proc-tree.js';

/** A worker drains before it exits; idle ones are quick, this only bounds a stuck one. */
const STOP_GRACE_MS = 20_000;

/**
 * The gateway of `aiecs up` listens on loopback and a port the OS picks, never a fixed port
 * another process may hold.
 */
const childEnv = (): NodeJS.ProcessEnv => cliEnv({ PORT: '0' });

/** Starts a node script, waits for its ready line, lets it idle, reads its RSS and stops it. */
async function idleRss(args: string[], ready: RegExp, cwd: string, idleMs: number): Promise<number> {
  const child = spawnTracked(process.execPath, args, {
    cwd,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await waitForLine(child, ready, READY_TIMEOUT_MS);
    await sleep(idleMs);
    if (child.pid === undefined || child.exitCode !== null) throw new Error('the child exited while idle');
    return rssMb(child.pid);
  } finally {
    await stopChild(child, STOP_GRACE_MS);
  }
}

/**
 * The smallest raw BullMQ worker, written at run time. It imports BullMQ by absolute URL because a
 * script in a temp dir cannot resolve the project's node_modules by name.
 */
function bullmqIdleScript(): string {
  const bullmq = import.meta.resolve('bullmq');
  return `import { Worker } from ${JSON.stringify(bullmq)};
const [url, prefix] = process.argv.slice(2);
const { hostname, port } = new URL(url);
const worker = new Worker('bench', async () => ({ ok: true }), {
  connection: { host: hostname, port: Number(port), maxRetriesPerRequest: null },
  prefix,
  concurrency: 100,
});
worker.on('error', () => {});
await worker.waitUntilReady();
console.log('bullmq worker ready');
const stop = async () => { await worker.close(); process.exit(0); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
`;
}

export interface RssResult {
  aiecs: number;
  bullmq: number;
  /** The same aiecs worker serving metrics (--metrics-port): prom-client and the registry loaded. */
  aiecsMetrics: number;
}

export async function workerIdleRss(
  redisUrl: string,
  idleMs: number,
  log: (line: string) => void,
): Promise<RssResult> {
  const dir = makeTempDir('rss');
  try {
    const aiecs = await idleRss(
      [CLI, 'worker', '--broker', redisUrl, '--namespace', 'benchrss'],
      /^aiecs worker:/,
      dir,
      idleMs,
    );
    log(`  aiecs worker: ${aiecs.toFixed(1)} MB`);
    const aiecsMetrics = await idleRss(
      [CLI, 'worker', '--broker', redisUrl, '--namespace', 'benchrss', '--metrics-port', '0'],
      /^aiecs worker:/,
      dir,
      idleMs,
    );
    log(`  aiecs worker with --metrics-port: ${aiecsMetrics.toFixed(1)} MB`);
    const script = join(dir, 'bullmq-idle-worker.mjs');
    writeFileSync(script, bullmqIdleScript());
    const bullmq = await idleRss([script, redisUrl, 'benchrss_bullmq'], /^bullmq worker ready/, dir, idleMs);
    log(`  raw BullMQ worker: ${bullmq.toFixed(1)} MB`);
    return { aiecs, bullmq, aiecsMetrics };
  } finally {
    removeTempDir(dir);
  }
}

/** Milliseconds from spawn until the ready line of `aiecs up`; the process is stopped before returning. */
async function timedUp(broker: string, cwd: string): Promise<number> {
  const start = performance.now();
  const child = spawnTracked(process.execPath, [CLI, 'up', '--broker', broker, '--port', '0'], {
    cwd,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    return (await waitForLine(child, /^aiecs up:/, READY_TIMEOUT_MS)) - start;
  } finally {
    // The next start needs the data dir's lock, so this one must have fully exited.
    await stopChild(child, STOP_GRACE_MS);
  }
}

export interface StartupResult {
  firstMs: number;
  secondMs: number;
  /** An idle `aiecs up` on a new data directory (issue 18, "Embedded weight"). */
  idle: UpIdleResult;
}

export async function upStartup(log: (line: string) => void): Promise<StartupResult> {
  const dir = makeTempDir('up');
  try {
    const broker = `embedded:${join(dir, 'data')}`;
    const firstMs = await timedUp(broker, dir);
    log(`  first start (initializes the store): ${firstMs.toFixed(0)} ms`);
    const secondMs = await timedUp(broker, dir);
    log(`  second start: ${secondMs.toFixed(0)} ms`);
    return { firstMs, secondMs, idle: await upIdle(log) };
  } finally {
    removeTempDir(dir);
  }
}

/**
 * After the first task an idle process still does one-off work for a while (V8's memory reducer
 * collects the start's garbage and shrinks the young generation, the optimizing compiler finishes
 * what the start made hot): measured, RSS fell by 30-40 MB and CPU was 0.8 % of a core in the
 * first 30 s, then both held. The window starts after that.
 */
const IDLE_SETTLE_MS = 30_000;
const IDLE_WINDOW_MS = 30_000;
/** The first task: a built-in that does nothing (a sleep of 0 s), so the engine's lazy parts load. */
const FIRST_TASK = { mode: 'util', service: 'sleeper', task_name: 'sleep', input_data: { seconds: 0 } };

export interface UpIdleResult {
  /** The whole process tree's RSS at the end of the window. */
  rssMb: number;
  processes: ProcessFigures[];
  /** CPU time of the tree over the window, in % of one core. */
  cpuPct: number;
  /** Context switches of the tree's threads per second over the window. */
  wakeupsPerS: number;
  settleS: number;
  windowS: number;
}

/** Polls a task until it has ended; its final status. */
async function awaitTask(url: string, token: string, id: string): Promise<string> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const reply = await fetch(`${url}/api/tasks/${id}`, { headers: { authorization: `Bearer ${token}` } });
    const { status } = (await reply.json()) as { status: string };
    if (['completed', 'failed', 'cancelled', 'timed_out'].includes(status)) return status;
    await sleep(50);
  }
  throw new Error(`task ${id} did not end within ${READY_TIMEOUT_MS} ms`);
}

/**
 * `aiecs up` on a new data directory: one task through its gateway, then idle. The tree's RSS at
 * the end of the window, and its CPU and context switches over the window.
 */
async function upIdle(log: (line: string) => void): Promise<UpIdleResult> {
  const dir = makeTempDir('up-idle');
  const broker = `embedded:${join(dir, 'data')}`;
  const child = spawnTracked(process.execPath, [CLI, 'up', '--broker', broker, '--port', '0'], {
    cwd: dir,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  try {
    // The token line comes after the ready line.
    await waitForLine(child, /^\s+token: /, READY_TIMEOUT_MS);
    const url = /^aiecs up: .*gateway (http\S+?)(,|$)/m.exec(out)?.[1];
    const token = /^\s+token: (\S+)/m.exec(out)?.[1];
    if (!url || !token || child.pid === undefined) throw new Error(`no gateway or token in: ${out}`);
    const submitted = await fetch(`${url}/api/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(FIRST_TASK),
    });
    const { task_id: id } = (await submitted.json()) as { task_id: string };
    const status = await awaitTask(url, token, id);
    if (status !== 'completed') throw new Error(`the first task ended ${status}`);
    await sleep(IDLE_SETTLE_MS);
    const pids = processTree(child.pid);
    const before = treeCounters(pids);
    const start = performance.now();
    await sleep(IDLE_WINDOW_MS);
    const after = treeCounters(pids);
    const windowS = (performance.now() - start) / 1000;
    if (child.exitCode !== null) throw new Error('aiecs up exited while idle');
    const processes = treeMemory(processTree(child.pid));
    const result: UpIdleResult = {
      rssMb: processes.reduce((sum, p) => sum + p.rssMb, 0),
      processes,
      cpuPct: ((after.cpuS - before.cpuS) / windowS) * 100,
      wakeupsPerS: (after.switches - before.switches) / windowS,
      settleS: IDLE_SETTLE_MS / 1000,
      windowS,
    };
    log(
      `  idle (after one task, ${result.settleS} s settle, ${windowS.toFixed(0)} s window): ` +
        `RSS ${result.rssMb.toFixed(1)} MB in ${processes.length} process(es), ` +
        `CPU ${result.cpuPct.toFixed(2)} % of a core, ${result.wakeupsPerS.toFixed(1)} context switches/s`,
    );
    return result;
  } finally {
    await stopChild(child, STOP_GRACE_MS);
    removeTempDir(dir);
  }
}
