// Tokens, sentences, syllables: shared by the keyword and readability analysers and the document
// generator.

const WORD = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;

export function words(text: string): string[] {
  return text.match(WORD) ?? [];
}

const HAS_WORD = /[\p{L}\p{N}]/u;

/** Sentences end at . ! ? … (or runs like "?!") before a space or the end, or at a blank line. */
export function countSentences(text: string): number {
  return text.split(/[.!?…]+(?=\s|$)|\n\s*\n/u).filter((part) => HAS_WORD.test(part)).length;
}

/**
 * English syllable estimate: groups of up to two vowels after dropping a silent final "e", "es" or
 * "ed". Off by about 10 % on running text, which is within what Flesch formulas tolerate. Words
 * without Latin letters count as one syllable.
 */
export function countSyllables(word: string): number {
  let w = word.toLowerCase().replace(/[^a-z]/g, '');
  if (!w) return 1;
  if (w.length <= 3) return 1;
  w = w.replace(/(?:[^laeiouy]es|ed|[^laeiouy]e)$/, '').replace(/^y/, '');
  return Math.max(1, w.match(/[aeiouy]{1,2}/g)?.length ?? 0);
}
