// A task's progress, 0-100, with its message. Width set through the CSSOM (allowed by the CSP).
export function ProgressBar({ value, status, message }: { value: number; status: string; message?: string }) {
  const pct = Math.max(0, Math.min(100, Number.isFinite(value) ? value : 0));
  return (
    <div class="progress-wrap">
      <div
        class={`progress progress-${status}`}
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
      >
        <div class="progress-fill" style={{ width: `${pct}%` }} />
      </div>
      <span class="progress-text" data-progress={pct}>
        {Math.round(pct)}%{message ? ` · ${message}` : ''}
      </span>
    </div>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return (
    <span class={`badge badge-${status}`} data-status={status}>
      {status.replace('_', ' ')}
    </span>
  );
}
