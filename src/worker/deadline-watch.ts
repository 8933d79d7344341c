/** Something with a point in time (ms since the epoch) at which it wants to be told. */
export interface HasDeadline {
  /** When `onDeadline` is due; Infinity for never. */
  readonly deadline: number;
  /** Called once `deadline` has passed; may move `deadline` later (or to Infinity). */
  onDeadline(): void;
}

/**
 * One timer for the time limits of every running task, set for the earliest deadline. Tasks
 * mostly end long before their limits and mostly share the same limits, so a new task rarely
 * moves the timer: a timer per task would be an allocation and a timer-list update per task,
 * for a callback that almost never runs.
 */
export class DeadlineWatch {
  private readonly members = new Set<HasDeadline>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  add(member: HasDeadline): void {
    this.members.add(member);
    if (member.deadline < this.timerAt) this.arm(member.deadline);
  }

  delete(member: HasDeadline): void {
    // The timer stays, even with no members left: when it fires it finds nothing due and re-arms
    // for whoever is left. Disarming here would re-arm for nearly every task.
    this.members.delete(member);
  }

  get size(): number {
    return this.members.size;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    // Unref'd: a running task keeps the process alive by itself; a limit alone must not.
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - Date.now())).unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const member of this.members) {
      // A timer that fired late may find a second deadline (the hard limit after the soft one) due too.
      for (let round = 0; round < 2 && member.deadline <= now; round++) member.onDeadline();
      if (member.deadline === Infinity || member.deadline <= now) this.members.delete(member);
      else if (member.deadline < next) next = member.deadline;
    }
    if (next !== Infinity) this.arm(next);
  }
}
