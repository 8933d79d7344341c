/**
 * A templates file (`--templates FILE`, AIECS_TEMPLATES_FILE): a JSON or YAML list of template
 * definitions, checked whole before any is registered (TemplateInvalidError naming each bad
 * entry and field, e.g. `summarize@2.options.priority` or `[3].name`).
 */
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parseDataText } from './data-file.js';
import { ConfigError, TemplateInvalidError } from './errors.js';
import type { TemplateRegistry } from './template-registry.js';

/** Registers every template of the file into `registry`, or none of them. */
export function loadTemplateFile(registry: TemplateRegistry, path: string): TemplateRegistry {
  const source = `templates file ${path}`;
  let text: string;
  try {
    text = readFileSync(resolve(path), 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${source}: ${(error as Error).message}`, { path });
  }
  const parsed = parseDataText(text, extname(path).toLowerCase());
  if (!parsed) throw new ConfigError(`${source}: expected .json, .yaml or .yml`, { path });
  if ('problem' in parsed)
    throw new TemplateInvalidError([{ field: '(file)', message: parsed.problem }], source);
  const list = parsed.value ?? [];
  if (!Array.isArray(list))
    throw new TemplateInvalidError([{ field: '(root)', message: 'must be a list of templates' }], source);
  return registry.registerAll(list, source);
}
