// The activations of one host, keyed by identity. Concurrent first calls to one identity share a
// single activation attempt, and calls that arrive while an activation is closing wait for the
// close (which includes giving its position back) before a new one starts: within a host, an
// identity is never active twice.
import type { Position } from '../wire/schemas.ts';
import { Activation } from './activation.ts';

export class ActivationTable {
  readonly #active = new Map<string, Activation>();
  /**
   * The same activations by interface, then key: a call's lookup then hashes only its key (the
   * interface name is a string seen before), not a fresh `iface/key` string.
   */
  readonly #byIface = new Map<string, Map<string, Activation>>();
  readonly #starting = new Map<string, Promise<Activation | Position>>();
  readonly #closing = new Map<string, Promise<void>>();

  get size(): number {
    return this.#active.size;
  }

  /** The live activation, if there is one (the fast path: no promise). */
  live(identity: string): Activation | undefined {
    const a = this.#active.get(identity);
    return a !== undefined && a.state === 'active' && !this.#closing.has(identity) ? a : undefined;
  }

  /** `live` by interface and key (a host's hot path). */
  liveAt(iface: string, key: string): Activation | undefined {
    const a = this.#byIface.get(iface)?.get(key);
    return a !== undefined && a.state === 'active' && (this.#closing.size === 0 || !this.#closing.has(a.identity)) ? a : undefined;
  }

  #add(activation: Activation): void {
    this.#active.set(activation.identity, activation);
    let keys = this.#byIface.get(activation.iface.name);
    if (keys === undefined) this.#byIface.set(activation.iface.name, (keys = new Map()));
    keys.set(activation.key, activation);
  }

  #remove(activation: Activation): void {
    if (this.#active.get(activation.identity) !== activation) return;
    this.#active.delete(activation.identity);
    this.#byIface.get(activation.iface.name)?.delete(activation.key);
  }

  /** The activation being started for this identity, if one is. */
  starting(identity: string): Promise<Activation | Position> | undefined {
    return this.#starting.get(identity);
  }

  /** The live activation, or what `start` yields: a new activation, or the position of the real owner. */
  async obtain(identity: string, start: () => Promise<Activation | Position>): Promise<Activation | Position> {
    for (;;) {
      const closing = this.#closing.get(identity);
      if (closing !== undefined) {
        await closing.catch(() => {});
        continue;
      }
      const live = this.live(identity);
      if (live !== undefined) return live;
      let starting = this.#starting.get(identity);
      if (starting === undefined) {
        starting = start().finally(() => this.#starting.delete(identity));
        starting.then((a) => a instanceof Activation && this.#add(a), () => {});
        this.#starting.set(identity, starting);
      }
      return starting;
    }
  }

  /** Runs `close` once for this activation; calls for the identity wait until it is done. */
  retire(activation: Activation, close: () => Promise<void>): Promise<void> {
    const id = activation.identity;
    const existing = this.#closing.get(id);
    if (existing !== undefined) return existing;
    const closing = close().finally(() => {
      this.#remove(activation);
      this.#closing.delete(id);
    });
    this.#closing.set(id, closing);
    return closing;
  }

  values(): Activation[] {
    return [...this.#active.values()];
  }
}
