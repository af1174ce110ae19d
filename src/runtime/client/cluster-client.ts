// A client of a running cluster, through its gateway: typed proxies for code outside the cluster
// (tests, scripts, servers) and dynamic calls for tools such as `koala call`.
import type { AvroProtocol } from '../interface/avro-types.ts';
import { defineInterface, type ActorInterface, type ActorProxy } from '../interface/interface.ts';
import { canonicalKey, createProxy, type Invoker } from '../interface/proxy.ts';
import type { ActorPlacement, HostInfo } from '../placement/protocol.ts';
import { GatewayInterface } from '../gateway/protocol.ts';
import { connect } from '../wire/connect.ts';
import type { AvroMessageTypes } from '../interface/avro.ts';
import { NO_HEADERS } from '../wire/frame.ts';
import type { Peer } from '../wire/peer.ts';
import { checkArgs, methodOf, ValueAnswer } from '../wire/rpc.ts';
import { serviceProxy } from '../wire/service-client.ts';
import { methodCodec } from '../wire/value-codec.ts';

export interface ClusterClientOptions {
  url: string;
  cluster: string;
  secret: string;
  /** Per-call deadline unless a call says otherwise (default 30 s). */
  timeoutMs?: number;
  name?: string;
  /** For a gateway with TLS whose certificate Node does not trust already (NODE_EXTRA_CA_CERTS works too). */
  tls?: { ca?: string | Buffer };
}

export class ClusterClient {
  readonly #peer: Peer;
  readonly #timeoutMs: number;
  readonly #gateway: ActorProxy<typeof GatewayInterface>;
  readonly #described = new Map<string, Promise<ActorInterface>>();

  private constructor(peer: Peer, timeoutMs: number) {
    this.#peer = peer;
    this.#timeoutMs = timeoutMs;
    this.#gateway = serviceProxy(GatewayInterface, async () => this.#peer, timeoutMs);
  }

  static async connect(opts: ClusterClientOptions): Promise<ClusterClient> {
    const peer = await connect(opts.url, { identity: { cluster: opts.cluster, secret: opts.secret, node: opts.name ?? `client-${process.pid}`, role: 'client' }, ...(opts.tls ? { tls: opts.tls } : {}) });
    return new ClusterClient(peer, opts.timeoutMs ?? 30_000);
  }

  /** A typed proxy. Deadline: `timeoutMs`, else the interface's per-method or default timeout, else the client's. */
  getProxy<I extends ActorInterface>(iface: I, id: string | number, opts?: { timeoutMs?: number }): ActorProxy<I> {
    const timeoutMs = opts?.timeoutMs;
    // Proxies are made per call (`client.getProxy(I, id).m()`): without options they share one invoker.
    return createProxy(iface, id, timeoutMs === undefined ? this.#invokeDefault : (target, key, message, args) => this.#invoke(target, key, message, args, timeoutMs));
  }

  readonly #invokeDefault: Invoker = (target, key, message, args) =>
    this.#invoke(target, key, message, args, target.options.methodTimeoutsMs?.[message.name] ?? target.options.timeoutMs ?? this.#timeoutMs);

  /** The interface as the cluster's hosts define it, fetched once from the gateway. */
  describe(ifaceName: string): Promise<ActorInterface> {
    let found = this.#described.get(ifaceName);
    if (found === undefined) {
      found = this.#gateway.describe(ifaceName).then((json) => defineInterface(JSON.parse(json) as AvroProtocol));
      found.catch(() => this.#described.delete(ifaceName));
      this.#described.set(ifaceName, found);
    }
    return found;
  }

  /** A call by names, with arguments already of the method's Avro types. */
  async call(ifaceName: string, id: string | number, method: string, args: unknown[], opts: { timeoutMs?: number } = {}): Promise<unknown> {
    const iface = await this.describe(ifaceName);
    return this.#invoke(iface, canonicalKey(id), methodOf(iface, method), args, opts.timeoutMs ?? this.#timeoutMs);
  }

  members(): Promise<HostInfo[]> {
    return this.#gateway.members();
  }

  /** Live actor positions, of one interface or (no argument) of all. */
  actors(iface = ''): Promise<ActorPlacement[]> {
    return this.#gateway.actors(iface);
  }

  close(): void {
    this.#peer.close(1000, 'client done');
  }

  #invoke(iface: ActorInterface, key: string, message: AvroMessageTypes, args: unknown[], timeoutMs: number): Promise<unknown> {
    try {
      checkArgs(iface, message, args);
    } catch (err) {
      return Promise.reject(err);
    }
    const now = Date.now();
    const deadline = now + timeoutMs;
    if (message.oneWay) {
      this.#peer.requestArgs({ iface: iface.name, key, method: message.name, chain: '', deadline, epoch: 0, headers: NO_HEADERS }, methodCodec(message), args, undefined, now);
      return Promise.resolve(undefined);
    }
    // The call's record is also its envelope: one object per call. No chain id: the host that runs
    // the call starts the chain (every call from outside starts one).
    const call = new ValueAnswer(iface, key, message, deadline, '', NO_HEADERS);
    const result = call.promise();
    this.#peer.requestArgs(call, call.codec, args, call, now);
    return result;
  }
}
