import { round } from '../cooperative.js';
import { countSentences, countSyllables, words } from './tokens.js';

export interface Readability {
  flesch_reading_ease: number;
  flesch_kincaid_grade: number;
  sentences: number;
  words: number;
  syllables: number;
  avg_words_per_sentence: number;
}

export function readability(text: string): Readability {
  const ws = words(text);
  const sentences = ws.length ? Math.max(1, countSentences(text)) : 0;
  const syllables = ws.reduce((sum, w) => sum + countSyllables(w), 0);
  if (!ws.length) {
    return {
      flesch_reading_ease: 0,
      flesch_kincaid_grade: 0,
      sentences: 0,
      words: 0,
      syllables: 0,
      avg_words_per_sentence: 0,
    };
  }
  const wps = ws.length / sentences;
  const spw = syllables / ws.length;
  return {
    flesch_reading_ease: round(206.835 - 1.015 * wps - 84.6 * spw, 2),
    flesch_kincaid_grade: round(0.39 * wps + 11.8 * spw - 15.59, 2),
    sentences,
    words: ws.length,
    syllables,
    avg_words_per_sentence: round(wps, 2),
  };
}
