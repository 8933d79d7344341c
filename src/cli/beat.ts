/**
 * `aiecs beat --schedule FILE [--watch]`: makes the store's file schedules match the file, and
 * with --watch keeps doing so as it changes. The store's job schedulers fire the tasks (workers
 * take them): beat only writes schedules, so any number may run, and none needs to stay up.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../core/logger.js';
import type { SyncResult } from '../engine/schedules.js';
import { openApp } from './client.js';
import type { GlobalOptions } from './options.js';
import { cliConfig } from './options.js';
import { readScheduleFile } from './schedule-file.js';
import { untilShutdown } from './worker-command.js';

export interface BeatFlags {
  schedule: string;
  watch?: boolean;
}

/** Edits come as several events (truncate, write, rename): one sync after they settle. */
const DEBOUNCE_MS = 200;

export function describeSync(r: SyncResult): string {
  const part = (n: string[], what: string) => `${n.length} ${what}${n.length ? ` (${n.join(', ')})` : ''}`;
  return [
    part(r.added, 'added'),
    part(r.updated, 'updated'),
    part(r.removed, 'removed'),
    `${r.unchanged.length} unchanged`,
  ].join(', ');
}

export async function beatAction(flags: BeatFlags, cmd: Command): Promise<void> {
  const globals = cmd.optsWithGlobals<GlobalOptions>();
  const config = cliConfig(globals);
  const logger = createLogger(config.logLevel);
  const { app, store } = await openApp({
    config,
    logger,
    ...(globals.namespace !== undefined ? { namespace: globals.namespace } : {}),
  });
  const { Schedules } = await import('../engine/schedules.js');
  const schedules = new Schedules(store, config, logger);
  const close = async () => {
    await schedules.close();
    await app.close();
  };
  const apply = async () => {
    const definitions = await readScheduleFile(flags.schedule, config.maxInputBytes);
    const result = await schedules.sync(definitions);
    console.log(`aiecs beat: ${flags.schedule}: ${describeSync(result)}`);
  };
  try {
    await apply();
  } catch (error) {
    await close();
    throw error;
  }
  if (!flags.watch) return close();

  const file = resolve(flags.schedule);
  let timer: NodeJS.Timeout | undefined;
  // One sync at a time, in the order of the edits.
  let chain = Promise.resolve();
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      chain = chain.then(() =>
        apply().catch((error: unknown) =>
          logger.error(
            { err: (error as Error).message },
            'schedule file refused; the previous schedules stay until it is fixed',
          ),
        ),
      );
    }, DEBOUNCE_MS);
  };
  // The directory, not the file: editors replace a file by renaming another over it.
  const watcher: FSWatcher = watch(dirname(file), (_event, name) => {
    if (name === null || name.toString() === basename(file)) changed();
  });
  console.log(`aiecs beat: watching ${flags.schedule}`);
  await untilShutdown(async () => {
    watcher.close();
    clearTimeout(timer);
    await chain;
    await close();
  }, logger);
}
