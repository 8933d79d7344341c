// Outcomes of actions, shown for a few seconds in a corner (announced to screen readers).
import { signal } from '@preact/signals';

interface Toast {
  id: number;
  kind: 'ok' | 'error';
  text: string;
}

const toasts = signal<Toast[]>([]);
let next = 1;

export function toast(kind: Toast['kind'], text: string): void {
  const id = next++;
  toasts.value = [...toasts.value, { id, kind, text }].slice(-4);
  window.setTimeout(
    () => (toasts.value = toasts.value.filter((t) => t.id !== id)),
    kind === 'ok' ? 4000 : 8000,
  );
}

export function Toasts() {
  return (
    <div class="toasts" role="status" aria-live="polite">
      {toasts.value.map((t) => (
        <div key={t.id} class={`toast toast-${t.kind}`} data-kind={t.kind}>
          {t.text}
        </div>
      ))}
    </div>
  );
}

/** Runs an action, then says how it went. */
export async function withOutcome<T>(
  what: string,
  action: () => Promise<T>,
  ok: (value: T) => string,
): Promise<T | undefined> {
  try {
    const value = await action();
    toast('ok', ok(value));
    return value;
  } catch (error) {
    toast('error', `${what} failed: ${(error as Error).message}`);
    return undefined;
  }
}
