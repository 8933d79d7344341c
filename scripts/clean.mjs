// Removes build output before a build, so a deleted source file's .js cannot linger in it and
// let tests or the bench pass against code that no longer exists. Only folders inside the
// current directory (the repository, under npm run). Usage: node scripts/clean.mjs <dir>...
import { rmSync } from 'node:fs';
import { relative, resolve, isAbsolute } from 'node:path';

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  process.stderr.write('usage: node scripts/clean.mjs <dir>...\n');
  process.exit(2);
}
for (const dir of dirs) {
  const path = relative(process.cwd(), resolve(dir));
  if (!path || path.startsWith('..') || isAbsolute(path)) {
    process.stderr.write(`clean: ${dir} is not inside ${process.cwd()}; nothing removed\n`);
    process.exit(2);
  }
}
for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
