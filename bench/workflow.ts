/**
 * The `workflow` section (issue 15): on Redis, a group of no-op tasks and a chain of no-op steps end
 * to end, through aiecs's workflows and through raw BullMQ's `FlowProducer`, in alternating rounds
 * of one run. Both sides are timed the same way: from the add until the last task's completion,
 * once the queue's completed count reaches the workflow's size (polled every POLL_MS on both).
 * The end is the newest completion time BullMQ stored (`finishedOn`, the worker's clock, which is
 * this process's), not the poll that saw it: a 100-step chain takes 70-130 ms, and a 20 ms poll
 * put each side's figure in 20 ms buckets, one bucket more or less moving the ratio by 0.15-0.2.
 *
 * Raw BullMQ is what a BullMQ user would write for the same flows: the group one `addBulk` of
 * independent jobs, the chain one nested flow whose steps each read their child's result
 * (`getChildrenValues`, as a chain hands results on) with `failParentOnFailure` so a failed step
 * stops it. An aiecs step whose input its own worker has just completed takes it from memory
 * instead (docs/design.md §9): that is what a BullMQ user gets from BullMQ, and what aiecs adds.
 */
import { FlowProducer, Queue, Worker, type FlowJob, type Job } from 'bullmq';
import { FAST_QUEUE } from '../src/core/task.js';
import { chain, group } from '../src/index.js';
import { sleep, within } from './lifecycle.js';
import { dropNamespace } from './redis-server.js';
import { best, perSecond } from './stats.js';
import { aiecsTarget, startParts } from './targets.js';
import type { Side } from './workloads.js';

export type FlowKind = 'group' | 'chain';

export interface WorkflowResult {
  groupSize: number;
  chainLength: number;
  warmupRounds: number;
  /** Tasks per second of every measured round, in the order they ran (rounds pair up by index). */
  runs: Record<FlowKind, Record<Side, number[]>>;
  /** The best round per side: tasks per second. */
  group: Record<Side, number>;
  chain: Record<Side, number>;
}

/** One side's way of adding the two flows, and the fast queue's counts. */
interface FlowTarget {
  add(kind: FlowKind, size: number): Promise<void>;
  counts(): Promise<{ completed: number; failed: number }>;
  close(): Promise<void>;
}

const POLL_MS = 20;
const CALL_TIMEOUT_MS = 60_000;
const WARMUP_ROUNDS = 1;
/** Enough for a whole group at once, as the throughput sections run. */
const CONCURRENCY = 100;
const NOOP = { user_id: 'bench', mode: 'bench', service: 'noop', task_name: 'noop' };

let serial = 0;
const namespace = (side: Side) => `bench_wf_${side}_${process.pid}_${++serial}`;

function redisConnection(url: string) {
  const { hostname, port } = new URL(url);
  return { host: hostname, port: Number(port), maxRetriesPerRequest: null };
}

async function aiecsFlows(url: string, prefix: string): Promise<FlowTarget> {
  // The throughput sections' aiecs: app and worker on their own connections, the bench services.
  const target = await aiecsTarget({ kind: 'redis', url, namespace: prefix }, CONCURRENCY);
  const { app } = target;
  const step = () =>
    app.executeTask.s({
      taskName: NOOP.task_name,
      userId: NOOP.user_id,
      mode: NOOP.mode,
      service: NOOP.service,
    });
  return {
    async add(kind, size) {
      const members = Array.from({ length: size }, step);
      await (kind === 'group' ? group(members) : chain(...members)).delay();
    },
    counts: () => target.counts(),
    close: () => target.close(),
  };
}

async function bullmqFlows(url: string, prefix: string): Promise<FlowTarget> {
  const connection = redisConnection(url);
  const queueName = FAST_QUEUE;
  const flows = new FlowProducer({ connection, prefix });
  const queue = new Queue(queueName, { connection, prefix });
  const worker = new Worker(
    queueName,
    async (job: Job<{ step?: number }>) => {
      // A chain step after the first takes its predecessor's result, as aiecs's steps do.
      if ((job.data.step ?? 0) > 0) await job.getChildrenValues();
      return { ok: true };
    },
    { connection, prefix, concurrency: CONCURRENCY },
  );
  const close = async () => {
    await worker.close();
    await queue.close();
    await flows.close();
  };
  await startParts([flows, queue, worker], [queue, worker], close);
  return {
    async add(kind, size) {
      if (kind === 'group') {
        await flows.addBulk(Array.from({ length: size }, () => ({ name: 'noop', queueName, data: NOOP })));
        return;
      }
      let node: FlowJob = { name: 'noop', queueName, data: { ...NOOP, step: 0 } };
      for (let step = 1; step < size; step++) {
        node = {
          name: 'noop',
          queueName,
          data: { ...NOOP, step },
          children: [{ ...node, opts: { failParentOnFailure: true } }],
        } as FlowJob;
      }
      await flows.add(node);
    },
    async counts() {
      const c = await queue.getJobCounts('completed', 'failed');
      return { completed: c.completed ?? 0, failed: c.failed ?? 0 };
    },
    close,
  };
}

/** When the newest completed job finished (the completed set is scored by `finishedOn`). */
async function lastFinishedOn(reader: Queue): Promise<number> {
  const [newest] = await within(
    reader.getJobs(['completed'], 0, 0, false),
    CALL_TIMEOUT_MS,
    'reading the end',
  );
  if (newest?.finishedOn === undefined) throw new Error('the newest completed job has no finishedOn');
  return newest.finishedOn;
}

/** Milliseconds from the add until all `size` tasks completed, on a fresh namespace. */
async function timedFlow(url: string, side: Side, kind: FlowKind, size: number): Promise<number> {
  const prefix = namespace(side);
  const target = await within(
    side === 'aiecs' ? aiecsFlows(url, prefix) : bullmqFlows(url, prefix),
    CALL_TIMEOUT_MS,
    `starting ${side}`,
  );
  // The same reader for both sides, opened before the clock starts.
  const reader = new Queue(FAST_QUEUE, { connection: redisConnection(url), prefix });
  // Muted as the raw side's parts are (startParts): a real failure shows in the calls below.
  reader.on('error', () => undefined);
  try {
    await within(reader.waitUntilReady(), CALL_TIMEOUT_MS, 'opening the reader');
    const startedAt = Date.now();
    const deadline = performance.now() + 30_000 + size * 50;
    await within(target.add(kind, size), CALL_TIMEOUT_MS, `adding the ${kind}`);
    for (;;) {
      const { completed, failed } = await within(target.counts(), CALL_TIMEOUT_MS, 'counting jobs');
      if (failed > 0) throw new Error(`${failed} task(s) of the ${side} ${kind} failed`);
      if (completed >= size) return (await lastFinishedOn(reader)) - startedAt;
      if (performance.now() > deadline)
        throw new Error(`only ${completed} of ${size} ${side} ${kind} tasks completed in time`);
      await sleep(POLL_MS);
    }
  } finally {
    await within(reader.close(), CALL_TIMEOUT_MS, 'closing the reader');
    await within(target.close(), CALL_TIMEOUT_MS, `closing ${side}`);
    await within(dropNamespace(url, prefix), CALL_TIMEOUT_MS, `removing ${side}'s keys`);
  }
}

/**
 * A `groupSize` group and a `chainLength` chain, `rounds` measured rounds per side after a warm-up,
 * aiecs and BullMQ alternating (each first in turn) so a noisy neighbour hurts both alike.
 */
export async function workflow(
  url: string,
  sizes: { group: number; chain: number },
  rounds: number,
  log: (line: string) => void,
): Promise<WorkflowResult> {
  const runs: WorkflowResult['runs'] = { group: { aiecs: [], bullmq: [] }, chain: { aiecs: [], bullmq: [] } };
  for (let round = 1 - WARMUP_ROUNDS; round <= rounds; round++) {
    const sides: Side[] = round % 2 === 0 ? ['bullmq', 'aiecs'] : ['aiecs', 'bullmq'];
    for (const kind of ['group', 'chain'] as const)
      for (const side of sides) {
        const size = sizes[kind];
        const ms = await timedFlow(url, side, kind, size);
        const rate = perSecond(size, ms);
        if (round < 1) continue;
        runs[kind][side].push(rate);
        log(`  round ${round}, ${side} ${kind} of ${size}: ${ms.toFixed(0)} ms = ${rate.toFixed(0)} tasks/s`);
      }
  }
  const bestOf = (kind: FlowKind) => ({ aiecs: best(runs[kind].aiecs), bullmq: best(runs[kind].bullmq) });
  return {
    groupSize: sizes.group,
    chainLength: sizes.chain,
    warmupRounds: WARMUP_ROUNDS,
    runs,
    group: bestOf('group'),
    chain: bestOf('chain'),
  };
}
