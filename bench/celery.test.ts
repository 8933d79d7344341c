import { describe, expect, it, vi } from 'vitest';
import type * as Lifecycle from './lifecycle.js';

// No Python with Celery on this "machine": the section must skip, not fail, and start nothing.
vi.mock('./celery-python.js', () => ({ findCeleryPython: () => undefined }));
vi.mock('./lifecycle.js', async (actual) => ({
  ...(await actual<typeof Lifecycle>()),
  spawnTracked: () => {
    throw new Error('nothing may be started when the section is skipped');
  },
}));

const { celery, CELERY_SKIPPED } = await import('./celery.js');
const { celeryDirect } = await import('./celery-direct.js');

describe('the celery section without a Python that imports celery', () => {
  it('is skipped with a line saying so', async () => {
    const lines: string[] = [];
    const result = await celery('redis://127.0.0.1:1', 10, 0, 1, (line) => lines.push(line));
    expect(result).toEqual({ skipped: CELERY_SKIPPED });
    expect(CELERY_SKIPPED).toBe('python3 with celery not found');
    expect(lines).toEqual(['bench: celery skipped: python3 with celery not found']);
  });
});

describe('the celery_direct section without a Python that imports celery', () => {
  it('is skipped with a line saying so, and starts nothing', async () => {
    const lines: string[] = [];
    const sizes = { count: 10, warmup: 0, rounds: 1, latency: 10, io: 10, ioWaitMs: 1 };
    const result = await celeryDirect('redis://127.0.0.1:1', sizes, (line) => lines.push(line));
    expect(result).toEqual({ skipped: CELERY_SKIPPED });
    expect(lines).toEqual(['bench: celery_direct skipped: python3 with celery not found']);
  });
});
