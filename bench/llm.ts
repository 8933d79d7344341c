/**
 * LLM tasks end to end (issue 4): `count` chat/llm_chat tasks on one `aiecs worker` child process
 * (the built CLI, on the bench's private Redis) against a fake OpenAI server in this process that
 * streams TOKENS tokens over REPLY_MS per request. This process submits the tasks through an
 * AiecsApp and reads the tasks' stream deltas and completions from the store's event stream, as
 * the gateway would.
 *
 * Wall time runs from the first submission to the last `completed` event. One warm-up task runs
 * first and is not counted: it loads the OpenAI SDK in the worker, which happens once per process.
 */
import { loadConfig } from '../src/core/config.js';
import { silentLogger } from '../src/core/logger.js';
import { FAST_QUEUE, HEAVY_QUEUE } from '../src/core/task.js';
import { createApp, type WireSubmission } from '../src/engine/app.js';
import { TOKEN, startFakeOpenAi, type FakeOpenAi } from './fake-openai.js';
import { cliEnv, cpuSeconds, rssSampler, startCli, type Child, type RssSampler } from './cli-child.js';
import { rssMb, sleep, stopChild, within } from './lifecycle.js';
import { perSecond } from './stats.js';

/** Tokens per answer and the time the fake server takes to stream them. */
export const TOKENS = 50;
export const REPLY_MS = 500;

const CHUNK = 500;
const STOP_GRACE_MS = 20_000;
const CALL_TIMEOUT_MS = 60_000;
const POLL_MS = 250;
/** After the last completion, how long stream events that are still missing may take to arrive. */
const STRAGGLER_MS = 2_000;
const IDLE_SETTLE_MS = 1_000;

export interface LlmResult {
  count: number;
  tokensPerTask: number;
  replyMs: number;
  wallS: number;
  tasksPerS: number;
  completed: number;
  failed: number;
  /** `stream` events received (the worker coalesces deltas, so fewer than tokens). */
  streamChunks: number;
  tokensDelivered: number;
  tokensExpected: number;
  /** Tasks that did not deliver all their tokens as stream events. */
  tasksShort: number;
  rssIdleMb: number;
  rssPeakMb: number;
  rssAfterMb: number;
  /** Worker CPU during the run, as a share of one core. */
  workerCpuShare: number;
  providerRequests: number;
  providerMaxInFlight: number;
}

/** Why a run fails regardless of its speed: failed tasks or lost stream deltas. */
export function llmProblems(r: LlmResult): string[] {
  const problems: string[] = [];
  if (r.failed > 0) problems.push(`${r.failed} task(s) failed`);
  if (r.completed < r.count) problems.push(`only ${r.completed} of ${r.count} task(s) completed`);
  if (r.tokensDelivered !== r.tokensExpected)
    problems.push(`${r.tokensDelivered} of ${r.tokensExpected} streamed tokens delivered`);
  return problems;
}

function childEnv(baseUrl: string): NodeJS.ProcessEnv {
  return cliEnv(
    {
      OPENAI_API_KEY: 'bench',
      OPENAI_BASE_URL: baseUrl,
      // Off: those limits guard a provider's quota (defaults 50 in flight), and the goal measures the
      // engine against a server with no quota, as a self-hosted OpenAI-compatible one is.
      AIECS_OPENAI_MAX_CONCURRENCY: '0',
      AIECS_OPENAI_RPM: '0',
    },
    // Nothing of the caller's may redirect the provider or the model.
    ['AIECS_OPENAI_MODEL', 'OPENAI_ORG_ID', 'OPENAI_PROJECT_ID'],
  );
}

const countTokens = (delta: string): number => delta.split(TOKEN).length - 1;

export async function llm(redisUrl: string, count: number, log: (line: string) => void): Promise<LlmResult> {
  const namespace = `bench_llm_${process.pid}`;
  const config = loadConfig({ AIECS_LOG_LEVEL: 'silent' });
  const app = createApp({ broker: redisUrl, namespace, config, logger: silentLogger });
  let server: FakeOpenAi | undefined;
  let worker: Child | undefined;
  let sampler: RssSampler | undefined;
  let events: Awaited<ReturnType<Awaited<ReturnType<typeof app.store>>['createQueueEvents']>> | undefined;
  try {
    server = await startFakeOpenAi({ tokens: TOKENS, replyMs: REPLY_MS });
    worker = await startCli(
      [
        'worker',
        '--broker',
        redisUrl,
        '--namespace',
        namespace,
        '-Q',
        FAST_QUEUE,
        '-c',
        `${FAST_QUEUE}=${count},${HEAVY_QUEUE}=1`,
      ],
      childEnv(server.baseUrl),
      /^aiecs worker:/,
    );
    const pid = worker.process.pid as number;

    // What this process reads: every stream delta and terminal event of the fast queue.
    const store = await app.store();
    events = store.createQueueEvents(FAST_QUEUE);
    events.on('error', () => undefined);
    const measured = new Set<string>();
    const tokensByTask = new Map<string, number>();
    const tally = { chunks: 0, tokens: 0, completed: 0, failed: 0, lastAt: 0 };
    let onDone: (() => void) | undefined;
    const ended = new Set<string>();
    events.on('stream' as 'added', (raw: unknown) => {
      const e = raw as { task_id?: unknown; delta?: unknown };
      if (typeof e.task_id !== 'string' || typeof e.delta !== 'string' || !measured.has(e.task_id)) return;
      const n = countTokens(e.delta);
      tally.chunks += 1;
      tally.tokens += n;
      tokensByTask.set(e.task_id, (tokensByTask.get(e.task_id) ?? 0) + n);
    });
    const onEnd = (jobId: string, ok: boolean) => {
      if (!measured.has(jobId) || ended.has(jobId)) return;
      ended.add(jobId);
      if (ok) tally.completed += 1;
      else tally.failed += 1;
      tally.lastAt = performance.now();
      if (ended.size === count) onDone?.();
    };
    events.on('completed', ({ jobId }) => onEnd(jobId, true));
    events.on('failed', ({ jobId }) => onEnd(jobId, false));
    await events.waitUntilReady();
    const queue = await app.queue(FAST_QUEUE);
    await queue.waitUntilReady();

    const request = {
      task_name: 'chat',
      user_id: 'bench',
      mode: 'chat',
      service: 'llm_chat',
      input_data: { prompt: 'hi' },
      context: { model: 'gpt-4o-mini' },
    };

    // Warm-up: the worker loads the OpenAI SDK on its first request.
    const [warm] = await app.submitWire([{ queue: FAST_QUEUE, request }]);
    const warmRecord = await within(
      (warm as NonNullable<typeof warm>).get({ timeout: CALL_TIMEOUT_MS / 1000 }),
      CALL_TIMEOUT_MS,
      'the warm-up task',
    );
    const warmText = (warmRecord.result as { text?: unknown } | undefined)?.text;
    if (typeof warmText !== 'string' || countTokens(warmText) !== TOKENS)
      throw new Error(`the warm-up task answered ${JSON.stringify(warmRecord.result).slice(0, 200)}`);
    const requestsBefore = server.requests();
    await sleep(IDLE_SETTLE_MS);
    const rssIdleMb = rssMb(pid);
    sampler = rssSampler(pid);
    log(`  fake OpenAI ${server.baseUrl}; worker pid ${pid}, ${rssIdleMb.toFixed(1)} MB after warm-up`);

    const allEnded = new Promise<void>((resolve) => (onDone = resolve));
    const cpuBefore = cpuSeconds(pid);
    const start = performance.now();
    for (let i = 0; i < count; i += CHUNK) {
      const n = Math.min(CHUNK, count - i);
      const handles = await within(
        app.submitWire(Array.from({ length: n }, (): WireSubmission => ({ queue: FAST_QUEUE, request }))),
        CALL_TIMEOUT_MS,
        'submitting tasks',
      );
      for (const h of handles) measured.add(h.id);
    }
    const submitS = (performance.now() - start) / 1000;

    // Completions come from the event stream; a poll of the counts backs it up (and fails fast).
    const deadline = start + 60_000 + count * 20;
    let polled = { completed: 0, failed: 0 };
    let finished = false;
    void allEnded.then(() => (finished = true));
    while (!finished) {
      await Promise.race([allEnded, sleep(POLL_MS)]);
      if (finished) break;
      const c = await within(queue.getJobCounts('completed', 'failed'), CALL_TIMEOUT_MS, 'counting jobs');
      // The warm-up task is one of the completed.
      polled = { completed: (c.completed ?? 0) - 1, failed: c.failed ?? 0 };
      if (polled.failed > 0) break;
      if (polled.completed >= count) {
        // All done by the store's count: give the events a moment, then take what arrived.
        await Promise.race([allEnded, sleep(STRAGGLER_MS)]);
        break;
      }
      if (performance.now() > deadline) break;
    }
    const end = finished ? tally.lastAt : performance.now();
    const wallMs = end - start;
    const workerCpu = cpuSeconds(pid) - cpuBefore;
    const rssPeakMb = sampler.stop();
    sampler = undefined;
    // Stream deltas are published before their task completes, so they are in by now; stragglers
    // from a lagging reader get a moment more.
    const expected = count * TOKENS;
    for (let waited = 0; tally.tokens < expected && waited < STRAGGLER_MS; waited += 50) await sleep(50);
    const rssAfterMb = rssMb(pid);

    let tasksShort = 0;
    for (const id of measured) if ((tokensByTask.get(id) ?? 0) !== TOKENS) tasksShort += 1;
    const result: LlmResult = {
      count,
      tokensPerTask: TOKENS,
      replyMs: REPLY_MS,
      wallS: wallMs / 1000,
      tasksPerS: perSecond(Math.max(tally.completed, polled.completed), wallMs),
      completed: Math.max(tally.completed, polled.completed),
      failed: Math.max(tally.failed, polled.failed),
      streamChunks: tally.chunks,
      tokensDelivered: tally.tokens,
      tokensExpected: expected,
      tasksShort,
      rssIdleMb,
      rssPeakMb,
      rssAfterMb,
      workerCpuShare: workerCpu / (wallMs / 1000),
      providerRequests: server.requests() - requestsBefore,
      providerMaxInFlight: server.maxInFlight(),
    };
    log(
      `  ${result.completed} of ${count} tasks in ${result.wallS.toFixed(2)} s = ${result.tasksPerS.toFixed(0)} tasks/s` +
        ` (submitted in ${submitS.toFixed(2)} s); ${result.failed} failed`,
    );
    log(
      `  ${result.streamChunks} stream events, ${result.tokensDelivered} of ${expected} tokens delivered` +
        ` (${tasksShort} task(s) short); fake server: ${result.providerRequests} requests, max ${result.providerMaxInFlight} at once`,
    );
    log(
      `  worker RSS idle ${rssIdleMb.toFixed(1)} MB, peak ${rssPeakMb.toFixed(1)} MB, after ${rssAfterMb.toFixed(1)} MB;` +
        ` worker CPU ${(100 * result.workerCpuShare).toFixed(0)}% of one core`,
    );
    if (llmProblems(result).length && worker.stderrTail()) log(`  worker stderr: ${worker.stderrTail()}`);
    return result;
  } finally {
    sampler?.stop();
    await events?.close().catch(() => undefined);
    await app.close().catch(() => undefined);
    if (worker) await stopChild(worker.process, STOP_GRACE_MS);
    await server?.stop();
  }
}
