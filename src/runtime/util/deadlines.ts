// One coarse timer for many deadlines: thousands of calls in flight cost one interval, not one
// setTimeout each. Expiry is checked every SWEEP_MS, so a deadline fires at most that much late.
const SWEEP_MS = 20;

export class DeadlineTracker {
  readonly #entries = new Map<number, { deadline: number; expire: () => void }>();
  #next = 0;
  #timer: NodeJS.Timeout | undefined;

  get size(): number {
    return this.#entries.size;
  }

  /** Calls `expire` once `deadline` (absolute ms) has passed, unless `remove` came first. */
  add(deadline: number, expire: () => void): number {
    const handle = ++this.#next;
    this.#entries.set(handle, { deadline, expire });
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
      this.#timer.unref();
    }
    return handle;
  }

  /** True if the deadline was still tracked (it had not fired). */
  remove(handle: number): boolean {
    return this.#entries.delete(handle);
  }

  /** Settles like `promise`, or rejects with `timeout()` once `deadline` passes; later outcomes are dropped. */
  race<T>(promise: Promise<T>, deadline: number, timeout: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const handle = this.add(deadline, () => reject(timeout()));
      promise.then(
        (value) => this.remove(handle) && resolve(value),
        (err: unknown) => this.remove(handle) && reject(err),
      );
    });
  }

  #sweep(): void {
    const now = Date.now();
    for (const [handle, entry] of this.#entries) {
      if (entry.deadline <= now) {
        this.#entries.delete(handle);
        entry.expire();
      }
    }
    if (this.#entries.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
