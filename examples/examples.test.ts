import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

describe('examples', () => {
  it('quickstart.mjs runs the library tour to its expected ends', async () => {
    const { stdout } = await run(process.execPath, [here('./quickstart.mjs')], { timeout: 120_000 });
    expect(stdout).toContain('analyze_text → completed positive en');
    expect(stdout).toContain('summarize → aiecs queues AI work. Workers run it.');
    expect(stdout).toContain('sleep with a 1 s limit → TASK_TIMEOUT (soft limit)');
    expect(stdout).toContain('cancelled sleep → TASK_CANCELLED');
  });
});
