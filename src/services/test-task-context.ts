import type { ModelUsage, FileTouch } from '../core/task.js';
import type { TaskContext, TaskLogger } from '../core/task-context.js';
import type { ProviderSettings } from '../providers/types.js';

export interface ProgressCall {
  percent: number;
  message: string | undefined;
}

export interface LogCall {
  level: keyof TaskLogger;
  obj: unknown;
  msg: string | undefined;
}

export interface TestTaskContext {
  task: TaskContext;
  controller: AbortController;
  progress: ProgressCall[];
  streamed: string[];
  logs: LogCall[];
  files: { path: string; operation: FileTouch['operation']; bytes: number | undefined }[];
  usages: Partial<ModelUsage>[];
  timings: Map<string, number>;
}

export interface TestTaskOptions {
  taskName?: string;
  mode?: string;
  service?: string;
  /** Called after each progress call is recorded, e.g. to abort half-way through. */
  onProgress?: (call: ProgressCall, controller: AbortController) => void;
  /** Provider settings, as a worker passes its own; without, llm() reads the environment. */
  providers?: ProviderSettings | undefined;
}

/**
 * A TaskContext for service tests that records what the service reports. The signal comes from a
 * real AbortController, so aborting behaves as it does in a worker.
 */
export function createTestTaskContext(options: TestTaskOptions = {}): TestTaskContext {
  const controller = new AbortController();
  const progress: ProgressCall[] = [];
  const streamed: string[] = [];
  const logs: LogCall[] = [];
  const files: TestTaskContext['files'] = [];
  const usages: Partial<ModelUsage>[] = [];
  const timings = new Map<string, number>();
  const logAt =
    (level: keyof TaskLogger) =>
    (obj: unknown, msg?: string): void => {
      logs.push({ level, obj, msg });
    };
  const addTiming = (name: string, ms: number): void => {
    timings.set(name, (timings.get(name) ?? 0) + ms);
  };

  const task: TaskContext = {
    taskId: 'test-task',
    taskName: options.taskName ?? 'test',
    userId: 'test-user',
    step: 0,
    mode: options.mode ?? 'test',
    service: options.service ?? 'test',
    attempt: 1,
    signal: controller.signal,
    progress(percent, message) {
      const call = { percent, message };
      progress.push(call);
      options.onProgress?.(call, controller);
    },
    stream(delta) {
      streamed.push(delta);
    },
    log: { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') },
    resources: {
      file(path, operation, bytes) {
        files.push({ path, operation, bytes });
      },
      modelUsage(usage) {
        usages.push(usage);
      },
      timing: addTiming,
      async time(name, fn) {
        const started = performance.now();
        try {
          return await fn();
        } finally {
          addTiming(name, performance.now() - started);
        }
      },
    },
    // Unit tests of services run alone: every slot is granted at once.
    limits: { acquire: async () => () => undefined },
    ...(options.providers ? { providers: options.providers } : {}),
  };
  return { task, controller, progress, streamed, logs, files, usages, timings };
}
