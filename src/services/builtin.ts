import { registerCodeReviewer } from './code-reviewer.js';
import { registerDataAnalyzer } from './data-analyzer.js';
import { registerDocGenerator } from './doc-generator.js';
import { registerLlmChat } from './llm-chat.js';
import { registerSleeper } from './sleeper.js';
import { registerTextAnalyzer } from './text-analyzer.js';

/**
 * Registers the built-in services: the offline chat/text_analyzer (with an LLM mode),
 * data/data_analyzer and code/code_reviewer, util/sleeper (for trying out limits and cancel), and
 * the LLM services chat/llm_chat and document/doc_generator (they need a provider key to run).
 * Safe to call more than once: registering again replaces the entries.
 */
export function registerBuiltinServices(): void {
  registerTextAnalyzer();
  registerDataAnalyzer();
  registerCodeReviewer();
  registerSleeper();
  registerLlmChat();
  registerDocGenerator();
}
