import { registerCodeReviewer } from './code-reviewer.js';
import { registerDataAnalyzer } from './data-analyzer.js';
import { registerTextAnalyzer } from './text-analyzer.js';

/**
 * Registers the built-in offline services: chat/text_analyzer, data/data_analyzer and
 * code/code_reviewer. Safe to call more than once: registering again replaces the entries.
 */
export function registerBuiltinServices(): void {
  registerTextAnalyzer();
  registerDataAnalyzer();
  registerCodeReviewer();
}
