import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/errors.js';

/**
 * Loads service modules by path, like Celery's `-A`: a module registers its services when it is
 * imported (`registerService(...)` at top level). Every child process of the process pool loads
 * the same paths, so what the parent can run, its children can too.
 */
export async function loadServiceModules(paths: readonly string[], cwd = process.cwd()): Promise<void> {
  for (const path of paths) {
    const url =
      /^[a-z]+:/i.test(path) && !/^[a-z]:[\\/]/i.test(path) ? path : pathToFileURL(resolve(cwd, path)).href;
    try {
      await import(url);
    } catch (error) {
      throw new ConfigError(
        `cannot load services module ${path}: ${(error as Error).message}`,
        { path },
        { cause: error },
      );
    }
  }
}

/** Absolute paths, so child processes started elsewhere find the same files. */
export function absoluteServicePaths(paths: readonly string[], cwd = process.cwd()): string[] {
  return paths.map((p) => (/^[a-z]+:/i.test(p) && !/^[a-z]:[\\/]/i.test(p) ? p : resolve(cwd, p)));
}
