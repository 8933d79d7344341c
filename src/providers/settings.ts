import { ProviderNotConfiguredError } from './errors.js';
import type { ModelPrice } from './prices.js';
import { priceTable } from './prices.js';
import type {
  ChatOptions,
  ChatRequest,
  ChatResult,
  LlmProvider,
  ProviderName,
  ProviderSettings,
} from './types.js';
import { OPENAI_BASE_URL } from './types.js';

/**
 * Provider settings are passed in: a worker hands its config's to every task (TaskContext
 * `providers`), a process-pool child gets them from its parent. What is kept here is derived only:
 * the settings read from this process's environment, for a task context without any, and the
 * clients, created on first use per distinct settings and kept for the life of the process.
 */
let fromEnv: { key: string; settings: ProviderSettings } | undefined;
const providers = new Map<string, LlmProvider>();
const prices = new WeakMap<ProviderSettings, Map<string, ModelPrice>>();

/** Forget the settings read from the environment and the created clients (tests). */
export function resetProviders(): void {
  fromEnv = undefined;
  providers.clear();
}

const RELEVANT = /^(AIECS_|OPENAI_|XAI_|GROK_|VERTEX_|GOOGLE_)/;

/**
 * The config schema, for settings read from the environment. A process-pool child runs under the
 * aiecs-pool-child condition and is handed its worker's settings (child-main.ts): it never reads
 * them here, so it never loads the schema and zod (about 8 MB of its RSS).
 */
const config = process.execArgv.includes('--conditions=aiecs-pool-child')
  ? undefined
  : await import('../core/config.js');

/** `loadConfig(process.env).providers`, re-read when the environment changes. */
export function providerSettings(): ProviderSettings {
  const key = Object.keys(process.env)
    .filter((k) => RELEVANT.test(k))
    .sort()
    .map((k) => `${k}=${process.env[k]}`)
    .join('\n');
  if (!config)
    throw new Error('a process-pool child is handed its provider settings by its worker; none came');
  if (fromEnv?.key !== key) fromEnv = { key, settings: config.loadConfig(process.env).providers };
  return fromEnv.settings;
}

/** The built-in price table with AIECS_MODEL_PRICES merged over it. */
export function pricesFor(settings: ProviderSettings): Map<string, ModelPrice> {
  let table = prices.get(settings);
  if (!table) prices.set(settings, (table = priceTable(settings.modelPrices)));
  return table;
}

/** Whether `name` has what it needs (a key; for Vertex a project). */
export function isConfigured(name: ProviderName, settings: ProviderSettings = providerSettings()): boolean {
  if (name === 'openai') return Boolean(settings.openaiApiKey);
  if (name === 'xai') return Boolean(settings.xaiApiKey);
  return Boolean(settings.vertexProjectId);
}

/**
 * A provider whose SDK loads on its first request: the SDKs (and google-auth-library) are large,
 * and a worker that never calls a model should not carry them.
 */
class LazyProvider implements LlmProvider {
  private loading: Promise<LlmProvider> | undefined;
  constructor(
    readonly name: ProviderName,
    private readonly load: () => Promise<LlmProvider>,
  ) {}
  async chat(request: ChatRequest, options: ChatOptions): Promise<ChatResult> {
    this.loading ??= this.load();
    return (await this.loading).chat(request, options);
  }
}

function create(name: ProviderName, s: ProviderSettings): LlmProvider {
  switch (name) {
    case 'openai':
    case 'xai':
      return new LazyProvider(name, async () => {
        const { OpenAiProvider } = await import('./openai-provider.js');
        return new OpenAiProvider({
          name,
          apiKey: (name === 'openai' ? s.openaiApiKey : s.xaiApiKey)!,
          baseURL: name === 'openai' ? (s.openaiBaseUrl ?? OPENAI_BASE_URL) : s.xaiBaseUrl,
          timeoutMs: s.timeoutMs,
        });
      });
    case 'vertex':
      return new LazyProvider(name, async () => {
        const { VertexProvider } = await import('./vertex-provider.js');
        return new VertexProvider({
          project: s.vertexProjectId!,
          location: s.vertexLocation,
          ...(s.vertexBaseUrl ? { baseUrl: s.vertexBaseUrl } : {}),
          ...(s.googleCredentials ? { credentialsFile: s.googleCredentials } : {}),
        });
      });
  }
}

/** The client for `name`, created on first use; throws ProviderNotConfiguredError without its key. */
export function getProvider(
  name: ProviderName,
  settings: ProviderSettings = providerSettings(),
): LlmProvider {
  if (!isConfigured(name, settings)) throw new ProviderNotConfiguredError(name);
  const key = JSON.stringify([
    name,
    settings.openaiApiKey,
    settings.openaiBaseUrl,
    settings.xaiApiKey,
    settings.xaiBaseUrl,
    settings.vertexProjectId,
    settings.vertexLocation,
    settings.vertexBaseUrl,
    settings.googleCredentials,
    settings.timeoutMs,
  ]);
  let provider = providers.get(key);
  if (!provider) providers.set(key, (provider = create(name, settings)));
  return provider;
}
