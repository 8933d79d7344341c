/**
 * Fan-out through the gateway (issue 3): `clients` socket.io clients on one `aiecs gateway`, each
 * the only user of its own task, which reports STEPS progress steps `intervalMs` apart on an
 * `aiecs worker`. Both are child processes of the built CLI on the bench's private Redis, exactly
 * as a deployment runs them; the clients live in this process.
 *
 * Two shapes of load, the same 2,000 x 20 events:
 * - `paced` (the goals' run): fan-out at a sustained rate, apart from the engine's start and end
 *   of 2,000 jobs at once (issue 2's throughput). Every task is running before the first step
 *   (they start at a common time PACED_LEAD_MS after the submissions began; the run counts how
 *   many were running by then). Each takes its steps at a phase of its own, a random offset within
 *   the first interval, as independent tasks do (an LLM call or a section ends when it ends), and
 *   returns at a random time within PACED_TAIL_MS after its last step, as tasks of different
 *   lengths do. The offered rate is clients / intervalMs (2,000 / 160 ms = 12,500 events/s) for
 *   ~3.2 s: latency at a sustained rate above the goal's 10,000 events/s. Three rounds; the
 *   median by p99 is reported, with each round's p99.
 * - `burst` (reported, no goal): every task steps in lockstep, so each step reaches the worker and
 *   the gateway as one wave of `clients` events at once (2,000 timers firing in one millisecond).
 *   The tasks also start and end together. Its p99 is the time a 2-core machine needs to drain
 *   such a wave through four busy processes.
 *
 * Latency is the worker's Date.now() when it called task.progress (the event's `timestamp`) to
 * Date.now() in the client's handler: worker, store, gateway, socket and this process's event
 * loop, all on one machine and one clock (millisecond resolution). So that a slow client side or a
 * busy machine can be told from a slow gateway, the log also shows this process's event-loop delay,
 * the CPU each process used, the p99 of each step, and the latency split at the store.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { io, type Socket } from 'socket.io-client';
import { Redis } from 'ioredis';
import { FAST_QUEUE, isTerminal, type TaskStatus } from '../src/core/task.js';
import { mintToken } from '../src/gateway/auth.js';
import type { ProgressEvent } from '../src/gateway/event-bridge.js';
import { cliEnv, cpuSeconds, rssSampler, startCli, type Child, type RssSampler } from './cli-child.js';
import { freePort, makeTempDir, removeTempDir, rssMb, stopChild, within } from './lifecycle.js';
import { perSecond, summarize, type Summary } from './stats.js';

/** The package's entry point, imported by absolute URL from the services module in a temp dir. */
const INDEX_URL = new URL('../src/index.js', import.meta.url).href;

/** Progress steps per task. */
export const STEPS = 20;

export type Pacing = 'paced' | 'burst';
/** The pause between two steps of a task, per shape of load (see above). */
export const STEP_INTERVAL_MS: Record<Pacing, number> = { paced: 160, burst: 100 };
/** Paced: from the first submission to the tasks' common start (submitting takes ~0.7 s). */
export const PACED_LEAD_MS = 2_000;
/** Paced: tasks return at a random time within this long after their last step. */
export const PACED_TAIL_MS = 1_000;

const STOP_GRACE_MS = 20_000;
/** Handshakes in flight at once: enough to be quick, few enough not to overflow the accept backlog. */
const CONNECT_PARALLEL = 100;
/** Tasks per POST /api/tasks/batch (the gateway's MAX_BATCH). */
const BATCH_SIZE = 1_000;
const CONNECT_TIMEOUT_MS = 60_000;
const SUBMIT_TIMEOUT_MS = 60_000;
/** After the last submission: the tasks' own run time plus this much slack, then whatever is missing is missing. */
const DRAIN_SLACK_MS = 30_000;

const STEP_MESSAGE = /^fanout step (\d+)\/\d+$/;

/** The bench service, written at run time and loaded by the worker and the gateway (`--services`). */
export function servicesModule(): string {
  return `import { registerService } from ${JSON.stringify(INDEX_URL)};
const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    // The listener goes when the timer fires: one left per step would trip Node's listener-leak
    // warning at the 11th, formatted and written by every task at once.
    const onAbort = () => { clearTimeout(timer); reject(signal.reason); };
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
registerService('bench', 'fanout', {
  async steps(input, _ctx, task) {
    const steps = Number(input.steps);
    const wait = Number(input.start_at) - Date.now();
    if (wait > 0) await sleep(wait, task.signal);
    for (let i = 1; i <= steps; i++) {
      if (i > 1) await sleep(Number(input.interval_ms), task.signal);
      task.progress(Math.round((100 * i) / steps), 'fanout step ' + i + '/' + steps);
    }
    if (Number(input.tail_ms) > 0) await sleep(Number(input.tail_ms), task.signal);
    return { steps };
  },
});
`;
}

/**
 * The fan-out setup: an `aiecs gateway` on `port` (counting its slow-client drop lines) and an
 * `aiecs worker` running up to `tasks` fast tasks at once, both with the bench service loaded.
 */
export function startGatewayAndWorker(
  store: string[],
  port: number,
  services: string,
  secret: string,
  tasks: number,
): Promise<[Child, Child]> {
  return Promise.all([
    startCli(
      ['gateway', ...store, '--port', String(port), '--host', '127.0.0.1', '--services', services],
      cliEnv({ AIECS_JWT_SECRET: secret }),
      /^aiecs gateway:/,
      /stopped reading/,
    ),
    startCli(
      [
        'worker',
        ...store,
        '-Q',
        'fast_tasks',
        '-c',
        `fast_tasks=${tasks},heavy_tasks=1`,
        '--services',
        services,
      ],
      cliEnv(),
      /^aiecs worker:/,
    ),
  ]);
}

/** Runs `fn` over `items` with at most `limit` calls in flight; the first failure rejects. */
async function inParallel<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

interface Client {
  user: string;
  token: string;
  socket?: Socket;
  taskId?: string;
  /** Deliveries per step, 1..STEPS. */
  steps: Uint16Array;
  /** Date.now() of the first receipt of each step, to split the latency at the store. */
  receivedAt: Float64Array;
  tasksSeen: Set<string>;
  terminal?: TaskStatus;
  startedEarly?: boolean;
}

/** What every client's handler adds to. */
interface Tally {
  latencies: number[];
  /** Latencies of step 1..STEPS apart: the start and the end of the tasks are where the bursts are. */
  byStep: number[][];
  delivered: number;
  duplicates: number;
  foreign: number;
  disconnects: number;
  finished: number;
  /** Tasks seen running before the first step event reached any client. */
  startedBeforeFirstStep: number;
  firstAt?: number;
  lastAt?: number;
  closing: boolean;
  onAllFinished?: () => void;
}

/** The round being counted: the warm-up's, then the measured one's. */
interface Round {
  tally: Tally;
  total: number;
}

function onProgress(client: Client, round: Round) {
  return (event: ProgressEvent) => {
    const { tally, total } = round;
    const now = Date.now();
    const at = performance.now();
    // Isolation: a user must never see another user's events.
    if (event.user_id !== client.user) {
      tally.foreign += 1;
      return;
    }
    client.tasksSeen.add(event.task_id);
    if (isTerminal(event.status)) {
      if (client.terminal === undefined) {
        client.terminal = event.status;
        tally.finished += 1;
        if (tally.finished === total) tally.onAllFinished?.();
      }
      return;
    }
    const step = Number(STEP_MESSAGE.exec(event.message)?.[1]);
    if (event.status === 'running' && tally.firstAt === undefined && !client.startedEarly) {
      // Running before any step reached any client: the paced run's claim to leave out the start.
      client.startedEarly = true;
      tally.startedBeforeFirstStep += 1;
    }
    if (event.status !== 'running' || !(step >= 1 && step <= STEPS)) return;
    tally.latencies.push(now - event.timestamp);
    tally.byStep[step]?.push(now - event.timestamp);
    tally.delivered += 1;
    if ((client.steps[step] = (client.steps[step] ?? 0) + 1) > 1) tally.duplicates += 1;
    // Kept per client in a typed array: a map of 40,000 string keys made this process's own GC
    // pauses part of the latency it measures.
    else client.receivedAt[step] = now;
    tally.firstAt ??= at;
    tally.lastAt = at;
  };
}

function connect(url: string, client: Client, round: Round): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = io(url, {
      transports: ['websocket'],
      auth: { token: client.token },
      // One connection per client: without forceNew socket.io-client would share one per URL.
      forceNew: true,
      // A dropped client is a failure of the run, not something to paper over.
      reconnection: false,
      timeout: CONNECT_TIMEOUT_MS,
    });
    client.socket = socket;
    socket.on('progress', onProgress(client, round));
    socket.on('disconnect', () => {
      if (!round.tally.closing) round.tally.disconnects += 1;
    });
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error: Error) =>
      reject(new Error(`client ${client.user}: ${error.message}`)),
    );
  });
}

/**
 * One task per client through `POST /api/tasks/batch` as an admin naming each task's user, so all
 * tasks start within a moment and the offered load reaches clients / interval.
 */
export async function submitBatch(
  url: string,
  adminToken: string,
  batch: Array<Pick<Client, 'user' | 'taskId'>>,
  pacing: Pacing,
  startAt: number,
  steps: number,
): Promise<void> {
  const intervalMs = STEP_INTERVAL_MS[pacing];
  const paced = pacing === 'paced';
  const response = await fetch(`${url}/api/tasks/batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      tasks: batch.map((c) => ({
        user_id: c.user,
        mode: 'bench',
        service: 'fanout',
        task_name: 'steps',
        input_data: {
          steps,
          interval_ms: intervalMs,
          start_at: paced ? startAt + Math.floor(Math.random() * intervalMs) : 0,
          tail_ms: paced ? Math.floor(Math.random() * PACED_TAIL_MS) : 0,
        },
      })),
    }),
    signal: AbortSignal.timeout(SUBMIT_TIMEOUT_MS),
  });
  const text = await response.text();
  if (response.status !== 202) {
    throw new Error(`POST /api/tasks/batch: HTTP ${response.status} ${text.slice(0, 300)}`);
  }
  const { tasks } = JSON.parse(text) as { tasks: Array<{ task_id: string }> };
  if (tasks.length !== batch.length) throw new Error(`batch of ${batch.length} answered ${tasks.length} ids`);
  batch.forEach((c, i) => (c.taskId = tasks[i]?.task_id));
}

type Spread = Summary & { max: number };

const spread = (samples: number[]): Spread | undefined =>
  samples.length ? { ...summarize(samples), max: samples.reduce((a, b) => Math.max(a, b)) } : undefined;

export interface Stages {
  /** Stream entries read (BullMQ trims the stream to about 10,000, so these are the run's last). */
  entries: number;
  /** The worker's timestamp to the entry's id (Redis's clock at XADD): worker and store. */
  workerToStore?: Spread;
  /** The entry's id to the client's receipt: the gateway (read, bridge, socket.io) and the client. */
  storeToClient?: Spread;
}

/**
 * Splits the latency at the store, read after the run so it costs nothing during it: each progress
 * entry of the queue's event stream carries the worker's timestamp, and its id Redis's clock when
 * it was added. Same machine, same clock, millisecond resolution.
 */
async function stages(
  redisUrl: string,
  namespace: string,
  receivedAt: (taskId: string, step: number) => number | undefined,
): Promise<Stages> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    const entries = await redis.xrange(`${namespace}:${FAST_QUEUE}:events`, '-', '+');
    const workerToStore: number[] = [];
    const storeToClient: number[] = [];
    for (const [id, fields] of entries) {
      const entry: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i] as string] = fields[i + 1] as string;
      if (entry.event !== 'progress' || !entry.data) continue;
      const data = JSON.parse(entry.data) as { status?: string; message?: string; timestamp?: number };
      const step = STEP_MESSAGE.exec(data.message ?? '')?.[1];
      if (data.status !== 'running' || step === undefined || typeof data.timestamp !== 'number') continue;
      const addedAt = Number(id.split('-')[0]);
      workerToStore.push(addedAt - data.timestamp);
      const received = receivedAt(entry.jobId ?? '', Number(step));
      if (received !== undefined) storeToClient.push(received - addedAt);
    }
    const w = spread(workerToStore);
    const c = spread(storeToClient);
    return {
      entries: entries.length,
      ...(w ? { workerToStore: w } : {}),
      ...(c ? { storeToClient: c } : {}),
    };
  } finally {
    redis.disconnect();
  }
}

export interface FanoutResult {
  pacing: Pacing;
  clients: number;
  steps: number;
  intervalMs: number;
  connectS: number;
  submitS: number;
  /** Step events received, duplicates included. */
  delivered: number;
  expected: number;
  /** Steps never received plus terminal events never received. */
  missing: number;
  missingSteps: number;
  missingTerminal: number;
  duplicates: number;
  /** Step events per second from the first delivery to the last. */
  eventsPerS: number | undefined;
  latency: Spread | undefined;
  /** Measured rounds, and each one's p99; the other figures are the median round's. */
  rounds: number;
  roundsP99: number[];
  /** p99 latency of each step, 1..STEPS. */
  stepP99: number[];
  stages: Stages | undefined;
  rssIdleMb: number;
  rssPeakMb: number;
  rssAfterMb: number;
  /** Events a client received for another user or another task: must be 0. */
  isolationViolations: number;
  disconnects: number;
  /** Tasks that ended in anything but completed. */
  unsuccessful: number;
  /** Tasks running before the first step reached a client (paced: all of them). */
  startedBeforeFirstStep: number;
  /** Clients the gateway dropped for not reading (its warn lines). */
  slowClientDrops: number;
  clientLoopDelayP99Ms: number;
  clientLoopDelayMaxMs: number;
}

/** Why a run is a failure regardless of its speed: lost, foreign or failed events. */
export function fanoutProblems(r: FanoutResult): string[] {
  const problems: string[] = [];
  if (r.missing > 0)
    problems.push(`${r.missing} missing event(s) (${r.missingSteps} steps, ${r.missingTerminal} terminal)`);
  if (r.isolationViolations > 0)
    problems.push(`${r.isolationViolations} event(s) delivered to the wrong user`);
  if (r.disconnects > 0) problems.push(`${r.disconnects} client(s) disconnected during the run`);
  if (r.unsuccessful > 0) problems.push(`${r.unsuccessful} task(s) did not complete`);
  return problems;
}

/** Steps per task of the unmeasured warm-up round. */
const WARMUP_STEPS = 5;

function newTally(): Tally {
  return {
    latencies: [],
    byStep: Array.from({ length: STEPS + 1 }, () => []),
    delivered: 0,
    duplicates: 0,
    foreign: 0,
    disconnects: 0,
    finished: 0,
    startedBeforeFirstStep: 0,
    closing: false,
  };
}

/** Submits one task per client and waits until every client has seen its task end (or the drain time passed). */
async function runRound(
  url: string,
  adminToken: string,
  list: Client[],
  round: Round,
  pacing: Pacing,
  steps: number,
): Promise<{ submitS: number; timedOut: boolean; drainMs: number; finished: number }> {
  const intervalMs = STEP_INTERVAL_MS[pacing];
  const allFinished = new Promise<void>((resolve) => (round.tally.onAllFinished = resolve));
  const submitStart = performance.now();
  // Date.now(): the worker compares it with its own clock (same machine).
  const startAt = Date.now() + PACED_LEAD_MS;
  for (let i = 0; i < list.length; i += BATCH_SIZE) {
    await submitBatch(url, adminToken, list.slice(i, i + BATCH_SIZE), pacing, startAt, steps);
  }
  const submitS = (performance.now() - submitStart) / 1000;
  const drainMs = PACED_LEAD_MS + (steps + 1) * intervalMs + PACED_TAIL_MS + DRAIN_SLACK_MS;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    allFinished.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), drainMs))),
  ]);
  clearTimeout(timer);
  return { submitS, timedOut, drainMs, finished: round.tally.finished };
}

export async function fanout(
  redisUrl: string,
  clients: number,
  pacing: Pacing,
  log: (line: string) => void,
  rounds = 1,
): Promise<FanoutResult> {
  const intervalMs = STEP_INTERVAL_MS[pacing];
  const dir = makeTempDir('fanout');
  const services = join(dir, 'fanout-services.mjs');
  writeFileSync(services, servicesModule());
  const namespace = `bench_fanout_${pacing}_${process.pid}`;
  const store = ['--broker', redisUrl, '--namespace', namespace];
  const secret = randomBytes(32).toString('hex');
  const port = await freePort();
  const round: Round = { tally: newTally(), total: clients };
  const list: Client[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let gateway: Child | undefined;
  let worker: Child | undefined;
  let sampler: RssSampler | undefined;
  try {
    [gateway, worker] = await startGatewayAndWorker(store, port, services, secret, clients);
    const url = `http://127.0.0.1:${port}`;
    const gatewayPid = gateway.process.pid as number;
    const rssIdleMb = rssMb(gatewayPid);
    sampler = rssSampler(gatewayPid);
    log(
      `  gateway ${url} (pid ${gatewayPid}, ${rssIdleMb.toFixed(1)} MB idle), worker pid ${worker.process.pid}`,
    );

    for (let i = 0; i < clients; i++) {
      const user = `fanout-user-${i}`;
      list.push({
        user,
        token: await mintToken(secret, user),
        steps: new Uint16Array(STEPS + 1),
        receivedAt: new Float64Array(STEPS + 1),
        tasksSeen: new Set(),
      });
    }
    const connectStart = performance.now();
    await within(
      inParallel(list, CONNECT_PARALLEL, (c) => connect(url, c, round)),
      CONNECT_TIMEOUT_MS * 2,
      `connecting ${clients} clients`,
    );
    const connectS = (performance.now() - connectStart) / 1000;
    log(
      `  ${clients} clients connected in ${connectS.toFixed(2)} s; gateway ${rssMb(gatewayPid).toFixed(1)} MB`,
    );

    // The first fetch loads undici: done here, it does not stall the clients while they measure.
    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(SUBMIT_TIMEOUT_MS) });
    if (!health.ok) throw new Error(`GET /healthz: HTTP ${health.status}`);
    const adminToken = await mintToken(secret, 'fanout-admin', { admin: true });

    // One unmeasured round first, the same load with fewer steps: the measured one then runs on
    // warm processes (JIT, connections, buffers), as a gateway in service does.
    const warm = await runRound(url, adminToken, list, round, pacing, WARMUP_STEPS);
    if (warm.timedOut) throw new Error(`the warm-up round did not finish: ${warm.finished} of ${clients}`);
    const warmupForeign = round.tally.foreign;
    const warmupDisconnects = round.tally.disconnects;
    // Rounds of the same load on the same processes: the median round by p99 is reported (a shared
    // machine's noise moves one round's tail); every round's p99 is kept, and a lost, foreign or
    // failed event in any round fails the run.
    const measured: FanoutResult[] = [];
    for (let r = 1; r <= rounds; r++) {
      const label = rounds > 1 ? `${pacing} round ${r} of ${rounds}` : pacing;
      measured.push(await measuredRound(label));
    }
    const rssPeakMb = sampler.stop();
    sampler = undefined;
    const rssAfterMb = rssMb(gatewayPid);
    const byP99 = [...measured].sort((a, b) => (a.latency?.p99 ?? Infinity) - (b.latency?.p99 ?? Infinity));
    const median = byP99[Math.floor((byP99.length - 1) / 2)]!;
    const sum = (pick: (r: FanoutResult) => number) => measured.reduce((n, r) => n + pick(r), 0);
    const result: FanoutResult = {
      ...median,
      rounds: measured.length,
      roundsP99: measured.map((r) => r.latency?.p99 ?? NaN),
      rssPeakMb,
      rssAfterMb,
      missing: sum((r) => r.missing),
      missingSteps: sum((r) => r.missingSteps),
      missingTerminal: sum((r) => r.missingTerminal),
      isolationViolations: sum((r) => r.isolationViolations) + warmupForeign,
      disconnects: sum((r) => r.disconnects) + warmupDisconnects,
      unsuccessful: sum((r) => r.unsuccessful),
      slowClientDrops: gateway.counted(),
    };
    if (measured.length > 1)
      log(
        `  ${pacing}: p99 of the ${measured.length} rounds ${result.roundsP99.map((x) => x.toFixed(0)).join(', ')} ms;` +
          ` the median round is reported; gateway RSS peak ${rssPeakMb.toFixed(1)} MB over all rounds`,
      );
    if (fanoutProblems(result).length && gateway.stderrTail())
      log(`  gateway stderr: ${gateway.stderrTail()}`);
    return result;

    async function measuredRound(label: string): Promise<FanoutResult> {
      for (const c of list) {
        c.steps.fill(0);
        c.receivedAt.fill(0);
        c.tasksSeen.clear();
        delete c.taskId;
        delete c.terminal;
        delete c.startedEarly;
      }
      const tally = (round.tally = newTally());
      loop.reset();
      loop.enable();
      const cpuBefore = {
        gateway: cpuSeconds(gatewayPid),
        worker: cpuSeconds(worker!.process.pid as number),
        self: process.cpuUsage(),
      };
      const submitStart = performance.now();
      const { submitS, timedOut, drainMs } = await runRound(url, adminToken, list, round, pacing, STEPS);
      log(
        `  ${label}: ${clients} tasks submitted in ${submitS.toFixed(2)} s (POST /api/tasks/batch, ${BATCH_SIZE} a request)`,
      );
      loop.disable();
      const runS = (performance.now() - submitStart) / 1000;
      const selfCpu = process.cpuUsage(cpuBefore.self);
      const cpuShare = (seconds: number) => `${((100 * seconds) / runS).toFixed(0)}%`;
      const cpuLine =
        `gateway ${cpuShare(cpuSeconds(gatewayPid) - cpuBefore.gateway)}, ` +
        `worker ${cpuShare(cpuSeconds(worker!.process.pid as number) - cpuBefore.worker)}, ` +
        `this process ${cpuShare((selfCpu.user + selfCpu.system) / 1e6)}`;
      if (timedOut) log(`  only ${tally.finished} of ${clients} tasks finished within ${drainMs / 1000} s`);

      let missingSteps = 0;
      let missingTerminal = 0;
      let isolation = tally.foreign;
      let unsuccessful = 0;
      for (const c of list) {
        for (let step = 1; step <= STEPS; step++) if (!c.steps[step]) missingSteps += 1;
        if (c.terminal === undefined) missingTerminal += 1;
        else if (c.terminal !== 'completed') unsuccessful += 1;
        for (const id of c.tasksSeen) if (id !== c.taskId) isolation += 1;
      }
      const expected = clients * STEPS;
      const windowMs = (tally.lastAt ?? 0) - (tally.firstAt ?? 0);
      const latency = spread(tally.latencies);
      const byTask = new Map(list.map((c) => [c.taskId, c]));
      const receivedAt = (taskId: string, step: number) => byTask.get(taskId)?.receivedAt[step] || undefined;
      const split = await stages(redisUrl, namespace, receivedAt).catch((error: Error) => {
        log(`  could not read the event stream for the stage split: ${error.message}`);
        return undefined;
      });
      const rssNow = rssMb(gatewayPid);
      const one: FanoutResult = {
        pacing,
        clients,
        steps: STEPS,
        intervalMs,
        connectS,
        submitS,
        delivered: tally.delivered,
        expected,
        missing: missingSteps + missingTerminal,
        missingSteps,
        missingTerminal,
        duplicates: tally.duplicates,
        eventsPerS: windowMs > 0 ? perSecond(tally.delivered, windowMs) : undefined,
        latency,
        rounds: 1,
        roundsP99: [latency?.p99 ?? NaN],
        stepP99: tally.byStep.slice(1).map((xs) => (xs.length ? summarize(xs).p99 : NaN)),
        stages: split,
        rssIdleMb,
        rssPeakMb: rssNow,
        rssAfterMb: rssNow,
        isolationViolations: isolation,
        disconnects: tally.disconnects,
        unsuccessful,
        startedBeforeFirstStep: tally.startedBeforeFirstStep,
        slowClientDrops: gateway!.counted(),
        clientLoopDelayP99Ms: loop.percentile(99) / 1e6,
        clientLoopDelayMaxMs: loop.max / 1e6,
      };
      log(
        `  ${label}: ${tally.delivered} of ${expected} step events in ${(windowMs / 1000).toFixed(2)} s` +
          ` = ${one.eventsPerS?.toFixed(0) ?? '-'} events/s; latency p50 ${latency?.p50.toFixed(1) ?? '-'} ms,` +
          ` p99 ${latency?.p99.toFixed(1) ?? '-'} ms, max ${latency?.max.toFixed(1) ?? '-'} ms`,
      );
      log(
        `  gateway RSS now ${rssNow.toFixed(1)} MB; missing ${one.missing}, duplicates ${one.duplicates},` +
          ` isolation violations ${isolation}, disconnects ${tally.disconnects};` +
          ` this process's event-loop delay p99 ${one.clientLoopDelayP99Ms.toFixed(1)} ms,` +
          ` max ${one.clientLoopDelayMaxMs.toFixed(1)} ms`,
      );
      log(`  latency p99 ms by step 1..${STEPS}: ${one.stepP99.map((x) => x.toFixed(0)).join(' ')}`);
      log(
        `  ${label}: ${one.startedBeforeFirstStep} of ${clients} tasks were running before the first step event`,
      );
      if (split) {
        const show = (s: Spread | undefined) =>
          s ? `p50 ${s.p50.toFixed(0)}, p99 ${s.p99.toFixed(0)}, max ${s.max.toFixed(0)} ms (n ${s.n})` : '-';
        log(
          `  split at the store (the last ${split.entries} stream entries): worker -> Redis ${show(split.workerToStore)};` +
            ` Redis -> client ${show(split.storeToClient)}`,
        );
      }
      log(
        `  CPU from first submission to last terminal event (${runS.toFixed(2)} s, % of one core): ${cpuLine};` +
          ` ${availableParallelism()} CPUs, load average ${loadavg()[0]?.toFixed(2)}`,
      );
      return one;
    }
  } finally {
    sampler?.stop();
    loop.disable();
    round.tally.closing = true;
    for (const c of list) c.socket?.disconnect();
    await Promise.all([
      gateway ? stopChild(gateway.process, STOP_GRACE_MS) : undefined,
      worker ? stopChild(worker.process, STOP_GRACE_MS) : undefined,
    ]);
    removeTempDir(dir);
  }
}
