import type { ServiceRegistry } from '../registry/registry.js';
import type { ServiceMethod } from '../core/task-context.js';

/** What a built-in module exports: a class (one instance per task) or a plain object. */
type Implementation = object | (new () => object);

export interface BuiltinService {
  mode: string;
  service: string;
  /** The implementation's task names, so listings and lookups need not load it. */
  methods: readonly string[];
  description: string;
  load: () => Promise<Implementation>;
}

/**
 * The built-in services. Each implementation is imported on its first task, not when a worker,
 * child process or gateway starts: most processes never run most of them, and their code and
 * libraries cost memory in every one (builtin.test.ts checks the method names against the code).
 */
export const BUILTIN_SERVICES: readonly BuiltinService[] = [
  {
    mode: 'chat',
    service: 'text_analyzer',
    methods: ['analyze_text', 'detect_language', 'moderate_content'],
    description:
      'Text analysis: sentiment (AFINN-165), language, keywords, readability, moderation; with context.model, an LLM summary and sentiment',
    load: async () => (await import('./text-analyzer.js')).TextAnalyzer,
  },
  {
    mode: 'data',
    service: 'data_analyzer',
    methods: ['analyze_dataset'],
    description: 'CSV profiling: column types and statistics, Pearson correlations, Markdown report',
    load: async () => (await import('./data-analyzer.js')).DataAnalyzer,
  },
  {
    mode: 'code',
    service: 'code_reviewer',
    methods: ['review_code'],
    description: 'Strict TypeScript type-check in memory plus per-function cyclomatic complexity and nesting',
    load: async () => (await import('./code-reviewer.js')).CodeReviewer,
  },
  {
    mode: 'util',
    service: 'sleeper',
    methods: ['sleep'],
    description: 'sleeps input_data.seconds (0–3600), reporting progress each second; stops at once on abort',
    load: async () => (await import('./sleeper.js')).sleeper,
  },
  {
    mode: 'chat',
    service: 'llm_chat',
    methods: ['chat'],
    description:
      'Chat with an LLM (OpenAI, xAI, Vertex AI): messages or a prompt in, the answer out, tokens streamed',
    load: async () => (await import('./llm-chat.js')).LlmChat,
  },
  {
    mode: 'document',
    service: 'doc_generator',
    methods: ['generate_document'],
    description:
      'Writes a Markdown document with an LLM: outline, then each section (streamed), references when asked',
    load: async () => (await import('./doc-generator.js')).DocGenerator,
  },
];

/**
 * A stand-in with the service's task names whose methods import the implementation on the first
 * call. Once loaded, a call goes straight to the method, so a method that returns a plain value
 * (or throws) still does so synchronously; a class still gets a fresh instance per task.
 */
export function lazyService(
  methods: readonly string[],
  load: () => Promise<Implementation>,
): Record<string, ServiceMethod> {
  let impl: Implementation | undefined;
  let loading: Promise<Implementation> | undefined;
  const stub: Record<string, ServiceMethod> = {};
  for (const name of methods) {
    const run: ServiceMethod = (input, context, task) => {
      const target = (typeof impl === 'function' ? new (impl as new () => object)() : impl) as Record<
        string,
        ServiceMethod
      >;
      return target[name]!.call(target, input, context, task);
    };
    stub[name] = (input, context, task) => {
      if (impl) return run(input, context, task);
      loading ??= load().then((loaded) => (impl = loaded));
      return loading.then(() => run(input, context, task));
    };
  }
  return stub;
}

/** The source a registry records for the built-in services; process-pool children register them too. */
export const BUILTIN_SOURCE = 'aiecs/services';

/**
 * Registers the built-in services in `registry`: the offline chat/text_analyzer (with an LLM
 * mode), data/data_analyzer and code/code_reviewer, util/sleeper (for trying out limits and
 * cancel), and the LLM services chat/llm_chat and document/doc_generator (they need a provider key
 * to run). Safe to call more than once: registering again replaces the entries.
 */
export function registerBuiltinServices(registry: ServiceRegistry): ServiceRegistry {
  for (const { mode, service, methods, description, load } of BUILTIN_SERVICES) {
    registry.register(mode, service, lazyService(methods, load), { description });
  }
  registry.addSource(BUILTIN_SOURCE);
  return registry;
}
