import { hostname } from 'node:os';
import { Worker as Thread } from 'node:worker_threads';
import type { Logger } from '../core/logger.js';
import type { LiveRun, LiveRuns } from './execute-service.js';

export interface LoopWatchOptions {
  /** A loop blocked at least this long is reported (ms). */
  reportMs: number;
  /** Kill the process once its loop has been blocked this long (s); 0 = never. */
  exitS: number;
  logger: Logger;
  /** The worker's id, for the watchdog thread's own log lines. */
  workerId: string;
}

/** Task ids named in a report: the rest are counted. */
const NAMES = 20;
/** The watchdog's table of running tasks: slots of a length and up to 128 bytes of UTF-8. */
const SLOTS = 32;
const SLOT_BYTES = 132;
/** stamp (8 bytes: the loop's last tick), tasks beyond the slots (4), padding (4). */
const HEADER_BYTES = 16;
const OVERFLOW = 2;
/** A run counted beyond the slots. */
const UNSLOTTED = -2;

const clock = () => performance.timeOrigin + performance.now();

/**
 * Watches the worker's event loop, where the fast tasks run, for a blocked loop: a task busy in
 * CPU work (a busy loop) stops every other task, lock renewal, heartbeats and cancel.
 *
 * A timer that fires late tells, afterwards, how long the loop was blocked; the report names the
 * fast tasks that were in the loop then. A loop that never comes back can only be seen from
 * another thread: with `exitS` set, a watchdog thread (about 10 MB) reads the loop's last tick
 * and the running tasks from shared memory, reports the block while it lasts, and kills the
 * process past `exitS`, so that its tasks' locks expire and other workers run them again.
 */
export class LoopWatch implements LiveRuns {
  private readonly live = new Set<LiveRun>();
  /** Tasks that entered since the last tick: a task that blocks at once is gone by the next. */
  private readonly recent: string[] = [];
  private lastLive: string[] = [];
  private readonly intervalMs: number;
  private lastTick = clock();
  private timer: NodeJS.Timeout | undefined;
  private thread: Thread | undefined;
  private shared: SharedTable | undefined;

  constructor(private readonly options: LoopWatchOptions) {
    this.intervalMs = Math.max(10, Math.min(250, Math.floor(options.reportMs / 2)));
  }

  /**
   * With the watchdog thread the loop stamps its tick always (the thread reads a missing stamp as a
   * blocked loop); without it the timer runs only while tasks are in the loop, since a block is
   * reported for the tasks it held up: an idle worker has no timer waking it (was 4 a second).
   */
  start(): void {
    if (this.options.exitS > 0) {
      this.startTimer();
      this.startThread();
    }
  }

  private startTimer(): void {
    if (this.timer) return;
    this.lastTick = clock();
    this.timer = setInterval(() => this.tick(), this.intervalMs).unref();
  }

  enter(run: LiveRun): void {
    this.startTimer();
    this.live.add(run);
    if (this.recent.length < NAMES) this.recent.push(run.taskId);
    this.shared?.enter(run);
  }

  leave(run: LiveRun): void {
    this.live.delete(run);
    this.shared?.leave(run);
  }

  private tick(): void {
    const now = clock();
    const late = Math.round(now - this.lastTick - this.intervalMs);
    if (late >= this.options.reportMs) {
      const tasks = [...new Set([...this.lastLive, ...this.recent, ...this.liveNames()])];
      this.options.logger.error(
        { blocked_ms: late, tasks: tasks.slice(0, NAMES), more_tasks: Math.max(0, tasks.length - NAMES) },
        `event loop was blocked for ${(late / 1000).toFixed(1)} s: no task could progress, renew its lock or be ` +
          'cancelled meanwhile; the fast tasks in the loop then are named (CPU-bound work belongs on heavy_tasks)',
      );
    }
    this.lastTick = now;
    this.lastLive = this.liveNames();
    this.recent.length = 0;
    this.shared?.stamp(now);
    // This tick has seen the last task leave (and reported a block it caused): nothing to watch.
    if (this.live.size === 0 && !this.thread) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private liveNames(): string[] {
    const names: string[] = [];
    for (const run of this.live) {
      if (names.length === NAMES) break;
      names.push(run.taskId);
    }
    return names;
  }

  private startThread(): void {
    const { logger, reportMs, exitS, workerId } = this.options;
    const shared = new SharedTable();
    for (const run of this.live) shared.enter(run);
    shared.stamp(clock());
    this.shared = shared;
    const thread = new Thread(WATCHDOG, {
      eval: true,
      workerData: {
        sab: shared.buffer,
        slots: SLOTS,
        slotBytes: SLOT_BYTES,
        headerBytes: HEADER_BYTES,
        overflow: OVERFLOW,
        reportMs,
        exitMs: exitS * 1000,
        checkMs: this.intervalMs,
        // Written straight to stderr (fd 2): the main thread, which owns the logger, is blocked.
        report: logger.isLevelEnabled('error'),
        fatal: logger.isLevelEnabled('fatal'),
        base: { pid: process.pid, hostname: hostname(), name: 'aiecs', worker: workerId },
      },
      stdout: false,
      stderr: false,
    });
    thread.on('error', (error) =>
      logger.warn(
        { err: error.message },
        'event loop watchdog stopped; a blocked loop will not end the process',
      ),
    );
    thread.unref();
    this.thread = thread;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.thread?.terminate();
    this.thread = undefined;
  }
}

/** The running tasks in shared memory, where the watchdog reads them while the loop is blocked. */
class SharedTable {
  readonly buffer = new SharedArrayBuffer(HEADER_BYTES + SLOTS * SLOT_BYTES);
  private readonly stampView = new BigInt64Array(this.buffer, 0, 1);
  private readonly ints = new Int32Array(this.buffer);
  private readonly bytes = new Uint8Array(this.buffer);
  private readonly encoder = new TextEncoder();
  private readonly free = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);

  stamp(ms: number): void {
    Atomics.store(this.stampView, 0, BigInt(Math.round(ms)));
  }

  enter(run: LiveRun): void {
    const slot = this.free.pop();
    if (slot === undefined) {
      run.liveSlot = UNSLOTTED;
      Atomics.add(this.ints, OVERFLOW, 1);
      return;
    }
    run.liveSlot = slot;
    const at = HEADER_BYTES + slot * SLOT_BYTES;
    const { written } = this.encoder.encodeInto(run.taskId, this.bytes.subarray(at + 4, at + SLOT_BYTES));
    // The length last: the watchdog reads a slot only once its length says it is whole.
    Atomics.store(this.ints, at / 4, written);
  }

  leave(run: LiveRun): void {
    const slot = run.liveSlot;
    run.liveSlot = -1;
    if (slot === UNSLOTTED) Atomics.sub(this.ints, OVERFLOW, 1);
    if (slot < 0) return;
    Atomics.store(this.ints, (HEADER_BYTES + slot * SLOT_BYTES) / 4, 0);
    this.free.push(slot);
  }
}

/** The watchdog thread (CommonJS, evaluated): its own event loop goes on while the main one is blocked. */
const WATCHDOG = `
const { workerData: w } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const stamp = new BigInt64Array(w.sab, 0, 1);
const ints = new Int32Array(w.sab);
const bytes = new Uint8Array(w.sab);
const decoder = new TextDecoder();
let reported = false;
function tasks() {
  const names = [];
  for (let i = 0; i < w.slots; i++) {
    const at = w.headerBytes + i * w.slotBytes;
    const n = Atomics.load(ints, at / 4);
    if (n > 0) names.push(decoder.decode(bytes.slice(at + 4, at + 4 + n)));
  }
  return { tasks: names, more_tasks: Atomics.load(ints, w.overflow) };
}
function line(level, fields, msg) {
  writeSync(2, JSON.stringify({ level, time: Date.now(), ...w.base, ...fields, msg }) + '\\n');
}
setInterval(() => {
  const blocked = Math.round(performance.timeOrigin + performance.now() - Number(Atomics.load(stamp, 0)));
  if (blocked < w.reportMs && (w.exitMs === 0 || blocked < w.exitMs)) {
    reported = false;
    return;
  }
  if (!reported && w.report) {
    reported = true;
    line(50, { blocked_ms: blocked, ...tasks() },
      'event loop blocked for ' + (blocked / 1000).toFixed(1) + ' s so far; the fast tasks in the loop are named');
  }
  if (w.exitMs > 0 && blocked >= w.exitMs) {
    if (w.fatal)
      line(60, { blocked_ms: blocked, ...tasks() },
        'event loop blocked past AIECS_BLOCKED_LOOP_EXIT_S: killing this worker process so that its tasks run again elsewhere');
    // SIGKILL: a blocked loop runs no signal handler, so nothing gentler would end it.
    process.kill(process.pid, 'SIGKILL');
  }
}, w.checkMs);
`;
