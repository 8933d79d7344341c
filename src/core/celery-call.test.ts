import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import { CELERY_FAST_TASK, CELERY_HEAVY_TASK, celeryCallToRequest, isCeleryTaskName } from './celery-call.js';

const positional = [
  'analyze_text',
  'user_123',
  'task_456',
  1,
  'chat',
  'text_analyzer',
  { text: 'hi' },
  { language: 'en' },
];

function issuesOf(call: () => unknown): Array<{ field: string; message: string }> {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).issues;
  }
  throw new Error('expected a ValidationError');
}

describe('celeryCallToRequest', () => {
  it("maps the seed's positional signature and routes each name to its queue", () => {
    expect(celeryCallToRequest(CELERY_FAST_TASK, positional, {})).toEqual({
      queue: 'fast_tasks',
      request: {
        task_name: 'analyze_text',
        user_id: 'user_123',
        task_id: 'task_456',
        step: 1,
        mode: 'chat',
        service: 'text_analyzer',
        input_data: { text: 'hi' },
        context: { language: 'en' },
      },
    });
    expect(celeryCallToRequest(CELERY_HEAVY_TASK, positional, undefined).queue).toBe('heavy_tasks');
  });

  it('mixes positional and keyword arguments, and reads None as not given', () => {
    const { request } = celeryCallToRequest(CELERY_FAST_TASK, ['analyze_text', 'u1'], {
      task_id: null,
      mode: 'chat',
      service: 's',
      context: null,
    });
    expect(request).toEqual({ task_name: 'analyze_text', user_id: 'u1', mode: 'chat', service: 's' });
  });

  it('names the argument at fault', () => {
    expect(issuesOf(() => celeryCallToRequest(CELERY_FAST_TASK, [...positional, 'x'], {}))).toEqual([
      { field: 'args[8]', message: expect.stringContaining('too many positional arguments') },
    ]);
    expect(
      issuesOf(() => celeryCallToRequest(CELERY_FAST_TASK, ['t', 'u'], { user_id: 'v', colour: 1 })),
    ).toEqual([
      { field: 'kwargs.user_id', message: 'given both by position and by keyword' },
      { field: 'kwargs.colour', message: expect.stringContaining('unknown argument') },
    ]);
    expect(issuesOf(() => celeryCallToRequest(CELERY_FAST_TASK, 'nope', []))).toEqual([
      { field: 'args', message: 'expected a list' },
      { field: 'kwargs', message: 'expected an object (a dict)' },
    ]);
    expect(issuesOf(() => celeryCallToRequest('tasks.add', [], {}))[0]?.field).toBe('task');
  });

  it('knows only the seed names', () => {
    expect(isCeleryTaskName(CELERY_FAST_TASK)).toBe(true);
    expect(isCeleryTaskName('toString')).toBe(false);
  });
});
