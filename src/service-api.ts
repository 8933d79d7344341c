/**
 * What a services module needs from 'aiecs': registering services, the task context's types,
 * the errors to throw and the LLM providers. A process-pool child resolves 'aiecs' here (export
 * condition `aiecs-pool-child`), so a module's `import { registerService } from 'aiecs'` does not
 * load the engine (BullMQ, ioredis, PGlite, pg, zod, pino) into every child. The main entry
 * re-exports all of it, so the two cannot drift.
 */
export { registerService, registerTemplate, ServiceRegistry } from './registry/registry.js';
export type { TemplateDefinition, TemplateOptions } from './core/template-registry.js';
export type { ServiceImpl, ServiceOptions, ServiceDescription } from './registry/registry.js';
export type {
  TaskContext,
  TaskLogger,
  ResourceTracker,
  ServiceMethod,
  SharedLimits,
  LimitSpec,
} from './core/task-context.js';
export { TaskStatus, FAST_QUEUE, HEAVY_QUEUE } from './core/task.js';
export type {
  TaskRequest,
  SubmitOptions,
  TaskRecord,
  TrackedResources,
  ModelUsage,
  QueueKind,
  RequestContext,
} from './core/task.js';
export * from './core/errors.js';
export * from './providers/index.js';
