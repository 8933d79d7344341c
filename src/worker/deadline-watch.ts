/** Something (a TaskRun) with a point in time (ms since the epoch) at which it wants to be told. */
export interface Deadlined {
  /** When `onDeadline` is due; Infinity for never. */
  readonly deadline: number;
  /** Called once `deadline` has passed; may move `deadline` later (or to Infinity). */
  onDeadline(): void;
  /** Where the watch keeps this member (-1 when not watched); only the watch writes it. */
  watchSlot: number;
}

/**
 * One timer for the time limits of every running task, set for the earliest deadline. Tasks
 * mostly end long before their limits and mostly share the same limits, so a new task rarely
 * moves the timer: a timer per task would be an allocation and a timer-list update per task,
 * for a callback that almost never runs. Members sit in an array and know their slot: adding and
 * removing hundreds a second then neither hashes nor rehashes, as a Set does.
 */
export class DeadlineWatch {
  private readonly members: Deadlined[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  add(member: Deadlined): void {
    if (member.watchSlot >= 0) return;
    member.watchSlot = this.members.push(member) - 1;
    if (member.deadline < this.timerAt) this.arm(member.deadline);
  }

  delete(member: Deadlined): void {
    // The timer stays, even with no members left: when it fires it finds nothing due and re-arms
    // for whoever is left. Disarming here would re-arm for nearly every task.
    const slot = member.watchSlot;
    if (slot < 0 || this.members[slot] !== member) return;
    const last = this.members.pop()!;
    if (last !== member) {
      this.members[slot] = last;
      last.watchSlot = slot;
    }
    member.watchSlot = -1;
  }

  get size(): number {
    return this.members.length;
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
    // A copy: telling a member may end it, and ending removes it from the array.
    for (const member of [...this.members]) {
      // A timer that fired late may find a second deadline (the hard limit after the soft one) due too.
      for (let round = 0; round < 2 && member.deadline <= now; round++) member.onDeadline();
      if (member.deadline === Infinity || member.deadline <= now) this.delete(member);
      else if (member.deadline < next) next = member.deadline;
    }
    if (next !== Infinity) this.arm(next);
  }
}
