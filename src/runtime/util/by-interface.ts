// Values per actor, kept by interface name, then key. A lookup hashes only the key: the interface
// name is a string seen before (its hash is cached), and no `iface/key` string is built per call
// or kept per actor. Used on the hot paths: a router's positions, a host's activations, embedded
// placement's grants.

export class ByInterface<V> {
  readonly #byIface = new Map<string, Map<string, V>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(iface: string, key: string): V | undefined {
    return this.#byIface.get(iface)?.get(key);
  }

  set(iface: string, key: string, value: V): void {
    let keys = this.#byIface.get(iface);
    if (keys === undefined) this.#byIface.set(iface, (keys = new Map()));
    // One hash lookup, not `has` then `set`: these maps hold every actor of a process.
    const before = keys.size;
    keys.set(key, value);
    if (keys.size !== before) this.#size++;
  }

  /** Deletes the entry if it still holds `value` (someone may have replaced it since). */
  deleteIf(iface: string, key: string, value: V): void {
    const keys = this.#byIface.get(iface);
    if (keys?.get(key) !== value) return;
    keys.delete(key);
    this.#size--;
  }

  /** Deletes the entry, whatever it holds. */
  delete(iface: string, key: string): void {
    if (this.#byIface.get(iface)?.delete(key) === true) this.#size--;
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
