import { ValidationError } from '../core/errors.js';
import type { FieldIssue } from '../core/errors.js';
import type { ProviderName, ProviderSettings } from './types.js';
import { PROVIDER_NAMES } from './types.js';

export interface ModelSelection {
  provider: ProviderName;
  model: string;
  /** What decided the provider: named by the task, told from the model, or the configured default. */
  reason: 'provider' | 'model' | 'default';
}

/** Spellings the original package and its front ends use, folded to lower-case letters and digits. */
const ALIASES: Record<string, ProviderName> = {
  openai: 'openai',
  gpt: 'openai',
  xai: 'xai',
  grok: 'xai',
  vertex: 'vertex',
  vertexai: 'vertex',
  googlevertex: 'vertex',
  googlevertexai: 'vertex',
  google: 'vertex',
  gemini: 'vertex',
};

/** `OpenAI`, `xAI`, `Grok`, `Vertex AI`, `vertex_ai`, … → the provider; undefined when unknown. */
export function normalizeProviderName(raw: string): ProviderName | undefined {
  return ALIASES[raw.toLowerCase().replace(/[^a-z0-9]/g, '')];
}

/** gpt-* / o1* / o3* / o4* / chatgpt-* → openai, grok-* → xai, gemini-* → vertex. */
export function providerForModel(model: string): ProviderName | undefined {
  const m = model.trim().toLowerCase();
  if (/^(gpt-|chatgpt-|o[134](?:$|-))/.test(m)) return 'openai';
  if (m.startsWith('grok-') || m === 'grok') return 'xai';
  if (m.startsWith('gemini-')) return 'vertex';
  return undefined;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

interface Preference {
  provider?: { value: unknown; field: string };
  model?: { value: unknown; field: string };
}

/** `context.provider` / `context.model`, else the original package's `context.metadata.aiPreference`. */
function preference(context: Record<string, unknown>): Preference {
  const ai = record(record(context.metadata)?.aiPreference);
  const pick = (key: 'provider' | 'model') => {
    if (context[key] !== undefined && context[key] !== null)
      return { value: context[key], field: `context.${key}` };
    if (ai?.[key] !== undefined && ai[key] !== null)
      return { value: ai[key], field: `context.metadata.aiPreference.${key}` };
    return undefined;
  };
  const out: Preference = {};
  const provider = pick('provider');
  const model = pick('model');
  if (provider) out.provider = provider;
  if (model) out.model = model;
  return out;
}

/** Whether the task asks for a model at all (a provider or a model named in its context). */
export function namesModel(context: Record<string, unknown>): boolean {
  const p = preference(context);
  return p.provider !== undefined || p.model !== undefined;
}

/**
 * The provider and model for a task: the provider it names (`context.provider` or
 * `context.metadata.aiPreference.provider`), else the one its model belongs to, else the
 * configured default; the model it names, else that provider's default model.
 */
export function selectModel(
  context: Record<string, unknown>,
  settings: Pick<ProviderSettings, 'defaultProvider' | 'defaultModels'>,
): ModelSelection {
  const pref = preference(context);
  const issues: FieldIssue[] = [];
  let named: ProviderName | undefined;
  if (pref.provider) {
    const raw = pref.provider.value;
    named = typeof raw === 'string' ? normalizeProviderName(raw) : undefined;
    if (!named)
      issues.push({
        field: pref.provider.field,
        message: `must be one of ${PROVIDER_NAMES.join(', ')}; got ${JSON.stringify(raw)}`,
      });
  }
  let model: string | undefined;
  if (pref.model) {
    const raw = pref.model.value;
    if (typeof raw === 'string' && raw.trim()) model = raw.trim();
    else issues.push({ field: pref.model.field, message: 'must be a non-empty string' });
  }
  if (issues.length) throw new ValidationError(issues);

  if (named) return { provider: named, model: model ?? settings.defaultModels[named], reason: 'provider' };
  if (model) {
    const inferred = providerForModel(model);
    // A model no prefix rule knows (a local model behind OPENAI_BASE_URL, say) goes to the default.
    return inferred
      ? { provider: inferred, model, reason: 'model' }
      : { provider: settings.defaultProvider, model, reason: 'default' };
  }
  const provider = settings.defaultProvider;
  return { provider, model: settings.defaultModels[provider], reason: 'default' };
}
