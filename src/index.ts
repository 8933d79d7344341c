/** The public API of aiecs. */
export { createApp, AiecsApp, settleRecord } from './engine/app.js';
export type {
  AppOptions,
  TaskHandle,
  TaskSubmitter,
  WaitOptions,
  CancelResult,
  WireSubmission,
} from './engine/app.js';
export { chain, chord, group, Signature, CanvasPart } from './engine/workflow-canvas.js';
export type { WorkflowHandle, WorkflowResult, WorkflowCancelResult } from './engine/workflow-handle.js';
export type { GroupHandle, GroupMember, GroupProgress } from './engine/workflow-group.js';
export type { WorkflowIds, WorkflowLeaf, WorkflowNode, WorkflowRead, WorkflowTree } from './core/workflow.js';
export { AiecsWorker, startWorker } from './worker/worker.js';
export type { WorkerOptions } from './worker/worker.js';
// What a services module uses; a process-pool child gets only this (see service-api.ts).
export * from './service-api.js';
export { loadServiceModules } from './registry/service-loader.js';
export { loadConfig, DEFAULT_BROKER_URL } from './core/config.js';
export type { AiecsConfig, WorkerSettings, PoolKind } from './core/config.js';
export { openStore } from './engine/open-store.js';
export { parseBrokerUrl } from './engine/store.js';
export type { Store, StoreKind, WorkerHeartbeat } from './engine/store.js';
export type { ProgressPayload, ResultEnvelope } from './engine/task-record.js';
export { taskRequestSchema, submitOptionsSchema } from './core/submission.js';
export type { WireTaskRequest, WireSubmitOptions } from './core/submission.js';
export { StoreLockedError } from './engine/store-embedded.js';
export { TaskHistory } from './engine/history/task-history.js';
export type {
  HistoryEntry,
  HistoryKind,
  HistoryListOptions,
  HistoryPage,
  TimeBound,
} from './engine/history/task-history.js';
export { Schedules } from './engine/schedules.js';
export { TemplateRegistry, parseTemplateRef } from './core/template-registry.js';
export type { TemplateDescription, JsonSchema } from './core/template-registry.js';
export { loadTemplateFile } from './core/template-file.js';
export type { TemplateSubmitter, TemplateSubmitOptions } from './engine/template-submitter.js';
export type { ScheduleDefinition, ScheduleInfo, ScheduleSpec, SyncResult } from './engine/schedules.js';
export { METRIC, METRIC_NAMES, enableMetrics, disableMetrics, Metrics } from './core/metrics.js';
export type { ClusterFigures, ExecutionStatus } from './core/metrics.js';
// The gateway (fastify, socket.io, jose) is its own entry point, `aiecs/gateway`, and so are the
// built-in services, `aiecs/services`: a services module importing 'aiecs' loads neither.
