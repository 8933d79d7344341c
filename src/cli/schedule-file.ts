/**
 * Reading a schedule file: JSON, YAML, or a JavaScript/TypeScript module whose default export
 * (or `schedules` export) is the list. The whole file is checked before anything is applied.
 */
import { readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseDataText } from '../core/data-file.js';
import { ScheduleInvalidError } from '../core/errors.js';
import type { ScheduleDefinition } from '../engine/schedules.js';
import { checkScheduleList } from '../gateway/schedule-schema.js';
import { UsageError } from './options.js';

const MODULES = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']);

/** The file's schedules, checked: ScheduleInvalidError names each bad entry and field. */
export async function readScheduleFile(path: string, maxInputBytes: number): Promise<ScheduleDefinition[]> {
  const source = `schedule file ${path}`;
  const refuse = (message: string) => new ScheduleInvalidError([{ field: '(file)', message }], source);
  const file = resolve(path);
  const ext = extname(file).toLowerCase();
  let list: unknown;
  if (MODULES.has(ext)) {
    let mtime: number;
    try {
      mtime = statSync(file).mtimeMs;
    } catch (error) {
      throw new UsageError(`cannot read ${source}: ${(error as Error).message}`);
    }
    try {
      // A changed file must be imported again (--watch): a new URL is a new module instance.
      const module = (await import(`${pathToFileURL(file).href}?mtime=${mtime}`)) as Record<string, unknown>;
      list = module.default ?? module.schedules;
    } catch (error) {
      const e = error as { code?: unknown; message?: unknown };
      if (e.code === 'ERR_UNKNOWN_FILE_EXTENSION')
        throw refuse(
          'Node cannot load TypeScript here: run under a TypeScript loader (node --import tsx) or compile it to .js',
        );
      throw refuse(`cannot load the module: ${String(e.message)}`);
    }
  } else {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read ${source}: ${(error as Error).message}`);
    }
    const parsed = parseDataText(text, ext);
    if (!parsed) throw new UsageError(`${source}: expected .json, .yaml, .yml or a .js/.ts module`);
    if ('problem' in parsed) throw refuse(parsed.problem);
    list = parsed.value;
  }
  return checkScheduleList(list ?? [], maxInputBytes, source);
}
