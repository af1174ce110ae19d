// Placement on a real Consul agent, for clusters of several machines.
//
// - Every host registers as a service `koala-<cluster>` (tags: `host`, `iface:<name>`; meta: wire
//   address, group, pid, start time) with a TTL check it keeps passing. It owns a session bound to
//   that check (behavior "release", with a lock-delay). Its record `koala/<cluster>/hosts/<id>`
//   holds the session and its load. (Not the check's output: an agent syncs a steady check's
//   output only every `check_update_interval`, 5 minutes by default.)
// - An actor's position is the KV key `koala/<cluster>/actors/<iface>/<id>`, locked with the
//   owner's session; its value names host and address; its ModifyIndex is the position's epoch.
// - Callers read the key (and cache it); when nobody holds it they pick a host with the strategy
//   over the members they watch with blocking queries, and that host claims the key when the call
//   arrives. Two callers that pick different hosts cannot both win: the lock decides.
//   The locks a host asks for in one event-loop turn travel together, up to 64 per transaction
//   (txn-batcher.ts), so a burst of activations costs few Raft writes.
// - A host that stops passing its check loses its session, and with it every lock; Consul's
//   lock-delay keeps the keys from being taken again at once, covering a host that is slow to fence.
import { readFileSync } from 'node:fs';
import { KoalaError } from '../../errors/errors.ts';
import { PROTOCOL_VERSION } from '../../wire/schemas.ts';
import type { Position } from '../../wire/schemas.ts';
import type { ActorPlacement, HostInfo, Placement } from '../protocol.ts';
import type { Candidate, Strategy } from '../strategies.ts';
import { TxnBatcher, type TxnBatchStats } from './txn-batcher.ts';
import { ConsulApi, type ConsulTls, type ServiceEntry } from './consul-api.ts';

export interface ConsulPlacementOptions {
  address: string;
  token?: string;
  /** HTTPS to the agents (see ConsulConnection). */
  tls?: ConsulTls;
  cluster: string;
  /** How callers here choose a host for a new activation; without one, `locate` refuses (admin use). */
  strategy?: Strategy;
  /** TTL of a host's health check: its lease. */
  leaseTtlMs: number;
  /** How long Consul refuses to hand out a lock released by a failed session. */
  lockDelayMs: number;
}

/** `koala/<cluster>/hosts/<id>`: what a host publishes besides its service registration. */
interface HostRecord {
  session: string;
  load: number;
}

interface PositionValue {
  host: string;
  address: string;
  since: string;
}

const CLAIM_RETRY_MS = 200;

/** Koala's version and wire protocol version, published in every member's service meta. */
const VERSION_META = {
  version: (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version,
  protocol: String(PROTOCOL_VERSION),
};

/** This process's host, once registered; `recordLocked`: its record is locked by its session. */
interface OwnHost {
  hostId: string;
  session: string;
  address: string;
  load: number;
  recordLocked: boolean;
}

export class ConsulPlacement implements Placement {
  readonly #opts: ConsulPlacementOptions;
  readonly #api: ConsulApi;
  /** Claims of one event-loop turn share transactions (txn-batcher.ts). */
  readonly #claims: TxnBatcher;
  /** Releases in their own batcher: a release never waits behind, or rolls back, a batch of claims. */
  readonly #releases: TxnBatcher;
  readonly #service: string;
  readonly #prefix: string;
  /** This process's host and its session, once it registered. */
  #own: OwnHost | undefined;
  /** Loads the hosts published, by host id. */
  #loads = new Map<string, number>();
  #unwatchLoads: (() => void) | undefined;
  /** A gateway announced through this placement, kept passing until close(). */
  #announced: { id: string; timer: NodeJS.Timeout } | undefined;
  #members = new Map<string, Candidate>();
  #membersReady: Promise<void> | undefined;
  #unwatch: (() => void) | undefined;

  constructor(opts: ConsulPlacementOptions) {
    this.#opts = opts;
    this.#api = new ConsulApi(opts.address, { ...(opts.token ? { token: opts.token } : {}), ...(opts.tls ? { tls: opts.tls } : {}) });
    this.#claims = new TxnBatcher((ops) => this.#api.txn(ops));
    this.#releases = new TxnBatcher((ops) => this.#api.txn(ops));
    this.#service = `koala-${opts.cluster}`;
    this.#prefix = `koala/${opts.cluster}`;
  }

  #actorKey(iface: string, key: string): string {
    return `${this.#prefix}/actors/${iface}/${encodeURIComponent(key)}`;
  }

  async register(host: HostInfo): Promise<number> {
    // Registering again (our agent went away, or our session ended): end the old session first, so
    // that the locks it may still hold are released (after the lock-delay) rather than mistaken
    // for ours.
    if (this.#own !== undefined) await this.#api.destroySession(this.#own.session).catch(() => {});
    for (const i of host.interfaces) {
      await this.#api.kvPut(`${this.#prefix}/interfaces/${i.name}`, JSON.stringify({ fingerprint: i.fingerprint, protocol: i.protocol, stateless: i.stateless }));
    }
    await this.#api.registerService({
      name: this.#service,
      id: host.id,
      tags: ['host', ...host.interfaces.map((i) => `iface:${i.name}`), ...host.interfaces.filter((i) => i.stateless).map((i) => `stateless:${i.name}`)],
      meta: { address: host.address, group: host.group, pid: String(host.pid), startedAt: String(host.startedAt), ...VERSION_META },
      ttlMs: this.#opts.leaseTtlMs,
      deregisterAfterMs: this.#opts.leaseTtlMs * 10,
    });
    if (!(await this.#api.passCheck(host.id, 'registered'))) throw new KoalaError('UNREACHABLE', `Consul agent ${this.#api.address} refused the health check of ${host.id} it just registered`);
    const session = await this.#api.createSession({ name: `koala-${host.id}`, serviceId: host.id, lockDelayMs: this.#opts.lockDelayMs });
    this.#own = { hostId: host.id, session, address: host.address, load: host.load, recordLocked: false };
    // Recorded so that anyone (the supervisor of a crashed host) can end the session.
    await this.#writeRecord(this.#own);
    return this.#opts.leaseTtlMs;
  }

  /**
   * The host's record, locked by its session: it goes when the session ends, as its actor keys do.
   * After registering again under the same id, the lock-delay of the old session's lock refuses
   * the lock for a while: the record is written unlocked then, and locked at a later renewal.
   */
  async #writeRecord(own: OwnHost): Promise<void> {
    const key = `${this.#prefix}/hosts/${own.hostId}`;
    const record = JSON.stringify({ session: own.session, load: own.load } satisfies HostRecord);
    own.recordLocked = await this.#api.kvPut(key, record, own.session);
    if (!own.recordLocked) await this.#api.kvPut(key, record);
  }

  async renew(hostId: string, load: number): Promise<boolean> {
    // An agent that does not know our check (we registered on another, now gone) cannot keep us.
    if (!(await this.#api.passCheck(hostId, 'alive'))) return false;
    const own = this.#own;
    // Passing the check revives the check, not a session that already ended with it.
    if (own === undefined || own.hostId !== hostId || !(await this.#api.sessionAlive(own.session))) return false;
    if (load !== own.load || !own.recordLocked) {
      own.load = load;
      await this.#writeRecord(own);
    }
    return true;
  }

  async unregister(hostId: string): Promise<void> {
    const record = (await this.#api.kvGet(`${this.#prefix}/hosts/${hostId}`))?.value;
    const session = this.#own?.hostId === hostId ? this.#own.session : record ? (JSON.parse(record) as HostRecord).session : undefined;
    if (session && this.#own?.hostId !== hostId) {
      // Someone else (the supervisor of a host that died) ends it: the host is known to be gone, so
      // its keys are deleted outright rather than left to the lock-delay of a destroyed session.
      const held = (await this.#api.kvList(`${this.#prefix}/actors/`)).filter((e) => e.session === session);
      for (let i = 0; i < held.length; i += 32) {
        await this.#api.txn(held.slice(i, i + 32).flatMap((e) => [{ verb: 'check-session' as const, key: e.key, session }, { verb: 'delete-cas' as const, key: e.key, index: e.modifyIndex }])).catch(() => {});
      }
    }
    if (session) await this.#api.destroySession(session);
    await this.#api.deregisterService(hostId).catch(() => {});
    await this.#api.kvDelete(`${this.#prefix}/hosts/${hostId}`).catch(() => {});
    if (this.#own?.hostId === hostId) this.#own = undefined;
  }

  async locate(iface: string, key: string, from = ''): Promise<Position> {
    const entry = await this.#api.kvGet(this.#actorKey(iface, key));
    if (entry?.session && entry.value) {
      const value = JSON.parse(entry.value) as PositionValue;
      return { host: value.host, address: value.address, epoch: entry.modifyIndex };
    }
    const candidates = await this.#candidates(iface);
    const strategy = this.#opts.strategy;
    if (strategy === undefined) throw new KoalaError('INTERNAL', `this process opened Consul placement without a strategy, so it cannot place ${iface}/${key}`);
    const chosen = strategy(candidates, iface, key, Date.now(), from);
    // Count the suggestion as load at once: hosts publish their load only with their renewals
    // (every TTL / 3), and until the next one a burst would see the same "least loaded" host and
    // send it most of the new actors. The host's next published load replaces this estimate.
    chosen.info.load++;
    // A suggestion, not a record: the host claims the key when the call reaches it.
    return { host: chosen.info.id, address: chosen.info.address, epoch: 0 };
  }

  async claim(iface: string, key: string, hostId: string): Promise<Position> {
    const own = this.#own;
    if (own === undefined || own.hostId !== hostId) throw new KoalaError('LEASE_LOST', `host ${hostId} holds no Consul session here; it must register again`);
    const actorKey = this.#actorKey(iface, key);
    const address = own.address;
    const deadline = Date.now() + this.#opts.lockDelayMs + 2 * CLAIM_RETRY_MS;
    for (;;) {
      const value: PositionValue = { host: hostId, address, since: new Date().toISOString() };
      const result = await this.#claims.lock({ key: actorKey, value: JSON.stringify(value), session: own.session });
      if (result.ok) return { host: hostId, address, epoch: result.entry.modifyIndex };
      const holder = await this.#api.kvGet(actorKey);
      if (holder?.session && holder.value) {
        const held = JSON.parse(holder.value) as PositionValue;
        // Held under another of our own sessions (one that ended or is ending): not ours to use.
        if (held.host !== hostId) return { host: held.host, address: held.address, epoch: holder.modifyIndex };
      }
      // Nobody holds it, yet the lock was refused (the lock-delay after a failed owner), or a stale
      // session of ours still holds it: wait until it is free.
      if (Date.now() > deadline) throw new KoalaError('NOT_OWNER', `${iface}/${key} could not be claimed (${result.what}); retry`);
      await new Promise((r) => setTimeout(r, CLAIM_RETRY_MS));
    }
  }

  /** How many locks and transactions this placement's claims took so far. */
  get claimStats(): Readonly<TxnBatchStats> {
    return this.#claims.stats;
  }

  /** How many releases and transactions this placement's releases took so far. */
  get releaseStats(): Readonly<TxnBatchStats> {
    return this.#releases.stats;
  }

  async release(iface: string, key: string, _hostId: string, epoch: number): Promise<void> {
    // Only the write that made this epoch is deleted: a newer owner's key is left alone. Releases
    // of one turn (a sweep of idle actors, a host stopping) share transactions.
    await this.#releases.release(this.#actorKey(iface, key), epoch);
  }

  async members(): Promise<HostInfo[]> {
    const [entries, records] = await Promise.all([this.#api.healthService(this.#service), this.#api.kvList(`${this.#prefix}/hosts/`)]);
    const loads = new Map(records.map((r) => [r.key.slice(r.key.lastIndexOf('/') + 1), r.value ? (JSON.parse(r.value) as HostRecord).load : 0]));
    return entries.map((e) => ({ ...hostInfo(e), load: loads.get(e.id) ?? 0 }));
  }

  async announce(member: { id: string; role: 'gateway'; address: string; pid: number }): Promise<void> {
    await this.#api.registerService({
      name: this.#service,
      id: member.id,
      tags: [member.role],
      meta: { address: member.address, pid: String(member.pid), startedAt: String(Date.now()), group: member.role, ...VERSION_META },
      ttlMs: this.#opts.leaseTtlMs,
      deregisterAfterMs: this.#opts.leaseTtlMs * 10,
    });
    const pass = async () => {
      // An agent that lost the registration (it restarted, or we moved to another): register again.
      if (!(await this.#api.passCheck(member.id, 'alive').catch(() => true))) await this.announce(member).catch(() => {});
    };
    await pass();
    clearInterval(this.#announced?.timer);
    this.#announced = { id: member.id, timer: setInterval(() => void pass(), Math.max(100, Math.floor(this.#opts.leaseTtlMs / 3))) };
    this.#announced.timer.unref();
  }

  async actors(iface: string): Promise<ActorPlacement[]> {
    const prefix = `${this.#prefix}/actors/`;
    const entries = await this.#api.kvList(iface ? `${prefix}${iface}/` : prefix);
    return entries
      .filter((e) => e.session && e.value)
      .map((e) => {
        const [name = '', encoded = ''] = e.key.slice(prefix.length).split('/');
        const value = JSON.parse(e.value!) as PositionValue;
        return { iface: name, key: decodeURIComponent(encoded), host: value.host, since: Date.parse(value.since) };
      });
  }

  async describe(iface: string): Promise<string> {
    const entry = await this.#api.kvGet(`${this.#prefix}/interfaces/${iface}`);
    if (!entry?.value) {
      const served = [...new Set([...this.#members.values()].flatMap((c) => c.info.interfaces.map((i) => i.name)))].sort();
      throw new KoalaError('UNKNOWN_INTERFACE', `no host serves interface ${iface} (${served.length ? `served: ${served.join(', ')}` : 'no hosts are registered'})`);
    }
    return (JSON.parse(entry.value) as { protocol: string }).protocol;
  }

  async close(): Promise<void> {
    if (this.#announced) {
      clearInterval(this.#announced.timer);
      await this.#api.deregisterService(this.#announced.id).catch(() => {});
      this.#announced = undefined;
    }
    this.#unwatch?.();
    this.#unwatchLoads?.();
    this.#api.close();
  }

  /** Healthy hosts serving `iface`, from the membership watch (started on first use). */
  async #candidates(iface: string): Promise<Candidate[]> {
    await this.#watchMembers();
    const all = [...this.#members.values()];
    const serving = all.filter((c) => c.info.interfaces.some((i) => i.name === iface));
    if (serving.length === 0) {
      const served = [...new Set(all.flatMap((c) => c.info.interfaces.map((i) => i.name)))].sort();
      throw new KoalaError('UNKNOWN_INTERFACE', `no live host serves interface ${iface} (${served.length ? `served: ${served.join(', ')}` : 'no hosts are registered'})`);
    }
    return serving;
  }

  #watchMembers(): Promise<void> {
    this.#unwatchLoads ??= this.#api.watchPrefix(
      `${this.#prefix}/hosts/`,
      (entries) => {
        this.#loads = new Map(entries.map((e) => [e.key.slice(e.key.lastIndexOf('/') + 1), e.value ? (JSON.parse(e.value) as HostRecord).load : 0]));
        for (const c of this.#members.values()) c.info.load = this.#loads.get(c.info.id) ?? 0;
      },
      () => {},
    );
    this.#membersReady ??= new Promise<void>((resolve) => {
      this.#unwatch = this.#api.watchService(
        this.#service,
        (entries) => {
          const next = new Map<string, Candidate>();
          for (const e of entries) {
            if (!e.tags.includes('host') || e.status !== 'passing') continue;
            const info = hostInfo(e);
            info.load = this.#loads.get(info.id) ?? 0;
            next.set(info.id, { info, since: info.startedAt });
          }
          this.#members = next;
          resolve();
        },
        () => resolve(), // keep going with what we know; the watch retries with backoff
      );
    });
    return this.#membersReady;
  }
}

function hostInfo(e: ServiceEntry): HostInfo {
  const stateless = new Set(e.tags.filter((t) => t.startsWith('stateless:')).map((t) => t.slice('stateless:'.length)));
  return {
    id: e.id,
    group: e.meta.group ?? '',
    address: e.meta.address ?? '',
    pid: Number(e.meta.pid ?? 0),
    startedAt: Number(e.meta.startedAt ?? 0),
    load: 0,
    role: e.tags.includes('gateway') ? 'gateway' : 'host',
    health: e.status,
    interfaces: e.tags
      .filter((t) => t.startsWith('iface:'))
      .map((t) => t.slice('iface:'.length))
      .map((name) => ({ name, fingerprint: '', protocol: '', stateless: stateless.has(name) })),
  };
}
