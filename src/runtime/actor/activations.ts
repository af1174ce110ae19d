// The activations of one host, keyed by identity. Concurrent first calls to one identity share a
// single activation attempt, which is what keeps activation unique within a host.
import type { Position } from '../wire/schemas.ts';
import { Activation } from './activation.ts';

export class ActivationTable {
  readonly #active = new Map<string, Activation>();
  readonly #starting = new Map<string, Promise<Activation | Position>>();

  get size(): number {
    return this.#active.size;
  }

  get(identity: string): Activation | undefined {
    return this.#active.get(identity);
  }

  /** The live activation, or what `start` yields: a new activation, or the position of the actor's real owner. */
  obtain(identity: string, start: () => Promise<Activation | Position>): Promise<Activation | Position> {
    const live = this.#active.get(identity);
    if (live !== undefined) return Promise.resolve(live);
    let starting = this.#starting.get(identity);
    if (starting === undefined) {
      starting = start().then(
        (activation) => {
          this.#starting.delete(identity);
          if (activation instanceof Activation) this.#active.set(identity, activation);
          return activation;
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

  delete(activation: Activation): void {
    if (this.#active.get(activation.identity) === activation) this.#active.delete(activation.identity);
  }

  values(): Activation[] {
    return [...this.#active.values()];
  }
}
