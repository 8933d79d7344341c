import { describe, expect, it } from 'vitest';
import { parseJsonLoose } from './json.js';

describe('parseJsonLoose', () => {
  it('parses bare JSON', () => {
    expect(parseJsonLoose('{"a": 1}')).toEqual({ a: 1 });
    expect(parseJsonLoose(' ["x", "y"] ')).toEqual(['x', 'y']);
  });

  it('finds JSON in a fence or inside prose', () => {
    expect(parseJsonLoose('Here you go:\n```json\n{"a": [1, 2]}\n```\nAnything else?')).toEqual({
      a: [1, 2],
    });
    expect(parseJsonLoose('Sure! {"summary": "has a } brace", "n": 2} Hope that helps.')).toEqual({
      summary: 'has a } brace',
      n: 2,
    });
  });

  it('forgives trailing commas', () => {
    expect(parseJsonLoose('{"a": [1, 2,], }')).toEqual({ a: [1, 2] });
  });

  it('gives undefined when there is no JSON', () => {
    expect(parseJsonLoose('')).toBeUndefined();
    expect(parseJsonLoose('no json here {at all')).toBeUndefined();
  });
});
