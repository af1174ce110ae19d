// One coarse timer for many deadlines: thousands of calls in flight cost one interval, not one
// setTimeout each. Expiry is checked every SWEEP_MS, so a deadline fires at most that much late.
const SWEEP_MS = 20;

export class DeadlineTracker<K> {
  readonly #entries = new Map<K, { deadline: number; expire: () => void }>();
  #timer: NodeJS.Timeout | undefined;

  get size(): number {
    return this.#entries.size;
  }

  /** Calls `expire` once `deadline` (absolute ms) has passed, unless `remove(key)` came first. */
  add(key: K, deadline: number, expire: () => void): void {
    this.#entries.set(key, { deadline, expire });
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
      this.#timer.unref();
    }
  }

  /** True if the key was still tracked (its deadline had not fired). */
  remove(key: K): boolean {
    return this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
    this.#stop();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.#entries) {
      if (entry.deadline <= now) {
        this.#entries.delete(key);
        entry.expire();
      }
    }
    if (this.#entries.size === 0) this.#stop();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
