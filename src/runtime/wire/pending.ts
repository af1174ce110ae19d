// A connection's requests that wait for their answers, by id. Ids are handed out in sequence, so
// nearly all of the requests in flight fit a ring of slots indexed by the id's low bits: no Map
// entry is made and dropped per request (a Map's churn and hashing were a measurable part of a
// call). A request whose slot is still taken by an older one that is not answered yet goes to an
// overflow Map; the ring doubles (up to MAX_SLOTS) when that happens, for the next ones.

/** What the table holds: anything that knows the id it was sent with. */
export interface Identified {
  id: number;
}

const MIN_SLOTS = 64;
const MAX_SLOTS = 8192;

export class PendingTable<T extends Identified> {
  #slots: (T | undefined)[] = [];
  #mask = -1;
  readonly #overflow = new Map<number, T>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(entry: T): void {
    if (this.#mask < 0) this.#resize(MIN_SLOTS);
    const slot = entry.id & this.#mask;
    if (this.#slots[slot] === undefined) this.#slots[slot] = entry;
    else {
      this.#overflow.set(entry.id, entry);
      if (this.#slots.length < MAX_SLOTS) this.#resize(this.#slots.length * 2);
    }
    this.#size++;
  }

  /** Removes and returns the entry sent with `id`, if it is still here. */
  take(id: number): T | undefined {
    if (this.#mask >= 0) {
      const slot = id & this.#mask;
      const entry = this.#slots[slot];
      if (entry !== undefined && entry.id === id) {
        this.#slots[slot] = undefined;
        this.#size--;
        return entry;
      }
    }
    const entry = this.#overflow.get(id);
    if (entry !== undefined) {
      this.#overflow.delete(id);
      this.#size--;
    }
    return entry;
  }

  /** Removes and returns every entry `expired` says yes to. */
  removeWhere(expired: (entry: T) => boolean): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.#slots.length; i++) {
      const entry = this.#slots[i];
      if (entry !== undefined && expired(entry)) {
        this.#slots[i] = undefined;
        out.push(entry);
      }
    }
    for (const [id, entry] of this.#overflow) {
      if (expired(entry)) {
        this.#overflow.delete(id);
        out.push(entry);
      }
    }
    this.#size -= out.length;
    return out;
  }

  /** Removes and returns everything. */
  clear(): T[] {
    return this.removeWhere(() => true);
  }

  #resize(size: number): void {
    const old = this.#slots;
    this.#slots = new Array<T | undefined>(size).fill(undefined);
    this.#mask = size - 1;
    // Re-seat the entries; any that collide stay in (or go to) the overflow map.
    for (const entry of old) {
      if (entry === undefined) continue;
      const slot = entry.id & this.#mask;
      if (this.#slots[slot] === undefined) this.#slots[slot] = entry;
      else this.#overflow.set(entry.id, entry);
    }
    for (const [id, entry] of this.#overflow) {
      const slot = id & this.#mask;
      if (this.#slots[slot] === undefined) {
        this.#slots[slot] = entry;
        this.#overflow.delete(id);
      }
    }
  }
}
