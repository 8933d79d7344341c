import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/errors.js';
import type { Registration, ServiceRegistry } from './registry.js';
import { loadingSlot } from './registry.js';

/**
 * Loads service modules by path into `registry`, like Celery's `-A`: a module registers its
 * services when it is imported (`registerService(...)` at top level), and what it registers goes
 * to the registry of the loader importing it. A module already evaluated in this process (a
 * second worker, say) is not run again: what it registered the first time is registered again.
 * Every child process of the process pool loads the same paths, so what the parent can run, its
 * children can too.
 */
export async function loadServiceModules(
  paths: readonly string[],
  registry: ServiceRegistry,
  cwd = process.cwd(),
): Promise<void> {
  const slot = loadingSlot();
  const done = slot.queue.then(async () => {
    for (const path of paths) {
      const url = moduleUrl(path, cwd);
      let registered = slot.byModule.get(url);
      if (!registered) {
        const recording: Registration[] = [];
        slot.recording = recording;
        try {
          await import(url);
        } catch (error) {
          throw new ConfigError(
            `cannot load services module ${path}: ${(error as Error).message}`,
            { path },
            { cause: error },
          );
        } finally {
          slot.recording = undefined;
        }
        slot.byModule.set(url, (registered = recording));
      }
      for (const r of registered)
        if (r.template !== undefined) registry.declareTemplate(r.template);
        else registry.register(r.mode, r.service, r.impl, r.options);
      registry.addSource(absoluteServicePaths([path], cwd)[0]!);
    }
  });
  // The next load waits for this one, whether it failed or not.
  slot.queue = done.catch(() => undefined);
  return done;
}

const isUrl = (p: string) => /^[a-z]+:/i.test(p) && !/^[a-z]:[\\/]/i.test(p);

function moduleUrl(path: string, cwd: string): string {
  return isUrl(path) ? path : pathToFileURL(resolve(cwd, path)).href;
}

/** Absolute paths, so child processes started elsewhere find the same files. */
export function absoluteServicePaths(paths: readonly string[], cwd = process.cwd()): string[] {
  return paths.map((p) => (isUrl(p) ? p : resolve(cwd, p)));
}
