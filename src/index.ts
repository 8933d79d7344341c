/** The public API of aiecs. */
export { createApp, AiecsApp, settleRecord } from './engine/app.js';
export type { AppOptions, TaskHandle, TaskSubmitter, WaitOptions, CancelResult } from './engine/app.js';
export { AiecsWorker, startWorker } from './worker/worker.js';
export type { WorkerOptions } from './worker/worker.js';
export { registerService, registry, ServiceRegistry } from './registry/registry.js';
export type { ServiceImpl, ServiceOptions, ServiceDescription } from './registry/registry.js';
export type { TaskContext, TaskLogger, ResourceTracker, ServiceMethod } from './core/task-context.js';
export { loadServiceModules } from './registry/service-loader.js';
export { registerBuiltinServices } from './services/builtin.js';
export { loadConfig, DEFAULT_BROKER_URL } from './core/config.js';
export type { AiecsConfig, WorkerSettings, PoolKind } from './core/config.js';
export { openStore } from './engine/open-store.js';
export { parseBrokerUrl } from './engine/store.js';
export type { Store, StoreKind, WorkerHeartbeat } from './engine/store.js';
export type { ProgressPayload, ResultEnvelope } from './engine/task-record.js';
export { TaskStatus, FAST_QUEUE, HEAVY_QUEUE } from './core/task.js';
export { taskRequestSchema, submitOptionsSchema } from './core/submission.js';
export type {
  TaskRequest,
  SubmitOptions,
  TaskRecord,
  TrackedResources,
  ModelUsage,
  QueueKind,
} from './core/task.js';
export type { WireTaskRequest, WireSubmitOptions } from './core/submission.js';
export * from './core/errors.js';
export { StoreLockedError } from './engine/store-embedded.js';
export * from './providers/index.js';
export { METRIC, METRIC_NAMES, enableMetrics, disableMetrics, Metrics } from './core/metrics.js';
export type { ClusterFigures, ExecutionStatus } from './core/metrics.js';
export type { ChatAnswer } from './services/llm-chat.js';
export type { GeneratedDocument, DocumentSection } from './services/doc-generator.js';
export type { LlmAnalysis, LlmSentimentLabel } from './services/text-analyzer.js';
// The gateway (fastify, socket.io, jose) is its own entry point, `aiecs/gateway`, so that a
// services module importing 'aiecs' does not load it into every worker.
