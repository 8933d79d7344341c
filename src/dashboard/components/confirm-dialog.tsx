// A modal question before a destructive action (purging a queue).
import { signal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';

interface Question {
  title: string;
  body: string;
  confirm: string;
  resolve: (yes: boolean) => void;
}

const question = signal<Question | null>(null);

export function confirmAction(title: string, body: string, confirm: string): Promise<boolean> {
  question.value?.resolve(false);
  return new Promise((resolve) => (question.value = { title, body, confirm, resolve }));
}

export function ConfirmDialog() {
  const ref = useRef<HTMLDialogElement>(null);
  const q = question.value;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (q && !dialog.open) dialog.showModal();
    if (!q && dialog.open) dialog.close();
  }, [q]);
  const answer = (yes: boolean) => {
    q?.resolve(yes);
    question.value = null;
  };
  return (
    <dialog ref={ref} class="dialog" onCancel={() => answer(false)} aria-labelledby="confirm-title">
      {q && (
        <form method="dialog" onSubmit={(e) => e.preventDefault()}>
          <h2 id="confirm-title">{q.title}</h2>
          <p>{q.body}</p>
          <div class="dialog-actions">
            <button type="button" class="btn" onClick={() => answer(false)}>
              Cancel
            </button>
            <button type="button" class="btn btn-danger" data-confirm onClick={() => answer(true)}>
              {q.confirm}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}
