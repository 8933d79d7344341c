/**
 * Entry point of a process-pool child: loads the services, then runs one task at a time for its
 * parent worker. It exits when the parent goes away, so a killed worker leaves no child behind
 * to finish a task a second time.
 */
import { forwardProviderFigures } from '../core/metrics.js';
import type { ProviderSettings } from '../providers/types.js';
import { ServiceRegistry } from '../registry/registry.js';
import { loadServiceModules } from '../registry/service-loader.js';
import type { SharedLimits, TaskLogger } from '../core/task-context.js';
import { BUILTIN_SOURCE, registerBuiltinServices } from '../services/builtin.js';
import type { ChildMessage, LogLevel, ParentMessage } from './child-protocol.js';
import { CHILD_SERVICES_ENV } from './child-protocol.js';
import { failureInfo, runService, type InProcessCall, type WorkerServices } from './execute-service.js';

function send(message: ChildMessage): void {
  if (process.connected) process.send?.(message);
}

process.on('disconnect', () => process.exit(0));
forwardProviderFigures((figures) => send({ type: 'figures', figures }));

/** This child's services (the same sources as its parent worker's registry) and provider settings. */
const services: WorkerServices = { registry: new ServiceRegistry() };
let current: { runId: number; call: InProcessCall } | undefined;
let initialised!: (providers: ProviderSettings | undefined) => void;
const init = new Promise<ProviderSettings | undefined>((resolve) => (initialised = resolve));
let nextReqId = 1;
const pendingAcquires = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();

/** Shared limits live in the parent, which owns the store connection: ask it over IPC. */
function ipcLimits(runId: number): SharedLimits {
  return {
    acquire(key, spec) {
      const reqId = nextReqId++;
      return new Promise<() => void>((resolve, reject) => {
        pendingAcquires.set(reqId, {
          resolve: () => {
            let released = false;
            resolve(() => {
              if (released) return;
              released = true;
              send({ type: 'release', runId, reqId });
            });
          },
          reject,
        });
        send({ type: 'acquire', runId, reqId, key, spec });
      });
    },
  };
}

function ipcLogger(runId: number): TaskLogger {
  const at =
    (level: LogLevel) =>
    (obj: unknown, msg?: string): void => {
      const entry: ChildMessage = { type: 'log', runId, level, obj: typeof obj === 'string' ? {} : obj };
      const text = typeof obj === 'string' ? obj : msg;
      if (text !== undefined) entry.msg = text;
      send(entry);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function run(message: Extract<ParentMessage, { type: 'run' }>): Promise<void> {
  const { runId } = message;
  const call = runService(
    services,
    message.data,
    message.attempt,
    {
      progress: (percent, text) => send({ type: 'progress', runId, percent, message: text }),
      stream: (delta) => send({ type: 'stream', runId, delta }),
    },
    ipcLogger(runId),
    ipcLimits(runId),
  );
  current = { runId, call };
  const outcome = await call.outcome;
  current = undefined;
  send({ type: 'done', runId, outcome, rssBytes: process.memoryUsage().rss });
}

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'init':
      initialised(message.providers);
      break;
    case 'run':
      void run(message);
      break;
    case 'abort':
      if (current?.runId === message.runId) current.call.abort(new Error(message.reason));
      break;
    case 'acquired':
      pendingAcquires.get(message.reqId)?.resolve();
      pendingAcquires.delete(message.reqId);
      break;
    case 'acquire_failed': {
      const error = Object.assign(new Error(message.error.message), {
        name: message.error.type,
        retryable: message.error.retryable,
      });
      pendingAcquires.get(message.reqId)?.reject(error);
      pendingAcquires.delete(message.reqId);
      break;
    }
    case 'exit':
      process.exit(0);
  }
});

// A stray rejection in a service must not take the child (and its task) down.
process.on('unhandledRejection', (reason) => {
  if (current)
    send({
      type: 'log',
      runId: current.runId,
      level: 'warn',
      obj: { err: String(reason) },
      msg: 'unhandled rejection in service',
    });
});
process.on('uncaughtException', (error) => {
  send({ type: 'fatal', error: failureInfo(error) });
  process.exit(1);
});

try {
  // The parent's first message, before any service module loads.
  const providers = await init;
  if (providers) services.providers = providers;
  for (const source of JSON.parse(process.env[CHILD_SERVICES_ENV] ?? '[]') as string[]) {
    if (source === BUILTIN_SOURCE) registerBuiltinServices(services.registry);
    else await loadServiceModules([source], services.registry);
  }
  send({ type: 'ready', pid: process.pid });
} catch (error) {
  send({ type: 'fatal', error: failureInfo(error) });
  process.exit(1);
}
