/**
 * Task state changes out of the event bridge, for `aiecs events` and `GET /api/events`: one event
 * per change of status or attempt (queued, started, retrying, attempt 2 started, ended), not one
 * per progress step or streamed token.
 */
import { isTerminal } from '../core/task.js';
import type { BridgeEvent, EventBridge, ProgressEvent } from './event-bridge.js';

export class StateFeed {
  /** The last status and attempt told per task still under way. */
  private readonly last = new Map<string, string>();
  private readonly listener: (event: BridgeEvent) => void;

  constructor(
    private readonly bridge: EventBridge,
    onChange: (event: ProgressEvent) => void,
    /** Tasks under way remembered; past it the oldest are forgotten (they may be told twice). */
    private readonly maxTasks = 100_000,
  ) {
    this.listener = (event) => {
      if (event.kind !== 'progress') return;
      const p = event.payload;
      const key = `${p.status}:${p.attempt}`;
      if (this.last.get(p.task_id) === key) return;
      if (isTerminal(p.status)) this.last.delete(p.task_id);
      else {
        this.last.delete(p.task_id);
        this.last.set(p.task_id, key);
        if (this.last.size > this.maxTasks) this.last.delete(this.last.keys().next().value!);
      }
      onChange(p);
    };
    bridge.on('event', this.listener);
  }

  close(): void {
    this.bridge.off('event', this.listener);
    this.last.clear();
  }
}
