// A JSON value as text, collapsible. Never HTML: whatever a task returns is shown as characters.
import { toJson } from '../format.js';

const MAX_CHARS = 200_000;

export function JsonView({ value, open = true, label }: { value: unknown; open?: boolean; label: string }) {
  const text = toJson(value);
  const cut = text.length > MAX_CHARS;
  const lines = text.split('\n').length;
  return (
    <details class="json" open={open}>
      <summary>
        {label} <span class="muted">({lines === 1 ? `${text.length} chars` : `${lines} lines`})</span>
      </summary>
      <pre class="code">
        {cut ? `${text.slice(0, MAX_CHARS)}\n… (${text.length - MAX_CHARS} more characters)` : text}
      </pre>
    </details>
  );
}
