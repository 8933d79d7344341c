import { registerCodeReviewer } from './code-reviewer.js';
import { registerDataAnalyzer } from './data-analyzer.js';
import { registerSleeper } from './sleeper.js';
import { registerTextAnalyzer } from './text-analyzer.js';

/**
 * Registers the built-in offline services: chat/text_analyzer, data/data_analyzer and
 * code/code_reviewer, and util/sleeper (for trying out limits and cancel). Safe to call more than once: registering again replaces the entries.
 */
export function registerBuiltinServices(): void {
  registerTextAnalyzer();
  registerDataAnalyzer();
  registerCodeReviewer();
  registerSleeper();
}
