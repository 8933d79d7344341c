// scripts/clean.mjs, which npm run build and npm run bench run first: stale output goes, and
// nothing outside the directory it runs in is ever removed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CLEAN = fileURLToPath(new URL('../scripts/clean.mjs', import.meta.url));

describe('scripts/clean.mjs', () => {
  const root = mkdtempSync(join(tmpdir(), 'aiecs-clean-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const clean = (cwd: string, ...args: string[]) =>
    spawnSync(process.execPath, [CLEAN, ...args], { cwd, encoding: 'utf8' });

  it('removes the named folders whole, and is content when one is missing', () => {
    const project = join(root, 'project');
    mkdirSync(join(project, 'dist', 'services'), { recursive: true });
    writeFileSync(join(project, 'dist', 'services', 'deleted-module.js'), 'export {};\n');
    writeFileSync(join(project, 'keep.txt'), 'kept\n');
    const r = clean(project, 'dist', 'dist-bench');
    expect(r.status).toBe(0);
    expect(existsSync(join(project, 'dist'))).toBe(false);
    expect(existsSync(join(project, 'keep.txt'))).toBe(true);
  });

  it('refuses a folder outside the directory it runs in, or that directory itself', () => {
    const project = join(root, 'refusing');
    const outside = join(root, 'outside');
    mkdirSync(project, { recursive: true });
    mkdirSync(outside, { recursive: true });
    for (const target of [outside, '..', '.', '']) {
      const r = clean(project, target);
      expect([target, r.status]).toEqual([target, 2]);
    }
    expect(existsSync(outside)).toBe(true);
    expect(existsSync(project)).toBe(true);
  });
});
