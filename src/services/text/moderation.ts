// Moderation: weighted word lists per category (data/moderation-terms.json). A category's score
// is the sum of the weights of its distinct matched terms, capped at 1; it is flagged at
// FLAG_THRESHOLD.
import { round } from '../cooperative.js';
import { lazyData } from './data.js';
import { textModels } from './models.js';

export type ModerationCategory = 'profanity' | 'harassment' | 'self_harm' | 'violence' | 'sexual';

export interface ModerationResult {
  flagged: boolean;
  categories: Record<ModerationCategory, boolean>;
  scores: Record<ModerationCategory, number>;
  matched_terms: string[];
}

const FLAG_THRESHOLD = 0.5;

interface CompiledTerm {
  category: ModerationCategory;
  term: string;
  weight: number;
  pattern: RegExp;
}

interface Terms {
  categories: ModerationCategory[];
  compiled: CompiledTerm[];
}

/** `*` at the end of a term means "any word ending" (fuck* → fucking); spaces match any whitespace. */
function compile(raw: unknown): Terms {
  const terms = raw as Record<ModerationCategory, Record<string, number>>;
  const categories = Object.keys(terms) as ModerationCategory[];
  const compiled = categories.flatMap((category) =>
    Object.entries(terms[category]).map(([term, weight]) => {
      const open = term.endsWith('*');
      const body = (open ? term.slice(0, -1) : term)
        .split(/\s+/)
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('\\s+');
      // Letter lookarounds instead of \b so the boundary works outside ASCII and around hyphens.
      const pattern = new RegExp(
        `(?<![\\p{L}\\p{N}])${body}${open ? '[\\p{L}]*' : ''}(?![\\p{L}\\p{N}])`,
        'giu',
      );
      return { category, term, weight, pattern };
    }),
  );
  return { categories, compiled };
}

const moderationTerms = lazyData('moderation-terms.json', compile);

/** Words that address someone: harassment needs a target, negative sentiment alone is not abuse. */
const SECOND_PERSON = /(?<![\p{L}])(?:you|your|you're|youre|u|ur|yourself)(?![\p{L}])/iu;

export function moderate(text: string): ModerationResult {
  const { categories: names, compiled } = moderationTerms();
  const scores = Object.fromEntries(names.map((c) => [c, 0])) as Record<ModerationCategory, number>;
  const matched = new Set<string>();
  for (const { category, weight, pattern } of compiled) {
    const hits = new Set([...text.matchAll(pattern)].map((m) => m[0].toLowerCase().replace(/\s+/g, ' ')));
    if (!hits.size) continue;
    // One weight per term: repeating a word is not more of the category than saying it once.
    scores[category] += weight;
    for (const h of hits) matched.add(h);
  }
  // Negative sentiment aimed at "you" raises harassment, and so does profanity aimed at "you".
  const s = textModels().sentiment.analyze(text);
  if (SECOND_PERSON.test(text)) {
    if (s.comparative < 0) scores.harassment += Math.min(0.4, -s.comparative / 5);
    if (scores.profanity > 0) scores.harassment += 0.2;
  }
  const categories = {} as Record<ModerationCategory, boolean>;
  for (const c of names) {
    scores[c] = round(Math.min(1, scores[c]), 3);
    categories[c] = scores[c] >= FLAG_THRESHOLD;
  }
  return {
    flagged: names.some((c) => categories[c]),
    categories,
    scores,
    matched_terms: [...matched].sort(),
  };
}
