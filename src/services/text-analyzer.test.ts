import { beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../core/errors.js';
import { ServiceRegistry } from '../registry/registry.js';
import { registerBuiltinServices } from './builtin.js';
import { createTestTaskContext } from './test-task-context.js';
import {
  TextAnalyzer,
  countSyllables,
  detectLanguage,
  loadTextModels,
  moderate,
  readability,
} from './text-analyzer.js';
import type { TextAnalysis } from './text-analyzer.js';

// The helpers are synchronous over data the service methods load on first use.
beforeAll(() => loadTextModels());

const ENGLISH =
  'The government announced a new pension reform yesterday, which has provoked strong reactions across ' +
  'the country. Unions are calling for a national strike next week.';
const FRENCH =
  'Le gouvernement a annoncé hier une nouvelle réforme des retraites qui suscite de vives réactions dans ' +
  'tout le pays. Les syndicats appellent à une grève nationale la semaine prochaine.';
const GERMAN =
  'Die Bundesregierung hat gestern ein neues Gesetz zur Förderung erneuerbarer Energien beschlossen. Die ' +
  'Opposition kritisiert die hohen Kosten für die Verbraucher und fordert Nachbesserungen.';
const SIMPLE = 'The cat sat on the mat. The dog ran to the cat. It was fun. They played all day.';
const COMPLEX =
  'Notwithstanding the considerable methodological heterogeneity characterizing contemporary ' +
  'epidemiological investigations, comprehensive quantitative synthesis nevertheless demonstrates ' +
  'statistically significant associations between socioeconomic deprivation and cardiovascular morbidity.';

async function analyze(text: string): Promise<TextAnalysis> {
  return new TextAnalyzer().analyze_text({ text }, {}, createTestTaskContext().task);
}

describe('analyze_text', () => {
  it('tells positive from negative sentences', async () => {
    const good = await analyze(
      'I absolutely love this library. The documentation is clear and the team is amazing!',
    );
    const bad = await analyze(
      'This update is terrible. The app crashes constantly and I hate wasting my time.',
    );
    expect(good.sentiment.label).toBe('positive');
    expect(good.sentiment.score).toBeGreaterThan(0);
    expect(good.sentiment.positive_words).toEqual(expect.arrayContaining(['love', 'amazing']));
    expect(bad.sentiment.label).toBe('negative');
    expect(bad.sentiment.score).toBeLessThan(0);
    expect(bad.sentiment.negative_words).toEqual(expect.arrayContaining(['terrible', 'hate']));
    expect(bad.sentiment.comparative).toBeLessThan(good.sentiment.comparative);
  });

  it('calls a factual sentence neutral', async () => {
    const r = await analyze('The train leaves the station at nine and arrives in the city at noon.');
    expect(r.sentiment.label).toBe('neutral');
    expect(r.sentiment.score).toBe(0);
  });

  it('finds the obvious keyword and scores it by term frequency', async () => {
    const r = await analyze(
      'The database stores every order. When the database is slow, orders queue up, so we index the ' +
        'database tables and watch the database metrics.',
    );
    expect(r.keywords[0]).toEqual({ word: 'database', count: 4, score: expect.any(Number) });
    const contentWords = r.keywords.reduce((n, k) => n + k.count, 0);
    expect(r.keywords[0]?.score).toBeCloseTo(4 / contentWords, 3);
    expect(r.keywords.map((k) => k.word)).not.toContain('the');
    expect(r.keywords.length).toBeLessThanOrEqual(10);
  });

  it('rates a simple text easier than a complex one, in plausible ranges', async () => {
    const simple = await analyze(SIMPLE);
    const complex = await analyze(COMPLEX);
    expect(simple.readability.sentences).toBe(4);
    expect(simple.readability.words).toBe(19);
    expect(simple.readability.avg_words_per_sentence).toBeCloseTo(4.75, 2);
    expect(simple.readability.flesch_reading_ease).toBeGreaterThan(90);
    expect(simple.readability.flesch_kincaid_grade).toBeLessThan(3);
    expect(complex.readability.sentences).toBe(1);
    expect(complex.readability.flesch_reading_ease).toBeLessThan(0);
    expect(complex.readability.flesch_kincaid_grade).toBeGreaterThan(20);
    expect(complex.readability.syllables / complex.readability.words).toBeGreaterThan(3);
    expect(simple.stats).toEqual({ characters: SIMPLE.length, words: 19, sentences: 4 });
  });

  it('reports the language of the text', async () => {
    const r = await analyze(FRENCH);
    expect(r.language).toMatchObject({ code: 'fr', iso639_3: 'fra', name: 'French' });
    expect(r.language.confidence).toBeGreaterThan(0.3);
  });

  it('reports progress per phase, in order, up to 100', async () => {
    const t = createTestTaskContext();
    await new TextAnalyzer().analyze_text({ text: ENGLISH }, {}, t.task);
    const percents = t.progress.map((p) => p.percent);
    expect(percents).toEqual([25, 50, 75, 100]);
    expect(t.progress.every((p) => typeof p.message === 'string' && p.message.length > 0)).toBe(true);
  });

  it('stops when the task is aborted between phases', async () => {
    const t = createTestTaskContext({ onProgress: (p, c) => p.percent === 50 && c.abort() });
    await expect(new TextAnalyzer().analyze_text({ text: ENGLISH }, {}, t.task)).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(t.progress.map((p) => p.percent)).toEqual([25, 50]);
  });

  it.each([
    [{}, 'is required'],
    [{ text: 42 }, 'must be a string'],
    [{ text: '   ' }, 'must not be empty'],
  ])('rejects input %j with a ValidationError on input_data.text', async (input, message) => {
    const call = new TextAnalyzer().analyze_text(input, {}, createTestTaskContext().task);
    await expect(call).rejects.toBeInstanceOf(ValidationError);
    await expect(call).rejects.toMatchObject({ issues: [{ field: 'input_data.text', message }] });
  });
});

describe('detect_language', () => {
  it.each([
    ['English', ENGLISH, 'en', 'eng'],
    ['French', FRENCH, 'fr', 'fra'],
    ['German', GERMAN, 'de', 'deu'],
  ])('detects %s in a paragraph', async (name, text, code, iso639_3) => {
    const r = await new TextAnalyzer().detect_language({ text });
    expect(r).toMatchObject({ code, iso639_3, name });
    expect(r.alternatives).toHaveLength(3);
    expect(r.alternatives.map((a) => a.iso639_3)).not.toContain(iso639_3);
    // The best guess outweighs every runner-up.
    for (const alt of r.alternatives) expect(alt.confidence).toBeLessThan(r.confidence);
  });

  it('returns und with confidence 0 for text under 10 characters', () => {
    expect(detectLanguage('hi there')).toEqual({
      code: 'und',
      iso639_3: 'und',
      confidence: 0,
      name: 'Undetermined',
      alternatives: [],
    });
  });

  // Sentences of everyday length, none from the paragraphs the confidence was calibrated on.
  it.each([
    [
      'en',
      'My sister moved to a small village near the coast last spring, and she says she sleeps much better now.',
    ],
    [
      'de',
      'Meine Schwester ist letzten Frühling in ein kleines Dorf an der Küste gezogen und schläft jetzt viel besser.',
    ],
    [
      'fr',
      'Ma sœur a déménagé dans un petit village près de la côte au printemps dernier, et elle dort beaucoup mieux.',
    ],
    [
      'es',
      'Mi hermana se mudó a un pueblo pequeño cerca de la costa la primavera pasada y ahora duerme mucho mejor.',
    ],
    [
      'it',
      'Mia sorella si è trasferita in un piccolo paese vicino alla costa la primavera scorsa e ora dorme molto meglio.',
    ],
    [
      'pt',
      'A minha irmã mudou-se para uma pequena aldeia perto da costa na primavera passada e agora dorme muito melhor.',
    ],
    [
      'nl',
      'Mijn zus is afgelopen voorjaar naar een klein dorp aan de kust verhuisd en ze slaapt nu veel beter.',
    ],
    [
      'ru',
      'Прошлой весной моя сестра переехала в маленькую деревню у моря и теперь спит гораздо лучше, чем раньше.',
    ],
  ])('is sure of %s in a sentence', (code, text) => {
    const r = detectLanguage(text);
    expect(r.code).toBe(code);
    expect(r.confidence).toBeGreaterThan(0.8);
  });

  // Trigram statistics of two or three words are noise: "Great work" scores Dutch first.
  it.each([
    'Great work',
    'I love this!',
    'Thank you very much',
    'Hello world, how are you?',
    'Merci beaucoup',
    'Das ist sehr gut',
    'Buenos días a todos',
    'Grazie mille, amico',
  ])('calls %j undetermined and lists its candidates', (text) => {
    const r = detectLanguage(text);
    expect(r).toMatchObject({ code: 'und', iso639_3: 'und', confidence: 0, name: 'Undetermined' });
    expect(r.alternatives.length).toBeGreaterThan(0);
    for (const alt of r.alternatives) expect(alt.confidence).toBeLessThan(0.5);
  });

  it('analyze_text reports und for the tour\'s "Great work"', async () => {
    expect((await analyze('Great work')).language).toMatchObject({ code: 'und', confidence: 0 });
  });

  it('keeps the ISO 639-3 code when there is no two-letter code', () => {
    // Japanese has one script of its own, so franc is certain.
    expect(detectLanguage('今日はとても良い天気ですね。散歩に行きましょう。')).toMatchObject({
      code: 'ja',
      iso639_3: 'jpn',
      confidence: 1,
    });
  });
});

describe('moderate_content', () => {
  const service = new TextAnalyzer();

  it('flags a profane, violent insult', async () => {
    const r = await service.moderate_content({ text: 'You are a fucking idiot and I will kill you.' });
    expect(r.flagged).toBe(true);
    expect(r.categories).toMatchObject({
      profanity: true,
      violence: true,
      harassment: true,
      self_harm: false,
    });
    expect(r.matched_terms).toEqual(expect.arrayContaining(['fucking', 'idiot', 'kill you']));
    expect(r.scores.profanity).toBeGreaterThanOrEqual(0.5);
    expect(r.scores.self_harm).toBe(0);
  });

  it('does not flag a neutral sentence', async () => {
    const r = await service.moderate_content({
      text: 'The weather today is pleasant and the meeting starts at ten.',
    });
    expect(r.flagged).toBe(false);
    expect(Object.values(r.categories).some(Boolean)).toBe(false);
    expect(Object.values(r.scores).every((s) => s === 0)).toBe(true);
    expect(r.matched_terms).toEqual([]);
  });

  it('flags self-harm statements', () => {
    const r = moderate('I want to end my life, I cannot go on.');
    expect(r.categories.self_harm).toBe(true);
    expect(r.categories.violence).toBe(false);
  });

  it('uses negative sentiment aimed at someone as a harassment signal', () => {
    const insult = moderate('You are so stupid and worthless, nobody likes you.');
    expect(insult.categories.harassment).toBe(true);
    // Same insulting word, no target and no hostility: below the bar.
    expect(moderate('That was a stupid mistake in my own code.').categories.harassment).toBe(false);
  });

  it('matches whole words, case-insensitively', () => {
    expect(moderate('WHAT THE FUCK').categories.profanity).toBe(true);
    const r = moderate('Scunthorpe, Sussex and Essex passed the class assessment.');
    expect(r.flagged).toBe(false);
    expect(r.matched_terms).toEqual([]);
  });

  it('does not flag technical uses of "kill" and "attack" on their own', () => {
    expect(moderate('Kill the process with SIGTERM, then check the attack surface.').flagged).toBe(false);
  });
});

describe('helpers', () => {
  it('counts syllables of common words', () => {
    expect(countSyllables('cat')).toBe(1);
    expect(countSyllables('table')).toBe(2);
    expect(countSyllables('makes')).toBe(1);
    expect(countSyllables('documentation')).toBe(5);
    expect(countSyllables('reading')).toBe(2);
  });

  it('returns zeros for text without words', () => {
    expect(readability('... !!!')).toMatchObject({ words: 0, sentences: 0, flesch_reading_ease: 0 });
  });
});

describe('registration', () => {
  const registry = new ServiceRegistry();

  it('registers chat/text_analyzer and resolves each task name to a fresh instance', async () => {
    registerBuiltinServices(registry);
    const entry = registry.get('chat', 'text_analyzer');
    expect(entry?.methods).toEqual(['analyze_text', 'detect_language', 'moderate_content']);
    expect(entry?.description).toBeTruthy();

    const t = createTestTaskContext({ mode: 'chat', service: 'text_analyzer' });
    const analyzeText = registry.resolve('chat', 'text_analyzer', 'analyze_text');
    const result = (await analyzeText({ text: FRENCH }, {}, t.task)) as TextAnalysis;
    expect(result.language.code).toBe('fr');
    const detect = registry.resolve('chat', 'text_analyzer', 'detect_language');
    expect(await detect({ text: GERMAN }, {}, t.task)).toMatchObject({ code: 'de' });
    expect(() => registry.resolve('chat', 'text_analyzer', 'summarize')).toThrow(/no method summarize/);
  });
});
