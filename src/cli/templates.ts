/**
 * `aiecs templates`: the task templates a templates file holds (`--templates FILE`, else
 * AIECS_TEMPLATES_FILE), checked as `aiecs up` would load them: every version, the latest marked,
 * the service method, queue and options; `--json` prints them as `GET /api/templates` does.
 */
import type { Command } from 'commander';
import { loadTemplateFile } from '../core/template-file.js';
import { TemplateRegistry, type TemplateDescription } from '../core/template-registry.js';
import type { GlobalOptions } from './options.js';
import { UsageError, cliConfig } from './options.js';
import { jsonLine, table } from './output.js';

export interface TemplatesFlags {
  templates?: string;
  json?: boolean;
}

export async function templatesAction(flags: TemplatesFlags, cmd: Command): Promise<void> {
  const config = cliConfig(cmd.optsWithGlobals<GlobalOptions>());
  const file = flags.templates ?? config.templatesFile;
  if (file === undefined)
    throw new UsageError('no templates file: give --templates FILE or set AIECS_TEMPLATES_FILE');
  const templates = loadTemplateFile(new TemplateRegistry(), file).list();
  if (flags.json) {
    console.log(jsonLine({ templates }));
    return;
  }
  if (templates.length === 0) {
    console.log(`no templates in ${file}`);
    return;
  }
  console.log(
    table(
      ['TEMPLATE', 'LATEST', 'RUNS', 'QUEUE', 'OPTIONS'],
      templates.map((t) => [
        t.ref,
        t.latest ? 'yes' : '',
        `${t.mode}/${t.service}.${t.task_name}`,
        t.queue,
        options(t),
      ]),
    ),
  );
}

function options(t: TemplateDescription): string {
  return Object.entries(t.options)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(' ');
}
