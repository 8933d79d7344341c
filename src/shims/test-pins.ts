/**
 * What the shims' pinned tests compare: the installed version of a package, and hashes of the
 * library code or text a shim mirrors or wraps. Not shipped (tsconfig.build excludes test-*.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The source text of a function (a method off a prototype), hashed. */
export const sourceHash = (fn: unknown): string => {
  if (typeof fn !== 'function') throw new Error(`expected a function, got ${typeof fn}`);
  return sha256(String(fn));
};

/** The directory of the installed package `name` (found from its main file, whatever its exports allow). */
export function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === name)
      return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json for ${name}`);
    dir = up;
  }
}

export const installedVersion = (name: string): string =>
  (JSON.parse(readFileSync(join(packageDir(name), 'package.json'), 'utf8')) as { version: string }).version;

/** A file of an installed package, as text. */
export const packageFile = (name: string, path: string): string =>
  readFileSync(join(packageDir(name), path), 'utf8');
