/**
 * Workloads that need a process of their own: the idle memory of a worker and the start-up time
 * of `aiecs up`. They run the built CLI (dist/cli/main.js) exactly as a user would.
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
}

export async function upStartup(log: (line: string) => void): Promise<StartupResult> {
  const dir = makeTempDir('up');
  try {
    const broker = `embedded:${join(dir, 'data')}`;
    const firstMs = await timedUp(broker, dir);
    log(`  first start (initializes the store): ${firstMs.toFixed(0)} ms`);
    const secondMs = await timedUp(broker, dir);
    log(`  second start: ${secondMs.toFixed(0)} ms`);
    return { firstMs, secondMs };
  } finally {
    removeTempDir(dir);
  }
}
