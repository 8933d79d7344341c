// A services module, loaded by path like Celery's -A:
//   aiecs worker --services ./examples/my-services.mjs
// It registers at import, in the worker and in every process-pool child.
import { registerService } from 'aiecs';

class Summarizer {
  // Task name `summarize`: input_data, context, and the task context (signal, progress, stream, …).
  async summarize(input, context, task) {
    const sentences = String(input.text ?? '')
      .split(/(?<=[.!?])\s+/)
      .filter(Boolean);
    const keep = Math.max(1, Math.min(Number(context.sentences ?? 2), sentences.length));
    const picked = [];
    for (const [i, sentence] of sentences.slice(0, keep).entries()) {
      task.signal.throwIfAborted();
      task.stream(sentence + ' ');
      task.progress(Math.round((100 * (i + 1)) / keep), `sentence ${i + 1} of ${keep}`);
      picked.push(sentence);
    }
    return { summary: picked.join(' '), sentences: sentences.length };
  }
}

registerService('docs', 'summarizer', Summarizer, { description: 'first-N-sentences summary (example)' });
