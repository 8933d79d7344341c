import type { TaskContext } from '../core/task-context.js';
import type { CodeReview } from './code-review-engine.js';

export type {
  CodeReview,
  DiagnosticCategory,
  FileReview,
  Finding,
  FunctionMetrics,
  Hotspot,
  ReviewDiagnostic,
} from './code-review-engine.js';

/**
 * code/code_reviewer: TypeScript diagnostics and complexity figures. The compiler (tens of MB)
 * loads on the first review, not when a worker starts.
 */
export class CodeReviewer {
  async review_code(
    input: Record<string, unknown>,
    _context: Record<string, unknown>,
    task: TaskContext,
  ): Promise<CodeReview> {
    const { reviewCode } = await import('./code-review-engine.js');
    return reviewCode(input, task);
  }
}
