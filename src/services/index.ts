/**
 * `aiecs/services`: the built-in demo services. Registering them loads none of their code: each
 * implementation (and typescript, franc-min, sentiment or csv-parse with it) is imported on its
 * service's first task.
 */
export { BUILTIN_SERVICES, BUILTIN_SOURCE, lazyService, registerBuiltinServices } from './builtin.js';
export type { BuiltinService } from './builtin.js';
export type { ChatAnswer } from './llm-chat.js';
export type { GeneratedDocument, DocumentSection } from './doc-generator.js';
export type { LlmAnalysis, LlmSentimentLabel } from './text-analyzer.js';
