import type { AiecsConfig } from '../core/config.js';
import type { TaskLogger } from '../core/task-context.js';
import { PROVIDER_VARIABLES } from './errors.js';
import { isConfigured } from './settings.js';
import type { ProviderName, ProviderSettings } from './types.js';
import { OPENAI_BASE_URL, PROVIDER_NAMES } from './types.js';

export interface ProviderStatus {
  name: ProviderName;
  configured: boolean;
  /** The model tasks get when they name none. */
  model: string;
  default: boolean;
  /** Where requests go (never a key). */
  endpoint: string;
  /** The variable to set when not configured. */
  missing?: string;
  limits: { concurrency: number; perMinute: number };
}

function endpoint(name: ProviderName, s: ProviderSettings): string {
  if (name === 'openai') return s.openaiBaseUrl ?? OPENAI_BASE_URL;
  if (name === 'xai') return s.xaiBaseUrl;
  if (s.vertexBaseUrl) return s.vertexBaseUrl;
  return s.vertexLocation === 'global'
    ? 'https://aiplatform.googleapis.com'
    : `https://${s.vertexLocation}-aiplatform.googleapis.com`;
}

/** Which providers this configuration can use, for the worker's start-up log and `aiecs workers`. */
export function describeProviders(config: AiecsConfig | ProviderSettings): ProviderStatus[] {
  const s = 'providers' in config ? config.providers : config;
  return PROVIDER_NAMES.map((name) => {
    const status: ProviderStatus = {
      name,
      configured: isConfigured(name, s),
      model: s.defaultModels[name],
      default: s.defaultProvider === name,
      endpoint: endpoint(name, s),
      limits: s.limits[name],
    };
    if (!status.configured) status.missing = PROVIDER_VARIABLES[name].variable;
    return status;
  });
}

/** One info line at worker start: which providers are usable and what each missing one needs. */
export function logProviderStatus(
  logger: Pick<TaskLogger, 'info' | 'warn'>,
  config: AiecsConfig | ProviderSettings,
): ProviderStatus[] {
  const statuses = describeProviders(config);
  const usable = statuses.filter((p) => p.configured).map((p) => `${p.name} (${p.model})`);
  const missing = statuses.filter((p) => !p.configured).map((p) => `${p.name} (set ${p.missing})`);
  const summary = `AI providers: ${usable.length ? usable.join(', ') : 'none configured'}${missing.length ? `; not configured: ${missing.join(', ')}` : ''}`;
  logger.info({ providers: statuses }, summary);
  const fallback = statuses.find((p) => p.default);
  if (fallback && !fallback.configured) {
    logger.warn(
      { provider: fallback.name, missing: fallback.missing },
      `default AI provider ${fallback.name} is not configured: tasks that name no provider or model will fail until ${fallback.missing} is set (or AIECS_DEFAULT_PROVIDER names a configured one)`,
    );
  }
  return statuses;
}
