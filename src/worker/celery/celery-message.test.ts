import { describe, expect, it } from 'vitest';
import { celeryPriority, celerySubmitOptions } from './celery-bridge.js';
import { CeleryMessageError, parseCeleryMessage, withOffset } from './celery-message.js';
import { parseRevoke, pidboxPattern } from './pidbox.js';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');
const envelope = (
  body: unknown,
  headers: Record<string, unknown>,
  properties: Record<string, unknown> = {},
) =>
  JSON.stringify({
    body: b64(body),
    'content-type': 'application/json',
    headers,
    properties: { body_encoding: 'base64', delivery_tag: 't1', ...properties },
  });

describe('parseCeleryMessage', () => {
  it('reads protocol 2: the meta from the headers, [args, kwargs, embed] from the body', () => {
    const message = parseCeleryMessage(
      envelope(
        [['a', 'u'], { mode: 'chat' }, {}],
        {
          id: 'c1',
          task: 'aiecs.tasks.worker.execute_task',
          eta: '2030-01-01T00:00:00.123456+00:00',
          expires: '2030-01-02T00:00:00',
          retries: 2,
          timelimit: [30, null],
          root_id: 'r',
          parent_id: null,
        },
        { priority: 10 },
      ),
    );
    expect(message).toEqual({
      id: 'c1',
      task: 'aiecs.tasks.worker.execute_task',
      args: ['a', 'u'],
      kwargs: { mode: 'chat' },
      eta: '2030-01-01T00:00:00.123456+00:00',
      expires: '2030-01-02T00:00:00Z', // naive: UTC, as Celery means it
      retries: 2,
      timeLimit: 30,
      priority: 10,
      rootId: 'r',
      protocol: 2,
    });
  });

  it('reads protocol 1 bodies', () => {
    const message = parseCeleryMessage(
      envelope(
        {
          id: 'c2',
          task: 'aiecs.tasks.worker.execute_heavy_task',
          args: [],
          kwargs: { a: 1 },
          timelimit: [null, 5],
        },
        {},
      ),
    );
    expect(message).toMatchObject({ id: 'c2', protocol: 1, kwargs: { a: 1 }, softTimeLimit: 5, retries: 0 });
  });

  it('refuses what it cannot read with CeleryMessageError, keeping the id when there is one', () => {
    expect(() => parseCeleryMessage('nope')).toThrow(CeleryMessageError);
    const pickled = JSON.stringify({
      ...JSON.parse(envelope([[], {}, {}], { id: 'c3', task: 't' })),
      'content-type': 'application/x-python-serialize',
    });
    expect(() => parseCeleryMessage(pickled)).toThrow(/json serializer/);
    expect(() => parseCeleryMessage(envelope({ x: 1 }, { id: 'c4', task: 't' }))).toThrow(
      expect.objectContaining({ celeryId: 'c4', code: 'CELERY_MESSAGE_INVALID' }),
    );
    expect(withOffset('2030-01-01T00:00:00Z')).toBe('2030-01-01T00:00:00Z');
  });
});

describe('mapping to submit options', () => {
  it('keeps the seed route priorities, clamps to 1-100, and spends retries from the attempts', () => {
    expect([undefined, 0, 3, 5, 10, 255].map(celeryPriority)).toEqual([undefined, 1, 3, 5, 10, 100]);
    const options = celerySubmitOptions(
      { id: 'c', task: 't', args: [], kwargs: {}, retries: 5, protocol: 2, timeLimit: 9, softTimeLimit: 4 },
      3,
    );
    expect(options).toEqual({ attempts: 1, time_limit: 9, soft_time_limit: 4 });
  });
});

describe('pidbox', () => {
  it('reads revokes (one id or many, terminate, expiry 0 = none) and ignores other methods', () => {
    const msg = (body: unknown, expires: number) =>
      JSON.stringify({
        body: b64(body),
        headers: { clock: 1, expires },
        properties: { body_encoding: 'base64' },
      });
    expect(parseRevoke(msg({ method: 'revoke', arguments: { task_id: 'a', terminate: true } }, 0))).toEqual({
      ids: ['a'],
      terminate: true,
    });
    expect(
      parseRevoke(msg({ method: 'revoke', arguments: { task_id: ['a', 'b'] } }, Date.now() / 1000 + 60)),
    ).toEqual({
      ids: ['a', 'b'],
      terminate: false,
    });
    expect(parseRevoke(msg({ method: 'revoke', arguments: { task_id: 'a' } }, 1))).toBeUndefined();
    expect(parseRevoke(msg({ method: 'ping', arguments: {} }, 0))).toBeUndefined();
    expect(pidboxPattern('redis://h:1/7')).toBe('/7.celery.pidbox*');
    expect(pidboxPattern('redis://h:1')).toBe('/0.celery.pidbox*');
  });
});
