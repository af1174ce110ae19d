// The placement API as an Avro protocol: the embedded placement process serves it over the
// ordinary Koala wire, so placement needs no transport of its own.
import { defineInterface } from '../interface/interface.ts';
import type { Position } from '../wire/schemas.ts';
import { positionSchema } from '../wire/schemas.ts';

export const interfaceInfoSchema = {
  type: 'record',
  name: 'InterfaceInfo',
  namespace: 'koala',
  fields: [
    { name: 'name', type: 'string' },
    { name: 'fingerprint', type: 'string' },
    { name: 'protocol', type: 'string' },
    { name: 'stateless', type: 'boolean', default: false },
  ],
} as const;

export const hostInfoSchema = {
  type: 'record',
  name: 'HostInfo',
  namespace: 'koala',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'group', type: 'string' },
    { name: 'address', type: 'string' },
    { name: 'pid', type: 'int' },
    { name: 'startedAt', type: 'long' },
    { name: 'load', type: 'int' },
    { name: 'interfaces', type: { type: 'array', items: 'InterfaceInfo' } },
    { name: 'role', type: 'string', default: 'host' },
    { name: 'health', type: 'string', default: 'passing' },
  ],
} as const;

export const actorPlacementSchema = {
  type: 'record',
  name: 'ActorPlacement',
  namespace: 'koala',
  fields: [
    { name: 'iface', type: 'string' },
    { name: 'key', type: 'string' },
    { name: 'host', type: 'string' },
    { name: 'since', type: 'long' },
  ],
} as const;

/** One live actor position, for listings (`koala actors`). */
export interface ActorPlacement {
  iface: string;
  key: string;
  host: string;
  /** When the position was granted (ms since the epoch). */
  since: number;
}

export const PlacementInterface = defineInterface({
  protocol: 'Placement',
  namespace: 'koala',
  types: [positionSchema, interfaceInfoSchema, hostInfoSchema, actorPlacementSchema],
  messages: {
    register: { request: [{ name: 'host', type: 'HostInfo' }], response: 'int' },
    renew: { request: [{ name: 'host', type: 'string' }, { name: 'load', type: 'int' }], response: 'boolean' },
    unregister: { request: [{ name: 'host', type: 'string' }], response: 'null' },
    // `from`: the calling host's id ('' from a gateway or a client), for the `prefer-local` strategy.
    locate: { request: [{ name: 'iface', type: 'string' }, { name: 'key', type: 'string' }, { name: 'from', type: 'string' }], response: 'Position' },
    claim: { request: [{ name: 'iface', type: 'string' }, { name: 'key', type: 'string' }, { name: 'host', type: 'string' }], response: 'Position' },
    release: {
      request: [{ name: 'iface', type: 'string' }, { name: 'key', type: 'string' }, { name: 'host', type: 'string' }, { name: 'epoch', type: 'long' }],
      response: 'null',
    },
    members: { request: [], response: { type: 'array', items: 'HostInfo' } },
    describe: { request: [{ name: 'iface', type: 'string' }], response: 'string' },
    epochNow: { request: [], response: 'long' },
    actors: { request: [{ name: 'iface', type: 'string' }], response: { type: 'array', items: 'ActorPlacement' } },
  },
});

export interface InterfaceInfo {
  name: string;
  fingerprint: string;
  /** The protocol's JSON, so that clients can encode calls without loading plugins. */
  protocol: string;
  /** Stateless worker: any serving host takes any call; no position is recorded. */
  stateless: boolean;
}

export interface HostInfo {
  id: string;
  group: string;
  address: string;
  pid: number;
  startedAt: number;
  load: number;
  interfaces: InterfaceInfo[];
  /** `host`, or `gateway` (gateways are members too, with Consul placement; they hold no actors). */
  role: string;
  /** `passing`, `warning` or `critical` (Consul's health of the member). */
  health: string;
}

/**
 * What hosts and gateways need from placement. The embedded service implements it in a child
 * process; Consul implements it later against a real agent.
 */
export interface Placement {
  /** Registers a host; resolves with its lease TTL in ms. */
  register(host: HostInfo): Promise<number>;
  /** Renews the host's lease; false means placement no longer knows the host (re-register). */
  renew(hostId: string, load: number): Promise<boolean>;
  unregister(hostId: string): Promise<void>;
  /**
   * Where the actor lives, or — if it lives nowhere yet — the host it should live on, chosen by the
   * strategy. (Embedded placement records that choice; Consul only suggests it, and the host claims.)
   * `from` is the calling host's id, if the caller is a host: `prefer-local` places the actor there.
   */
  locate(iface: string, key: string, from?: string): Promise<Position>;
  /**
   * Called by a host about to activate an actor: makes `hostId` its owner unless someone owns it
   * already, and returns the owner. Only the owner may activate it.
   */
  claim(iface: string, key: string, hostId: string): Promise<Position>;
  /**
   * Placement that records the positions `locate` chooses (embedded) implements this: the newest
   * epoch granted so far. A host asks it after registering; a position granted to the host later
   * than that may come with a gateway's first call to the actor, and the host may then activate
   * the actor without claiming it (see `Host`'s grant floor). Consul placement only suggests
   * positions, so its hosts always claim.
   */
  epochNow?(): Promise<number>;
  /** Gives up a position (after deactivation); ignored unless host and epoch still match. */
  release(iface: string, key: string, hostId: string, epoch: number): Promise<void>;
  members(): Promise<HostInfo[]>;
  /** The protocol JSON of an interface some live host serves. */
  describe(iface: string): Promise<string>;
  /** Live positions, of one interface or ('') of all. */
  actors(iface: string): Promise<ActorPlacement[]>;
  /**
   * Makes a member that holds no actors (a gateway) visible to the cluster until `close()`; it
   * keeps its own health check passing. Placement that has no membership of its own ignores it.
   */
  announce(member: { id: string; role: 'gateway'; address: string; pid: number }): Promise<void>;
  close(): Promise<void>;
}
