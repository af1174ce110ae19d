// Hosts and gateways reach the embedded placement process through this client.
import type { ActorProxy } from '../../interface/interface.ts';
import { PeerPool } from '../../wire/connect.ts';
import type { LocalIdentity } from '../../wire/handshake.ts';
import type { Position } from '../../wire/schemas.ts';
import { serviceProxy } from '../../wire/service-client.ts';
import { PlacementInterface, type ActorPlacement, type HostInfo, type Placement } from '../protocol.ts';

const PLACEMENT_CALL_TIMEOUT_MS = 5000;

export class EmbeddedPlacementClient implements Placement {
  readonly #pool: PeerPool;
  readonly #api: ActorProxy<typeof PlacementInterface>;

  constructor(url: string, identity: LocalIdentity) {
    this.#pool = new PeerPool({ identity });
    this.#api = serviceProxy(PlacementInterface, () => this.#pool.get(url), PLACEMENT_CALL_TIMEOUT_MS, () => this.#pool.ready(url));
  }

  register(host: HostInfo): Promise<number> {
    return this.#api.register(host);
  }

  renew(hostId: string, load: number): Promise<boolean> {
    return this.#api.renew(hostId, load);
  }

  async unregister(hostId: string): Promise<void> {
    await this.#api.unregister(hostId);
  }

  locate(iface: string, key: string, from = ''): Promise<Position> {
    return this.#api.locate(iface, key, from);
  }

  claim(iface: string, key: string, hostId: string): Promise<Position> {
    return this.#api.claim(iface, key, hostId);
  }

  epochNow(): Promise<number> {
    return this.#api.epochNow();
  }

  async release(iface: string, key: string, hostId: string, epoch: number): Promise<void> {
    await this.#api.release(iface, key, hostId, epoch);
  }

  members(): Promise<HostInfo[]> {
    return this.#api.members();
  }

  actors(iface: string): Promise<ActorPlacement[]> {
    return this.#api.actors(iface);
  }

  describe(iface: string): Promise<string> {
    return this.#api.describe(iface);
  }

  async announce(): Promise<void> {
    // Embedded placement knows hosts only; gateways are found through the run state.
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
