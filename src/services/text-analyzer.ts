import type Sentiment from 'sentiment';
import type { francAll as FrancAll } from 'franc-min';
import { ValidationError } from '../core/errors.js';
import { llm } from '../providers/client.js';
import { parseJsonLoose } from '../providers/json.js';
import { namesModel } from '../providers/select.js';
import type { ProviderName } from '../providers/types.js';
import type { TaskContext } from '../core/task-context.js';
import { checkpoint, round } from './cooperative.js';

export type SentimentLabel = 'positive' | 'negative' | 'neutral';

export interface SentimentResult {
  score: number;
  comparative: number;
  label: SentimentLabel;
  positive_words: string[];
  negative_words: string[];
}

export interface LanguageGuess {
  /** ISO 639-1 when the language has one, else the ISO 639-3 code; 'und' when unknown. */
  code: string;
  iso639_3: string;
  /** 0..1: about how often a guess this sure is right (see CHARACTERS_PER_EVIDENCE); 0 for und. */
  confidence: number;
  name: string;
}

export interface LanguageDetection extends LanguageGuess {
  alternatives: LanguageGuess[];
}

export interface Keyword {
  word: string;
  count: number;
  /** Term frequency: occurrences over all content words (stop words excluded). */
  score: number;
}

export interface Readability {
  flesch_reading_ease: number;
  flesch_kincaid_grade: number;
  sentences: number;
  words: number;
  syllables: number;
  avg_words_per_sentence: number;
}

export type LlmSentimentLabel = SentimentLabel | 'mixed';

/** What a model said about the text (LLM mode: the context names a model or provider). */
export interface LlmAnalysis {
  summary: string;
  sentiment: { label: LlmSentimentLabel; reasons: string[] };
  model: string;
  provider: ProviderName;
}

export interface TextAnalysis {
  sentiment: SentimentResult;
  language: LanguageGuess;
  keywords: Keyword[];
  readability: Readability;
  stats: { characters: number; words: number; sentences: number };
  llm?: LlmAnalysis;
}

export type ModerationCategory = 'profanity' | 'harassment' | 'self_harm' | 'violence' | 'sexual';

export interface ModerationResult {
  flagged: boolean;
  categories: Record<ModerationCategory, boolean>;
  scores: Record<ModerationCategory, number>;
  matched_terms: string[];
}

// ---------------------------------------------------------------------------------------------
// Language names and codes for every language franc-min can return.

/** ISO 639-3 → [ISO 639-1 or '' when there is none, English name]. */
const LANGUAGES: Record<string, [string, string]> = {
  amh: ['am', 'Amharic'],
  arb: ['ar', 'Arabic'],
  azj: ['az', 'Azerbaijani'],
  bel: ['be', 'Belarusian'],
  ben: ['bn', 'Bengali'],
  bho: ['', 'Bhojpuri'],
  bos: ['bs', 'Bosnian'],
  bul: ['bg', 'Bulgarian'],
  ceb: ['', 'Cebuano'],
  ces: ['cs', 'Czech'],
  ckb: ['', 'Central Kurdish'],
  cmn: ['zh', 'Chinese (Mandarin)'],
  deu: ['de', 'German'],
  ell: ['el', 'Greek'],
  eng: ['en', 'English'],
  fra: ['fr', 'French'],
  fuv: ['ff', 'Fulfulde'],
  guj: ['gu', 'Gujarati'],
  hau: ['ha', 'Hausa'],
  hin: ['hi', 'Hindi'],
  hms: ['', 'Southern Qiandong Miao'],
  hnj: ['', 'Hmong Njua'],
  hrv: ['hr', 'Croatian'],
  hun: ['hu', 'Hungarian'],
  ibo: ['ig', 'Igbo'],
  ilo: ['', 'Ilocano'],
  ind: ['id', 'Indonesian'],
  ita: ['it', 'Italian'],
  jav: ['jv', 'Javanese'],
  jpn: ['ja', 'Japanese'],
  kan: ['kn', 'Kannada'],
  kaz: ['kk', 'Kazakh'],
  kin: ['rw', 'Kinyarwanda'],
  koi: ['', 'Komi-Permyak'],
  kor: ['ko', 'Korean'],
  lin: ['ln', 'Lingala'],
  mad: ['', 'Madurese'],
  mag: ['', 'Magahi'],
  mai: ['', 'Maithili'],
  mal: ['ml', 'Malayalam'],
  mar: ['mr', 'Marathi'],
  mya: ['my', 'Burmese'],
  nld: ['nl', 'Dutch'],
  npi: ['ne', 'Nepali'],
  nya: ['ny', 'Chichewa'],
  pan: ['pa', 'Punjabi'],
  pbu: ['ps', 'Pashto'],
  pes: ['fa', 'Persian'],
  plt: ['mg', 'Malagasy'],
  pol: ['pl', 'Polish'],
  por: ['pt', 'Portuguese'],
  qug: ['', 'Chimborazo Highland Quichua'],
  ron: ['ro', 'Romanian'],
  run: ['rn', 'Kirundi'],
  rus: ['ru', 'Russian'],
  sin: ['si', 'Sinhala'],
  skr: ['', 'Saraiki'],
  som: ['so', 'Somali'],
  spa: ['es', 'Spanish'],
  srp: ['sr', 'Serbian'],
  sun: ['su', 'Sundanese'],
  swe: ['sv', 'Swedish'],
  swh: ['sw', 'Swahili'],
  tam: ['ta', 'Tamil'],
  tel: ['te', 'Telugu'],
  tgl: ['tl', 'Tagalog'],
  tha: ['th', 'Thai'],
  tur: ['tr', 'Turkish'],
  ukr: ['uk', 'Ukrainian'],
  urd: ['ur', 'Urdu'],
  uzn: ['uz', 'Uzbek'],
  vie: ['vi', 'Vietnamese'],
  yor: ['yo', 'Yoruba'],
  zlm: ['ms', 'Malay'],
  zul: ['zu', 'Zulu'],
  zyb: ['', 'Yongbei Zhuang'],
};

/** Below this many characters trigram statistics are noise (franc's own default minimum). */
const MIN_LANGUAGE_LENGTH = 10;
/** franc reads at most this many characters of a text. */
const MAX_LANGUAGE_LENGTH = 2048;
/**
 * Characters of text per unit of evidence. franc scores the best language 1 and each other one
 * by how much worse its trigrams fit, per trigram, so the same gap means much more in a paragraph
 * than in two words. A softmax over `(score - 1) * characters / 3` gives confidences that match
 * how often the guess is right: measured over 17,000 windows of 1 to 160 characters cut from
 * paragraphs in eight languages (en, de, fr, es, it, pt, nl, ru), guesses at 0.5-0.6 were right
 * 64 % of the time, at 0.8-0.9 86 %, at 0.9 and above 99 %.
 */
const CHARACTERS_PER_EVIDENCE = 3;
/**
 * Below this confidence the language is reported as `und` (undetermined), its candidates as
 * alternatives: short texts ("Great work" scores Dutch first) rarely get this far.
 */
const MIN_LANGUAGE_CONFIDENCE = 0.5;

function languageGuess(iso639_3: string, confidence: number): LanguageGuess {
  const known = LANGUAGES[iso639_3];
  if (iso639_3 === 'und' || !known) {
    return {
      code: iso639_3,
      iso639_3,
      confidence: round(confidence),
      name: iso639_3 === 'und' ? 'Undetermined' : iso639_3,
    };
  }
  return { code: known[0] || iso639_3, iso639_3, confidence: round(confidence), name: known[1] };
}

/**
 * Detects the language of `text`: the best guess first, then up to `alternatives` runners-up.
 * When no language is likely enough, the answer is `und` with confidence 0, and the candidates,
 * best first, are the alternatives.
 */
export function detectLanguage(text: string, alternatives = 3): LanguageDetection {
  const trimmed = text.trim();
  const ranked = trimmed.length < MIN_LANGUAGE_LENGTH ? [] : models().francAll(trimmed);
  const best = ranked[0];
  if (!best || best[0] === 'und') return { ...languageGuess('und', 0), alternatives: [] };
  const evidence = Math.min([...trimmed].length, MAX_LANGUAGE_LENGTH) / CHARACTERS_PER_EVIDENCE;
  const weights = ranked.map(([, s]) => Math.exp((s - 1) * evidence));
  const total = weights.reduce((a, b) => a + b, 0);
  const guesses = ranked.map(([code], i) => languageGuess(code, (weights[i] ?? 0) / total));
  const [first, ...rest] = guesses as [LanguageGuess, ...LanguageGuess[]];
  if (first.confidence < MIN_LANGUAGE_CONFIDENCE) {
    return { ...languageGuess('und', 0), alternatives: guesses.slice(0, alternatives) };
  }
  return { ...first, alternatives: rest.slice(0, alternatives) };
}

// ---------------------------------------------------------------------------------------------
// Tokens, sentences, syllables.

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

// ---------------------------------------------------------------------------------------------
// Keywords.

const STOP_WORDS = new Set(
  `a about above after again against all also am an and any are aren't as at be because been before
  being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
  don't down during each even ever every few for from further get gets got had hadn't has hasn't have
  haven't having he he'd he'll he's her here here's hers herself him himself his how how's however i
  i'd i'll i'm i've if in into is isn't it it's its itself just let's like made make many may me
  might more most much must mustn't my myself no nor not now of off often on once one only or other
  ought our ours ourselves out over own per quite rather really said same say says shan't she she'd
  she'll she's should shouldn't since so some still such than that that's the their theirs them
  themselves then there there's these they they'd they'll they're they've this those though through
  thus to too under until up upon us use used using very via was wasn't we we'd we'll we're we've
  well were weren't what what's when when's where where's whether which while who who's whom whose
  why why's will with within without won't would wouldn't yet you you'd you'll you're you've your
  yours yourself yourselves`.split(/\s+/),
);

export function extractKeywords(text: string, limit = 10): Keyword[] {
  const counts = new Map<string, { count: number; first: number }>();
  let total = 0;
  words(text).forEach((raw, index) => {
    const word = raw.toLowerCase().replace(/’/g, "'");
    // Short tokens and bare numbers are rarely what a text is about.
    if (word.length < 3 || STOP_WORDS.has(word) || /^[\p{N}'-]+$/u.test(word)) return;
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

// ---------------------------------------------------------------------------------------------
// Sentiment (AFINN-165 via `sentiment`; English word list, so other languages mostly score 0).

let loaded: { francAll: typeof FrancAll; sentiment: Sentiment } | undefined;

/**
 * Loads franc's trigram data and the AFINN word list (tens of MB together) on first use rather
 * than when a worker starts. Every method awaits it; the helpers below need it done.
 */
export async function loadTextModels(): Promise<void> {
  if (loaded) return;
  const [{ francAll }, { default: SentimentAnalyzer }] = await Promise.all([
    import('franc-min'),
    import('sentiment'),
  ]);
  loaded ??= { francAll, sentiment: new SentimentAnalyzer() };
}

function models(): NonNullable<typeof loaded> {
  if (!loaded) throw new Error('text models are not loaded: await loadTextModels() first');
  return loaded;
}
/** Comparative (score per token) needed to call a text positive or negative. */
const SENTIMENT_THRESHOLD = 0.05;

export function analyzeSentiment(text: string): SentimentResult {
  const r = models().sentiment.analyze(text);
  const label: SentimentLabel =
    r.comparative >= SENTIMENT_THRESHOLD
      ? 'positive'
      : r.comparative <= -SENTIMENT_THRESHOLD
        ? 'negative'
        : 'neutral';
  return {
    score: r.score,
    comparative: round(r.comparative),
    label,
    positive_words: [...new Set(r.positive)],
    negative_words: [...new Set(r.negative)],
  };
}

// ---------------------------------------------------------------------------------------------
// Moderation: weighted word lists per category. A category's score is the sum of the weights of
// its distinct matched terms, capped at 1; it is flagged at FLAG_THRESHOLD.

const FLAG_THRESHOLD = 0.5;

/** `*` at the end of a term means "any word ending" (fuck* → fucking); spaces match any whitespace. */
const TERMS: Record<ModerationCategory, Record<string, number>> = {
  profanity: {
    'fuck*': 0.9,
    'motherfuck*': 0.9,
    'cunt*': 0.9,
    'shit*': 0.6,
    bullshit: 0.6,
    'bitch*': 0.6,
    'asshole*': 0.6,
    'bastard*': 0.6,
    dick: 0.5,
    dickhead: 0.6,
    'piss*': 0.4,
    wanker: 0.6,
    'damn*': 0.25,
    crap: 0.25,
    crappy: 0.25,
  },
  harassment: {
    idiot: 0.4,
    idiots: 0.4,
    moron: 0.4,
    morons: 0.4,
    stupid: 0.3,
    loser: 0.35,
    worthless: 0.4,
    pathetic: 0.35,
    ugly: 0.25,
    'shut up': 0.3,
    'you suck': 0.5,
    'nobody likes you': 0.6,
    'go die': 0.8,
    'kill yourself': 0.9,
    kys: 0.8,
    'i hate you': 0.6,
    'piece of shit': 0.6,
  },
  self_harm: {
    'kill myself': 0.9,
    'killing myself': 0.9,
    'end my life': 0.9,
    'take my own life': 0.9,
    suicide: 0.6,
    suicidal: 0.8,
    'self-harm': 0.7,
    'self harm': 0.7,
    'cut myself': 0.8,
    'cutting myself': 0.8,
    'hurt myself': 0.7,
    'want to die': 0.8,
    'wanna die': 0.8,
    'better off dead': 0.7,
    overdose: 0.4,
  },
  violence: {
    'kill you': 0.8,
    'murder*': 0.6,
    'kill*': 0.25,
    'stab*': 0.5,
    'shoot*': 0.4,
    shot: 0.3,
    'behead*': 0.8,
    'massacre*': 0.7,
    'slaughter*': 0.5,
    'strangl*': 0.6,
    'bomb*': 0.4,
    'blow up': 0.4,
    'beat you': 0.6,
    'beat the shit': 0.6,
    'torture*': 0.6,
    'assault*': 0.4,
    'attack*': 0.2,
    gun: 0.2,
    guns: 0.2,
    weapon: 0.2,
    'blood*': 0.2,
  },
  sexual: {
    'porn*': 0.7,
    nudes: 0.6,
    naked: 0.3,
    xxx: 0.5,
    blowjob: 0.8,
    handjob: 0.8,
    'masturbat*': 0.7,
    horny: 0.5,
    sexting: 0.6,
    sex: 0.3,
  },
};

const CATEGORIES = Object.keys(TERMS) as ModerationCategory[];

interface CompiledTerm {
  category: ModerationCategory;
  term: string;
  weight: number;
  pattern: RegExp;
}

const COMPILED: CompiledTerm[] = CATEGORIES.flatMap((category) =>
  Object.entries(TERMS[category]).map(([term, weight]) => {
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

/** Words that address someone: harassment needs a target, negative sentiment alone is not abuse. */
const SECOND_PERSON = /(?<![\p{L}])(?:you|your|you're|youre|u|ur|yourself)(?![\p{L}])/iu;

export function moderate(text: string): ModerationResult {
  const scores = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<ModerationCategory, number>;
  const matched = new Set<string>();
  for (const { category, weight, pattern } of COMPILED) {
    const hits = new Set([...text.matchAll(pattern)].map((m) => m[0].toLowerCase().replace(/\s+/g, ' ')));
    if (!hits.size) continue;
    // One weight per term: repeating a word is not more of the category than saying it once.
    scores[category] += weight;
    for (const h of hits) matched.add(h);
  }
  // Negative sentiment aimed at "you" raises harassment, and so does profanity aimed at "you".
  const s = models().sentiment.analyze(text);
  if (SECOND_PERSON.test(text)) {
    if (s.comparative < 0) scores.harassment += Math.min(0.4, -s.comparative / 5);
    if (scores.profanity > 0) scores.harassment += 0.2;
  }
  const categories = {} as Record<ModerationCategory, boolean>;
  for (const c of CATEGORIES) {
    scores[c] = round(Math.min(1, scores[c]), 3);
    categories[c] = scores[c] >= FLAG_THRESHOLD;
  }
  return {
    flagged: CATEGORIES.some((c) => categories[c]),
    categories,
    scores,
    matched_terms: [...matched].sort(),
  };
}

// ---------------------------------------------------------------------------------------------
// LLM mode: one call asking for JSON, parsed robustly.

const LLM_INSTRUCTIONS =
  'You analyse texts. Answer with one JSON object and nothing else: ' +
  '{"summary": "<one to three sentences>", "sentiment": {"label": "positive" | "negative" | "neutral" | "mixed", ' +
  '"reasons": ["<short reason quoting or pointing at the text>", ...]}}. ' +
  'Write the summary in the language of the text.';

function llmLabel(raw: unknown): LlmSentimentLabel | undefined {
  if (typeof raw !== 'string') return undefined;
  const m = /\b(positive|negative|neutral|mixed)\b/i.exec(raw);
  return m ? (m[1]!.toLowerCase() as LlmSentimentLabel) : undefined;
}

function stringList(raw: unknown): string[] {
  if (typeof raw === 'string') return raw.trim() ? [raw.trim()] : [];
  if (!Array.isArray(raw)) return [];
  return raw
    .map((r) =>
      typeof r === 'string'
        ? r
        : typeof r === 'object' && r !== null
          ? Object.values(r).find((v) => typeof v === 'string')
          : undefined,
    )
    .filter((r): r is string => typeof r === 'string' && r.trim().length > 0)
    .map((r) => r.trim());
}

/**
 * `{summary, sentiment: {label, reasons}}` from a model's answer: JSON (bare, fenced or inside
 * prose, with the usual variations of field names), else read from plain text. The offline label
 * stands in when the model gives none.
 */
export function parseLlmAnalysis(
  text: string,
  fallbackLabel: SentimentLabel,
): Pick<LlmAnalysis, 'summary' | 'sentiment'> {
  const json = parseJsonLoose(text);
  if (json && typeof json === 'object' && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    const s = o.sentiment;
    const so = typeof s === 'object' && s !== null && !Array.isArray(s) ? (s as Record<string, unknown>) : {};
    const summary = [o.summary, o.tldr, o.abstract].find((v): v is string => typeof v === 'string') ?? '';
    const label =
      llmLabel(typeof s === 'string' ? s : (so.label ?? so.sentiment ?? so.value ?? so.polarity)) ??
      llmLabel(o.label) ??
      fallbackLabel;
    const reasons = stringList(so.reasons ?? so.reason ?? so.explanation ?? o.reasons ?? o.reason);
    return { summary: summary.trim(), sentiment: { label, reasons } };
  }
  const summary = /summary\s*[:=-]\s*(.+)/i.exec(text)?.[1]?.trim() ?? text.trim().slice(0, 2000);
  const label = llmLabel(/sentiment\s*[:=-]\s*(\w+)/i.exec(text)?.[1]) ?? llmLabel(text) ?? fallbackLabel;
  const reasons = text
    .split(/\r?\n/)
    .filter((l) => /^\s*(?:[-*•]|\d+[.)])\s+/.test(l))
    .map((l) => l.replace(/^\s*(?:[-*•]|\d+[.)])\s+/, '').trim())
    .filter(Boolean);
  return { summary, sentiment: { label, reasons } };
}

// ---------------------------------------------------------------------------------------------
// The service.

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
      const answer = await model.chat(
        [
          { role: 'system', content: LLM_INSTRUCTIONS },
          { role: 'user', content: text },
        ],
        { responseFormat: 'json', stream: false, temperature: 0 },
      );
      analysis.llm = {
        ...parseLlmAnalysis(answer.text, sentiment.label),
        model: answer.model,
        provider: answer.provider,
      };
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
