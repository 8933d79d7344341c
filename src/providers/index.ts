/** AI providers: OpenAI, xAI and Vertex AI behind one call path for services. */
export { llm } from './client.js';
export type { Llm, LlmCallOptions, LlmResult } from './client.js';
export { resetProviders, providerSettings, getProvider, isConfigured } from './settings.js';
export { describeProviders, logProviderStatus } from './status.js';
export type { ProviderStatus } from './status.js';
export { selectModel, providerForModel, normalizeProviderName, namesModel } from './select.js';
export type { ModelSelection } from './select.js';
export { BUILTIN_PRICES, priceTable, findPrice, costUsd } from './prices.js';
export type { ModelPrice } from './prices.js';
export { parseRetryAfter, backoffMs, withRetries } from './retry.js';
export type { RetryPolicy } from './retry.js';
export {
  ProviderNotConfiguredError,
  ProviderError,
  ProviderUnavailableError,
  PROVIDER_VARIABLES,
} from './errors.js';
export { parseJsonLoose } from './json.js';
export { PROVIDER_NAMES } from './types.js';
export type {
  ProviderName,
  ProviderSettings,
  ChatMessage,
  ChatRole,
  ChatRequest,
  ChatResult,
  ChatOptions,
  LlmProvider,
  TokenUsage,
} from './types.js';
