import { round } from '../cooperative.js';
import { lazyData } from './data.js';
import { words } from './tokens.js';

export interface Keyword {
  word: string;
  count: number;
  /** Term frequency: occurrences over all content words (stop words excluded). */
  score: number;
}

/** English function words (lower case, ' as apostrophe), never keywords. */
const stopWords = lazyData('stop-words.json', (raw) => new Set(raw as string[]));

export function extractKeywords(text: string, limit = 10): Keyword[] {
  const stop = stopWords();
  const counts = new Map<string, { count: number; first: number }>();
  let total = 0;
  words(text).forEach((raw, index) => {
    const word = raw.toLowerCase().replace(/’/g, "'");
    // Short tokens and bare numbers are rarely what a text is about.
    if (word.length < 3 || stop.has(word) || /^[\p{N}'-]+$/u.test(word)) return;
    total += 1;
    const seen = counts.get(word);
    if (seen) seen.count += 1;
    else counts.set(word, { count: 1, first: index });
  });
  return [...counts.entries()]
    .sort((a, b) => b[1].count - a[1].count || a[1].first - b[1].first)
    .slice(0, limit)
    .map(([word, { count }]) => ({ word, count, score: round(count / total) }));
}
