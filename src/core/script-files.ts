/**
 * Lua and SQL live in their own files next to the module that runs them, read once when that
 * module loads. `npm run build` copies them into dist beside the compiled code
 * (scripts/copy-assets.mjs), so the same relative path serves src under vitest and dist.
 */
import { readFileSync } from 'node:fs';

/** The text of `path`, relative to `moduleUrl` (the caller's `import.meta.url`). */
export function readScript(path: string, moduleUrl: string): string {
  return readFileSync(new URL(path, moduleUrl), 'utf8');
}

const NAME_LINE = /^-- name: ([a-z][a-z0-9_]*)[ \t]*$/gm;

/**
 * The statements of a .sql file, each under a `-- name: <name>` line (as in yesql or PugSQL),
 * up to the next such line. Throws if one of `names` is missing, so a renamed statement fails
 * at start, not at its first use.
 */
export function readQueries<N extends string>(
  path: string,
  moduleUrl: string,
  names: readonly N[],
): Record<N, string> {
  const text = readScript(path, moduleUrl);
  const marks = [...text.matchAll(NAME_LINE)];
  const found = new Map<string, string>();
  marks.forEach((mark, i) => {
    const end = marks[i + 1]?.index ?? text.length;
    const body = text
      .slice(mark.index + mark[0].length, end)
      .replace(/^[ \t]*--.*$/gm, '')
      .trim()
      .replace(/;$/, '');
    found.set(mark[1]!, body);
  });
  const queries = {} as Record<N, string>;
  for (const name of names) {
    const body = found.get(name);
    if (!body) throw new Error(`${path}: no statement named ${name}`);
    queries[name] = body;
  }
  return queries;
}

/**
 * The statements with every `:"schema"` (psql's spelling of a quoted-identifier variable)
 * replaced by `quotedSchema`, which the caller has quoted already.
 */
export function inSchema<N extends string>(
  queries: Record<N, string>,
  quotedSchema: string,
): Record<N, string> {
  const out = {} as Record<N, string>;
  for (const name in queries) out[name] = queries[name].replaceAll(':"schema"', quotedSchema);
  return out;
}
