// The embedded placement service: host leases, actor positions and load, in one process.
// Positions live only as long as the lease of the host that holds them.
import { KoalaError } from '../../errors/errors.ts';
import type { ActorImplementation } from '../../interface/interface.ts';
import type { Position } from '../../wire/schemas.ts';
import type { ActorPlacement, HostInfo, PlacementInterface } from '../protocol.ts';
import type { Candidate, Strategy } from '../strategies.ts';

interface HostLease extends Candidate {
  expiresAt: number;
  /** The activation count the host last reported (with its renewal). */
  reported: number;
  /** Positions placement holds for the host now: known at once, where reports come every TTL / 3. */
  placed: number;
}

export interface EmbeddedPlacementOptions {
  leaseTtlMs: number;
  strategy: Strategy;
  now?: () => number;
  log?: (line: string) => void;
}

export class EmbeddedPlacementService implements ActorImplementation<typeof PlacementInterface> {
  readonly #opts: EmbeddedPlacementOptions;
  readonly #hosts = new Map<string, HostLease>();
  /** Positions by identity, each with when it was granted (for listings): one map, one entry. */
  readonly #positions = new Map<string, { position: Position; since: number }>();
  // Epochs start from the clock so that they keep increasing across placement restarts.
  #epoch = Date.now() * 1000;

  constructor(opts: EmbeddedPlacementOptions) {
    this.#opts = opts;
  }

  #now(): number {
    return this.#opts.now ? this.#opts.now() : Date.now();
  }

  register(host: HostInfo): number {
    const now = this.#now();
    this.#hosts.set(host.id, { info: host, since: now, expiresAt: now + this.#opts.leaseTtlMs, reported: host.load, placed: 0 });
    this.#opts.log?.(`host ${host.id} joined (${host.address}; serves ${host.interfaces.map((i) => i.name).join(', ') || 'nothing'})`);
    return this.#opts.leaseTtlMs;
  }

  renew(hostId: string, load: number): boolean {
    const lease = this.#hosts.get(hostId);
    if (lease === undefined) return false;
    const now = this.#now();
    if (lease.expiresAt <= now) {
      // Too late, even if the sweep has not noticed yet: locate() may already have granted this
      // host's positions elsewhere, so the lease cannot be revived. The host must fence and re-register.
      this.#drop(hostId, 'lease expired');
      return false;
    }
    lease.reported = load;
    this.#updateLoad(lease);
    lease.expiresAt = now + this.#opts.leaseTtlMs;
    return true;
  }

  unregister(hostId: string): null {
    if (this.#hosts.has(hostId)) this.#drop(hostId, 'left');
    return null;
  }

  locate(iface: string, key: string): Position {
    const id = `${iface}/${key}`;
    const now = this.#now();
    const existing = this.#live(id);
    if (existing !== undefined) return existing;
    const candidates: HostLease[] = [];
    let known = false;
    for (const lease of this.#hosts.values()) {
      if (!lease.info.interfaces.some((i) => i.name === iface)) continue;
      known = true;
      if (lease.expiresAt > now) candidates.push(lease);
    }
    if (candidates.length === 0) {
      if (known) throw new KoalaError('NO_HOST', `no live host serves ${iface} right now; retry when a host is up`);
      throw new KoalaError('UNKNOWN_INTERFACE', `no host serves interface ${iface} (${this.#interfaceList()})`);
    }
    const chosen = this.#opts.strategy(candidates, iface, key, now);
    if (chosen.info.interfaces.some((i) => i.name === iface && i.stateless)) {
      // Stateless workers have no single owner: any host will do, and nothing is recorded.
      return { host: chosen.info.id, address: chosen.info.address, epoch: 0 };
    }
    const position: Position = { host: chosen.info.id, address: chosen.info.address, epoch: ++this.#epoch };
    this.#record(id, position);
    return position;
  }

  claim(iface: string, key: string, hostId: string): Position {
    const existing = this.#live(`${iface}/${key}`);
    if (existing !== undefined) return existing;
    const lease = this.#hosts.get(hostId);
    if (lease === undefined || lease.expiresAt <= this.#now()) throw new KoalaError('LEASE_LOST', `host ${hostId} holds no placement lease; it must register again`);
    if (!lease.info.interfaces.some((i) => i.name === iface)) throw new KoalaError('UNKNOWN_INTERFACE', `host ${hostId} does not serve ${iface}`);
    const position: Position = { host: hostId, address: lease.info.address, epoch: ++this.#epoch };
    this.#record(`${iface}/${key}`, position);
    return position;
  }

  /**
   * Records a position, keeping each host's count of positions. The strategy balances on
   * max(reported activations, positions held): during a burst of new activations the reports lag
   * (every TTL / 3) and a stale "least loaded" host would take most of the burst; the counts do not.
   */
  #record(id: string, position: Position): void {
    const before = this.#positions.get(id);
    if (before !== undefined) this.#countPlaced(before.position.host, -1);
    this.#positions.set(id, { position, since: Date.now() });
    this.#countPlaced(position.host, 1);
  }

  #forget(id: string, position: Position): void {
    this.#positions.delete(id);
    this.#countPlaced(position.host, -1);
  }

  #countPlaced(hostId: string, delta: number): void {
    const lease = this.#hosts.get(hostId);
    if (lease === undefined) return;
    lease.placed += delta;
    this.#updateLoad(lease);
  }

  #updateLoad(lease: HostLease): void {
    lease.info.load = Math.max(lease.reported, lease.placed);
  }

  /** The recorded position of an identity, if its host's lease still runs. */
  #live(id: string): Position | undefined {
    const existing = this.#positions.get(id)?.position;
    if (existing === undefined) return undefined;
    const owner = this.#hosts.get(existing.host);
    return owner !== undefined && owner.expiresAt > this.#now() ? existing : undefined;
  }

  release(iface: string, key: string, hostId: string, epoch: number): null {
    const id = `${iface}/${key}`;
    const existing = this.#positions.get(id)?.position;
    if (existing && existing.host === hostId && existing.epoch === epoch) this.#forget(id, existing);
    return null;
  }

  members(): HostInfo[] {
    return [...this.#hosts.values()].map((l) => l.info);
  }

  actors(iface: string): ActorPlacement[] {
    const list: ActorPlacement[] = [];
    for (const [id, pos] of this.#positions) {
      const slash = id.indexOf('/');
      const name = id.slice(0, slash);
      if ((iface === '' || name === iface) && this.#live(id) !== undefined) list.push({ iface: name, key: id.slice(slash + 1), host: pos.position.host, since: pos.since });
    }
    return list;
  }

  describe(iface: string): string {
    for (const lease of this.#hosts.values()) {
      const found = lease.info.interfaces.find((i) => i.name === iface);
      if (found) return found.protocol;
    }
    throw new KoalaError('UNKNOWN_INTERFACE', `no host serves interface ${iface} (${this.#interfaceList()})`);
  }

  /** Drops hosts whose lease ran out, and with them every position they held. */
  expire(): void {
    const now = this.#now();
    for (const [id, lease] of this.#hosts) {
      if (lease.expiresAt <= now) this.#drop(id, 'lease expired');
    }
  }

  get positionCount(): number {
    return this.#positions.size;
  }

  #drop(hostId: string, why: string): void {
    this.#hosts.delete(hostId);
    let released = 0;
    for (const [id, pos] of this.#positions) {
      if (pos.position.host === hostId) {
        this.#positions.delete(id);
        released++;
      }
    }
    this.#opts.log?.(`host ${hostId} ${why}; released ${released} position${released === 1 ? '' : 's'}`);
  }

  #interfaceList(): string {
    const names = new Set<string>();
    for (const lease of this.#hosts.values()) for (const i of lease.info.interfaces) names.add(i.name);
    return names.size ? `served: ${[...names].sort().join(', ')}` : 'no hosts are registered';
  }
}
