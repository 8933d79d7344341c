/**
 * `npm test` lints the project's own files only: a services module or scratch script a user keeps
 * in the project root is theirs (ESLint and Prettier are asked about paths; nothing is linted).
 */
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import * as prettier from 'prettier';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const ignorePath = fileURLToPath(new URL('../.prettierignore', import.meta.url));
const theirs = ['scratch.js', 'my-services.mjs', 'notes.md', 'tools/helper.ts'];
const ours = [
  'src/cli/main.ts',
  'test/harness.ts',
  'examples/quickstart.mjs',
  'bench/main.ts',
  'scripts/copy-assets.mjs',
  'eslint.config.js',
  'vitest.config.ts',
];

describe('lint scope', () => {
  it('ESLint skips files a user keeps in the project root and lints the sources', async () => {
    const eslint = new ESLint({ cwd: root });
    for (const file of theirs.filter((f) => /\.[mc]?[jt]s$/.test(f)))
      expect(await eslint.isPathIgnored(file), file).toBe(true);
    for (const file of ours) expect(await eslint.isPathIgnored(file), file).toBe(false);
  });

  it('Prettier skips them too, and checks the sources, the README and package.json', async () => {
    const info = (file: string) => prettier.getFileInfo(`${root}${file}`, { ignorePath });
    for (const file of theirs) expect((await info(file)).ignored, file).toBe(true);
    for (const file of [...ours, 'README.md', 'package.json', 'docs/design.md'])
      expect((await info(file)).ignored, file).toBe(false);
  });
});
