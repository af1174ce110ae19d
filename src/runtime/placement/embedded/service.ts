// The embedded placement service: host leases, actor positions and load, in one process.
// Positions live only as long as the lease of the host that holds them.
import { KoalaError } from '../../errors/errors.ts';
import type { ActorImplementation } from '../../interface/interface.ts';
import type { Position } from '../../wire/schemas.ts';
import type { ActorPlacement, HostInfo, PlacementInterface } from '../protocol.ts';
import type { Candidate, Strategy } from '../strategies.ts';
import { ByInterface } from '../../util/by-interface.ts';

interface HostLease extends Candidate {
  expiresAt: number;
  /** The activation count the host last reported (with its renewal). */
  reported: number;
  /** Positions placement holds for the host now: known at once, where reports come every TTL / 3. */
  placed: number;
}

/**
 * A granted position: the lease of the host that holds it (whose id and address it names), its
 * epoch and when it was granted. One small object per actor; a Position is made when one is asked for.
 */
interface Grant {
  readonly lease: HostLease;
  readonly epoch: number;
  readonly since: number;
}

function positionOf(grant: Grant): Position {
  return { host: grant.lease.info.id, address: grant.lease.info.address, epoch: grant.epoch };
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
  /** Positions by interface, then key (no identity string per actor or per lookup). */
  readonly #positions = new ByInterface<Grant>();
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

  locate(iface: string, key: string, from = ''): Position {
    const now = this.#now();
    const existing = this.#positions.get(iface, key);
    if (existing !== undefined && this.#isLive(existing, now)) return positionOf(existing);
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
    // One of `candidates`: a lease.
    const chosen = this.#opts.strategy(candidates, iface, key, now, from) as HostLease;
    if (chosen.info.interfaces.some((i) => i.name === iface && i.stateless)) {
      // Stateless workers have no single owner: any host will do, and nothing is recorded.
      return { host: chosen.info.id, address: chosen.info.address, epoch: 0 };
    }
    return positionOf(this.#record(iface, key, existing, chosen, now));
  }

  claim(iface: string, key: string, hostId: string): Position {
    const now = this.#now();
    const existing = this.#positions.get(iface, key);
    if (existing !== undefined && this.#isLive(existing, now)) return positionOf(existing);
    const lease = this.#hosts.get(hostId);
    if (lease === undefined || lease.expiresAt <= now) throw new KoalaError('LEASE_LOST', `host ${hostId} holds no placement lease; it must register again`);
    if (!lease.info.interfaces.some((i) => i.name === iface)) throw new KoalaError('UNKNOWN_INTERFACE', `host ${hostId} does not serve ${iface}`);
    return positionOf(this.#record(iface, key, existing, lease, now));
  }

  /**
   * Records a new position in place of `before` (a dead one, if any), keeping each host's count of
   * positions. The strategy balances on max(reported activations, positions held): during a burst
   * of new activations the reports lag (every TTL / 3) and a stale "least loaded" host would take
   * most of the burst; the counts do not.
   */
  #record(iface: string, key: string, before: Grant | undefined, lease: HostLease, now: number): Grant {
    if (before !== undefined) this.#countPlaced(before.lease, -1);
    const grant: Grant = { lease, epoch: ++this.#epoch, since: now };
    this.#positions.set(iface, key, grant);
    this.#countPlaced(lease, 1);
    return grant;
  }

  #countPlaced(lease: HostLease, delta: number): void {
    // A lease that was dropped (or replaced by a new registration) counts nothing any more.
    if (this.#hosts.get(lease.info.id) !== lease) return;
    lease.placed += delta;
    this.#updateLoad(lease);
  }

  #updateLoad(lease: HostLease): void {
    lease.info.load = Math.max(lease.reported, lease.placed);
  }

  /** Whether a grant still stands: its host's lease (that very registration) still runs. */
  #isLive(grant: Grant, now: number): boolean {
    return grant.lease.expiresAt > now && this.#hosts.get(grant.lease.info.id) === grant.lease;
  }

  /** The newest epoch granted so far (every later grant has a greater one). */
  epochNow(): number {
    return this.#epoch;
  }

  release(iface: string, key: string, hostId: string, epoch: number): null {
    const existing = this.#positions.get(iface, key);
    if (existing && existing.lease.info.id === hostId && existing.epoch === epoch) {
      this.#positions.delete(iface, key);
      this.#countPlaced(existing.lease, -1);
    }
    return null;
  }

  members(): HostInfo[] {
    return [...this.#hosts.values()].map((l) => l.info);
  }

  actors(iface: string): ActorPlacement[] {
    const list: ActorPlacement[] = [];
    const now = this.#now();
    this.#positions.forEach((grant, name, key) => {
      if ((iface === '' || name === iface) && this.#isLive(grant, now)) list.push({ iface: name, key, host: grant.lease.info.id, since: grant.since });
    });
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
    this.#positions.forEach((grant, iface, key) => {
      // Grants made to any registration of the host (a re-registration replaces the lease).
      if (grant.lease.info.id === hostId) {
        this.#positions.delete(iface, key);
        released++;
      }
    });
    this.#opts.log?.(`host ${hostId} ${why}; released ${released} position${released === 1 ? '' : 's'}`);
  }

  #interfaceList(): string {
    const names = new Set<string>();
    for (const lease of this.#hosts.values()) for (const i of lease.info.interfaces) names.add(i.name);
    return names.size ? `served: ${[...names].sort().join(', ')}` : 'no hosts are registered';
  }
}
