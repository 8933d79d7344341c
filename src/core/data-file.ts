/** JSON or YAML text as a value, by the file's extension: the schedule and template files' reader. */
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

// Loaded on the first YAML file only (synchronously, by its CommonJS build): most processes read
// none, and every worker would otherwise carry the parser.
const parseYaml = (text: string): unknown =>
  (createRequire(import.meta.url)('yaml') as typeof Yaml).parse(text);

/** The value in `text`, or one line saying why it is not valid JSON/YAML; undefined for another extension. */
export function parseDataText(
  text: string,
  ext: string,
): { value: unknown } | { problem: string } | undefined {
  const kind = ext === '.json' ? 'JSON' : ext === '.yaml' || ext === '.yml' ? 'YAML' : undefined;
  if (!kind) return undefined;
  try {
    return { value: kind === 'JSON' ? JSON.parse(text) : parseYaml(text) };
  } catch (error) {
    return { problem: `not valid ${kind}: ${(error as Error).message.replace(/\s+/g, ' ')}` };
  }
}
