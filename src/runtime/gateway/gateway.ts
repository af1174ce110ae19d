// The gateway: the cluster's front door. It holds no actors; it forwards each call to the host
// that owns the target (via the shared router) and answers `koala.Gateway` itself.
import { randomBytes } from 'node:crypto';
import type { ActorImplementation } from '../interface/interface.ts';
import type { ActorPlacement, HostInfo, Placement } from '../placement/protocol.ts';
import { ActorRouter } from '../routing/router.ts';
import type { Logger } from '../util/log.ts';
import { PeerPool } from '../wire/connect.ts';
import type { LocalIdentity } from '../wire/handshake.ts';
import type { Peer } from '../wire/peer.ts';
import { replyError } from '../wire/rpc.ts';
import type { Envelope } from '../wire/schemas.ts';
import { WireServer } from '../wire/server.ts';
import { ServiceTable } from '../wire/services.ts';
import { GatewayInterface } from './protocol.ts';

export interface GatewayOptions {
  identity: LocalIdentity;
  host: string;
  port: number;
  placement: Placement;
  requestTimeoutMs: number;
  log: Logger;
}

class GatewayService implements ActorImplementation<typeof GatewayInterface> {
  readonly #placement: Placement;

  constructor(placement: Placement) {
    this.#placement = placement;
  }

  describe(iface: string): Promise<string> {
    return this.#placement.describe(iface);
  }

  members(): Promise<HostInfo[]> {
    return this.#placement.members();
  }

  actors(iface: string): Promise<ActorPlacement[]> {
    return this.#placement.actors(iface);
  }
}

export class Gateway {
  readonly #opts: GatewayOptions;
  readonly #pool: PeerPool;
  readonly #router: ActorRouter;
  readonly #services: ServiceTable;
  #server: WireServer | undefined;

  constructor(opts: GatewayOptions) {
    this.#opts = opts;
    this.#pool = new PeerPool({ identity: opts.identity, log: opts.log.warn });
    this.#router = new ActorRouter({ placement: opts.placement, pool: this.#pool });
    this.#services = new ServiceTable().add(GatewayInterface, new GatewayService(opts.placement));
  }

  get url(): string {
    if (!this.#server) throw new Error('gateway is not started');
    return this.#server.url;
  }

  async start(): Promise<void> {
    this.#server = await WireServer.listen({
      identity: this.#opts.identity,
      host: this.#opts.host,
      port: this.#opts.port,
      onRequest: (env, peer) => this.#onRequest(env, peer),
      log: this.#opts.log.warn,
    });
    // A fresh suffix, as for hosts: gateways of several machines are distinct members.
    await this.#opts.placement.announce({ id: `${this.#opts.identity.node}-${randomBytes(3).toString('hex')}`, role: 'gateway', address: this.url, pid: process.pid });
  }

  async stop(): Promise<void> {
    await this.#server?.close();
    await this.#pool.close();
    await this.#opts.placement.close();
  }

  #onRequest(env: Envelope, peer: Peer): void {
    if (this.#services.has(env.iface)) {
      this.#services.dispatch(env, peer);
      return;
    }
    if (env.kind === 'CANCEL') return;
    const deadline = env.deadline > 0 ? env.deadline : Date.now() + this.#opts.requestTimeoutMs;
    this.#router.forward({ iface: env.iface, key: env.key, method: env.method, chain: env.chain, deadline, epoch: 0, headers: env.headers, payload: env.payload }).then(
      (answer) => {
        if (env.kind === 'REQUEST') peer.reply(env, answer.kind, answer.payload);
      },
      (err: unknown) => replyError(peer, env, err, `${env.iface}/${env.key}`),
    );
  }
}
