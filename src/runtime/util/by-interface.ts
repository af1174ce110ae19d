// Values per actor, kept by interface name, then key. A lookup hashes only the key: the interface
// name is a string seen before (its hash is cached), and no `iface/key` string is built per call
// or kept per actor. Used on the hot paths: a router's positions, a host's activations, embedded
// placement's grants.

export class ByInterface<V> {
  // An interface's map is never dropped once made, so the last one looked up can be remembered:
  // callers look up many keys of one interface in a row, and a comparison costs less than a lookup.
  readonly #byIface = new Map<string, Map<string, V>>();
  #lastIface: string | undefined;
  #lastKeys: Map<string, V> | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  #keys(iface: string): Map<string, V> | undefined {
    if (iface === this.#lastIface) return this.#lastKeys;
    const keys = this.#byIface.get(iface);
    if (keys !== undefined) {
      this.#lastIface = iface;
      this.#lastKeys = keys;
    }
    return keys;
  }

  get(iface: string, key: string): V | undefined {
    return this.#keys(iface)?.get(key);
  }

  set(iface: string, key: string, value: V): void {
    let keys = this.#keys(iface);
    if (keys === undefined) this.#byIface.set(iface, (keys = new Map()));
    // One hash lookup, not `has` then `set`: these maps hold every actor of a process.
    const before = keys.size;
    keys.set(key, value);
    if (keys.size !== before) this.#size++;
  }

  /** Deletes the entry if it still holds `value` (someone may have replaced it since). */
  deleteIf(iface: string, key: string, value: V): void {
    const keys = this.#keys(iface);
    if (keys?.get(key) !== value) return;
    keys.delete(key);
    this.#size--;
  }

  /** Deletes the entry, whatever it holds. */
  delete(iface: string, key: string): void {
    if (this.#keys(iface)?.delete(key) === true) this.#size--;
  }

  /**
   * Deletes up to `count` entries, those set first (an entry keeps its place when it is set again):
   * the oldest interface's first, then the next's. Returns how many went.
   */
  dropOldest(count: number): number {
    let dropped = 0;
    for (const keys of this.#byIface.values()) {
      for (const key of keys.keys()) {
        if (dropped === count) break;
        keys.delete(key);
        dropped++;
      }
    }
    this.#size -= dropped;
    return dropped;
  }

  /** Calls `fn` for every entry (it may delete the entry it is given). */
  forEach(fn: (value: V, iface: string, key: string) => void): void {
    for (const [iface, keys] of this.#byIface) for (const [key, value] of keys) fn(value, iface, key);
  }

  values(): V[] {
    const all: V[] = [];
    for (const keys of this.#byIface.values()) for (const v of keys.values()) all.push(v);
    return all;
  }
}
