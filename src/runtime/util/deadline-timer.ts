// One timer for many deadlines, armed at the earliest one it was told of, instead of a sweep that
// ticks at a fixed period. A periodic sweep (it was every 20 ms) wakes every process with a call
// in flight fifty times a second; on a 2-core VM each such wake-up can hold a core that the next
// hop of some call needs, and at one call in flight those collisions were a visible part of the
// round trip's tail. Calls are nearly always answered long before their deadline, so this timer
// fires about once per deadline budget, not per period.
//
// `expect(deadline)` is on the hot path: when deadlines come in increasing order (one budget for
// every call, the common case) it is one comparison.

export class DeadlineTimer {
  /** Fails what has expired at `now`; returns the earliest deadline still to come (Infinity: none). */
  readonly #sweep: (now: number) => number;
  #timer: NodeJS.Timeout | undefined;
  /** When the timer fires (ms since the epoch); Infinity while it is not armed. */
  #at = Infinity;

  constructor(sweep: (now: number) => number) {
    this.#sweep = sweep;
  }

  /** Something now has `deadline` (ms since the epoch; 0 or less: none): the timer fires no later than that. */
  expect(deadline: number): void {
    if (deadline > 0 && deadline < this.#at) this.#arm(deadline);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#at = at;
    // Unreferenced: whatever waits for these deadlines (a socket, a running turn) keeps the process
    // alive; the timer must not keep it alive after they are gone.
    this.#timer = setTimeout(this.#fire, Math.max(1, at - Date.now())).unref();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#at = Infinity;
    // Timers run on the monotonic clock and deadlines on the wall clock: a deadline the sweep finds
    // still ahead (by a millisecond) is simply armed again.
    const next = this.#sweep(Date.now());
    if (next < Infinity) this.expect(next);
  };
}
