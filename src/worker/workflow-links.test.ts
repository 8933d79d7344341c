import { describe, expect, it } from 'vitest';
import { taskIdSchema } from '../core/submission.js';
import {
  awaitJobId,
  decodeLinkFailure,
  encodeLinkFailure,
  flattenShape,
  gatherJobId,
  isLinkJobId,
  linkValues,
  memberParentId,
} from '../core/workflow-links.js';
import { awaitWaitMs } from './workflow-links.js';

describe('workflow links', () => {
  it('makes ids no task id can be, and maps a gather job back to the follower it feeds', () => {
    const gather = gatherJobId('b1', 'n0');
    expect([isLinkJobId(gather), isLinkJobId(awaitJobId('c', 'n0')), isLinkJobId('plain-id')]).toEqual([
      true,
      true,
      false,
    ]);
    expect(taskIdSchema.safeParse(gather).success).toBe(false);
    expect([memberParentId(gather), memberParentId('d'), memberParentId(undefined)]).toEqual([
      'b1',
      'd',
      null,
    ]);
  });

  it('hands an upstream failure through a reason, and knows no other reason as one', () => {
    const failure = { task_id: 'a', error: 'E003 TypeError: x: "quoted"' };
    expect(decodeLinkFailure(encodeLinkFailure(failure))).toEqual(failure);
    expect(decodeLinkFailure('E003 TypeError: x')).toBeUndefined();
    expect(decodeLinkFailure('aiecs~upstream {broken')).toBeUndefined();
    expect(linkValues({ values: { a: 1 } })).toEqual({ a: 1 });
    expect(linkValues({ result: 1 })).toBeUndefined();
    expect(flattenShape(['a', ['b', 'c'], 'd'])).toEqual(['a', 'b', 'c', 'd']);
  });

  it('waits as long as the await job has waited, within 0.25 s and 30 s', () => {
    expect(awaitWaitMs(1_000, 1_010)).toBe(250);
    expect(awaitWaitMs(1_000, 5_000)).toBe(4_000);
    expect(awaitWaitMs(0, 3_600_000)).toBe(30_000);
  });
});
