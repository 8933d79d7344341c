/**
 * The chat/text_analyzer service. Each analyser is a module of its own under text/ (sentiment,
 * language, keywords, readability, moderation, LLM analysis), their word tables JSON files in
 * text/data/; this module validates the input, runs them in order with progress and checkpoints,
 * and re-exports them for callers and tests.
 */
import { ValidationError } from '../core/errors.js';
import type { TaskContext } from '../core/task-context.js';
import { llm } from '../providers/client.js';
import { namesModel } from '../providers/select.js';
import { checkpoint } from './cooperative.js';
import { extractKeywords } from './text/keywords.js';
import type { Keyword } from './text/keywords.js';
import { detectLanguage } from './text/language.js';
import type { LanguageDetection, LanguageGuess } from './text/language.js';
import { askLlm } from './text/llm-analysis.js';
import type { LlmAnalysis } from './text/llm-analysis.js';
import { loadTextModels } from './text/models.js';
import { moderate } from './text/moderation.js';
import type { ModerationResult } from './text/moderation.js';
import { readability } from './text/readability.js';
import type { Readability } from './text/readability.js';
import { analyzeSentiment } from './text/sentiment.js';
import type { SentimentResult } from './text/sentiment.js';

export { extractKeywords, detectLanguage, loadTextModels, moderate, readability, analyzeSentiment };
export { parseLlmAnalysis } from './text/llm-analysis.js';
export { countSentences, countSyllables, words } from './text/tokens.js';
export type { Keyword, LanguageDetection, LanguageGuess, LlmAnalysis, ModerationResult, Readability };
export type { SentimentResult };
export type { SentimentLabel } from './text/sentiment.js';
export type { LlmSentimentLabel } from './text/llm-analysis.js';
export type { ModerationCategory } from './text/moderation.js';

export interface TextAnalysis {
  sentiment: SentimentResult;
  language: LanguageGuess;
  keywords: Keyword[];
  readability: Readability;
  stats: { characters: number; words: number; sentences: number };
  llm?: LlmAnalysis;
}

function requireText(input: Record<string, unknown>): string {
  const text = input.text;
  if (typeof text !== 'string') {
    throw new ValidationError([
      { field: 'input_data.text', message: text === undefined ? 'is required' : 'must be a string' },
    ]);
  }
  if (!text.trim()) throw new ValidationError([{ field: 'input_data.text', message: 'must not be empty' }]);
  return text;
}

/**
 * Offline text analysis: sentiment, language, keywords, readability and moderation. When the
 * context names a model or provider, analyze_text also asks that model for a summary and a
 * sentiment with reasons (`llm`).
 */
export class TextAnalyzer {
  async analyze_text(
    input: Record<string, unknown>,
    context: Record<string, unknown>,
    task: TaskContext,
  ): Promise<TextAnalysis> {
    const text = requireText(input);
    await loadTextModels();
    task.log.debug({ characters: text.length }, 'analyze_text');
    // Chosen before any work, so a provider without a key fails the task at once.
    const model = namesModel(context) ? llm(task, context) : undefined;
    const scale = model ? 0.6 : 1;

    const sentiment = analyzeSentiment(text);
    task.progress(25 * scale, 'sentiment');
    await checkpoint(task.signal);

    const { alternatives: _alternatives, ...language } = detectLanguage(text);
    task.progress(50 * scale, 'language');
    await checkpoint(task.signal);

    const keywords = extractKeywords(text);
    task.progress(75 * scale, 'keywords');
    await checkpoint(task.signal);

    const r = readability(text);
    task.progress(100 * scale, 'readability');
    const analysis: TextAnalysis = {
      sentiment,
      language,
      keywords,
      readability: r,
      stats: { characters: [...text].length, words: r.words, sentences: r.sentences },
    };
    if (model) {
      analysis.llm = await askLlm(model, text, sentiment.label);
      task.progress(100, 'llm analysis');
    }
    return analysis;
  }

  async detect_language(input: Record<string, unknown>): Promise<LanguageDetection> {
    const text = requireText(input);
    await loadTextModels();
    return detectLanguage(text);
  }

  async moderate_content(input: Record<string, unknown>): Promise<ModerationResult> {
    const text = requireText(input);
    await loadTextModels();
    return moderate(text);
  }
}
