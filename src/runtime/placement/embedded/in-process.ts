// The embedded placement service called directly, without a process or a socket in between: for a
// single-process runtime (benchmarks, embedding a host in a test or a tool).
import type { Position } from '../../wire/schemas.ts';
import type { ActorPlacement, HostInfo, Placement } from '../protocol.ts';
import type { EmbeddedPlacementService } from './service.ts';

export class InProcessPlacement implements Placement {
  readonly #service: EmbeddedPlacementService;

  constructor(service: EmbeddedPlacementService) {
    this.#service = service;
  }

  async register(host: HostInfo): Promise<number> {
    return this.#service.register(host);
  }

  async renew(hostId: string, load: number): Promise<boolean> {
    return this.#service.renew(hostId, load);
  }

  async unregister(hostId: string): Promise<void> {
    this.#service.unregister(hostId);
  }

  async locate(iface: string, key: string, from = ''): Promise<Position> {
    return this.#service.locate(iface, key, from);
  }

  async claim(iface: string, key: string, hostId: string): Promise<Position> {
    return this.#service.claim(iface, key, hostId);
  }

  async epochNow(): Promise<number> {
    return this.#service.epochNow();
  }

  async release(iface: string, key: string, hostId: string, epoch: number): Promise<void> {
    this.#service.release(iface, key, hostId, epoch);
  }

  async members(): Promise<HostInfo[]> {
    return this.#service.members();
  }

  async actors(iface: string): Promise<ActorPlacement[]> {
    return this.#service.actors(iface);
  }

  async describe(iface: string): Promise<string> {
    return this.#service.describe(iface);
  }

  async announce(): Promise<void> {
    // Embedded placement knows hosts only.
  }

  async close(): Promise<void> {}
}
