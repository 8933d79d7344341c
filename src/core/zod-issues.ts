import type { z } from 'zod';
import type { FieldIssue } from './errors.js';

/** Turns zod issues into `{ field, message }` pairs with dotted field paths. */
export function zodIssues(error: z.ZodError, prefix?: string): FieldIssue[] {
  const issues = error.issues.map((issue): FieldIssue => {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      return {
        field: [prefix, ...path].filter(Boolean).join('.') || '(root)',
        message: `unknown field(s): ${issue.keys.join(', ')}`,
      };
    }
    const field = [prefix, ...path].filter(Boolean).join('.') || prefix || '(root)';
    return { field, message: issue.message };
  });
  // One message per field: the first check that failed says the most.
  const seen = new Set<string>();
  return issues.filter((i) => !seen.has(i.field) && seen.add(i.field));
}
