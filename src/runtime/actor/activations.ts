// The activations of one host, by identity. Concurrent first calls to one identity share a
// single activation attempt, and calls that arrive while an activation is closing wait for the
// close (which includes giving its position back) before a new one starts: within a host, an
// identity is never active twice.
import type { Position } from '../wire/schemas.ts';
import { ByInterface } from '../util/by-interface.ts';
import { Activation } from './activation.ts';

export class ActivationTable {
  /** The live activations (see ByInterface: no identity string per lookup). */
  readonly #active = new ByInterface<Activation>();
  readonly #starting = new Map<string, Promise<Activation | Position>>();
  readonly #closing = new Map<string, Promise<void>>();

  get size(): number {
    return this.#active.size;
  }

  /** The live activation, if there is one (the fast path: no promise). */
  live(iface: string, key: string): Activation | undefined {
    const a = this.#active.get(iface, key);
    return a !== undefined && a.state === 'active' && (this.#closing.size === 0 || !this.#closing.has(a.identity)) ? a : undefined;
  }

  /** The activation being started for this identity, if one is. */
  starting(identity: string): Promise<Activation | Position> | undefined {
    return this.#starting.get(identity);
  }

  /** The live activation, or what `start` yields: a new activation, or the position of the real owner. */
  async obtain(iface: string, key: string, identity: string, start: () => Promise<Activation | Position>): Promise<Activation | Position> {
    for (;;) {
      const closing = this.#closing.get(identity);
      if (closing !== undefined) {
        await closing.catch(() => {});
        continue;
      }
      const live = this.live(iface, key);
      if (live !== undefined) return live;
      let starting = this.#starting.get(identity);
      if (starting === undefined) {
        // Live (found by `live`) before anyone waiting on `starting` runs.
        starting = start().then(
          (a) => {
            this.#starting.delete(identity);
            if (a instanceof Activation) this.#active.set(a.iface.name, a.key, a);
            return a;
          },
          (err: unknown) => {
            this.#starting.delete(identity);
            throw err;
          },
        );
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
      this.#active.deleteIf(activation.iface.name, activation.key, activation);
      this.#closing.delete(id);
    });
    this.#closing.set(id, closing);
    return closing;
  }

  values(): Activation[] {
    return this.#active.values();
  }
}
