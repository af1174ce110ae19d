// The gateway holds no plugins: it learns each interface's protocol from placement (the hosts
// publish them) the first time a client uses it, and keeps it.
import type { AvroProtocol } from '../interface/avro-types.ts';
import { defineInterface, type ActorInterface } from '../interface/interface.ts';
import type { Placement } from '../placement/protocol.ts';

export class InterfaceCatalog {
  readonly #placement: Placement;
  readonly #known = new Map<string, Promise<ActorInterface>>();

  constructor(placement: Placement) {
    this.#placement = placement;
  }

  get(name: string): Promise<ActorInterface> {
    let found = this.#known.get(name);
    if (found === undefined) {
      found = this.#placement.describe(name).then((json) => defineInterface(JSON.parse(json) as AvroProtocol));
      // A failure (no host serves it yet) is not remembered: the next request asks again.
      found.catch(() => this.#known.delete(name));
      this.#known.set(name, found);
    }
    return found;
  }
}
