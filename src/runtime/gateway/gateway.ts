// The gateway: the cluster's front door. It holds no actors. On its public port it serves the HTTP
// bridge, gateway plugins' routes and static files, and accepts WebSocket connections: client
// sessions on /v1/session, and cluster clients (`koala call`, ClusterClient) on any other path. A
// second, internal port takes the hosts' connections (pushes to sessions). Calls are forwarded
// to the actors' hosts by the shared router.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import fastify, { type FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { newChainId } from '../actor/call-context.ts';
import type { GatewaySettings } from '../config/manifest.ts';
import { resolvePluginFiles, importPlugin, PluginError } from '../host/plugins.ts';
import type { ActorImplementation, ActorInterface, ActorProxy } from '../interface/interface.ts';
import { createProxy } from '../interface/proxy.ts';
import type { ActorPlacement, HostInfo, Placement } from '../placement/protocol.ts';
import { ActorRouter } from '../routing/router.ts';
import { advertisedHost, isLoopback } from '../util/advertise.ts';
import type { Logger } from '../util/log.ts';
import { PeerPool } from '../wire/connect.ts';
import type { LocalIdentity } from '../wire/handshake.ts';
import type { DecodedEnvelope } from '../wire/frame.ts';
import type { EnvelopeKind } from '../wire/schemas.ts';
import type { AnswerSink, Peer } from '../wire/peer.ts';
import { replyError } from '../wire/rpc.ts';
import { WireServer } from '../wire/server.ts';
import { ServiceTable } from '../wire/services.ts';
import { registerBrowserClient } from './browser-client.ts';
import { registerHttpBridge } from './http-bridge.ts';
import { InterfaceCatalog } from './interfaces.ts';
import { isGatewayPlugin, type GatewayCluster } from './plugin.ts';
import { GatewayInterface } from './protocol.ts';
import { SESSION_PATH, signFirstPacket } from './session-protocol.ts';
import { SessionServer } from './sessions.ts';

export interface GatewayOptions {
  identity: LocalIdentity;
  placement: Placement;
  settings: GatewaySettings;
  /** Project root: plugin, static and TLS paths are relative to it. */
  root: string;
  log: Logger;
}

class GatewayService implements ActorImplementation<typeof GatewayInterface> {
  readonly #placement: Placement;
  readonly #sessions: () => SessionServer | undefined;

  constructor(placement: Placement, sessions: () => SessionServer | undefined) {
    this.#placement = placement;
    this.#sessions = sessions;
  }

  push(sessions: string[], data: Buffer): void {
    this.#sessions()?.push(sessions, data);
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
  readonly id: string;
  readonly #opts: GatewayOptions;
  readonly #pool: PeerPool;
  readonly #router: ActorRouter;
  readonly #services: ServiceTable;
  readonly #catalog: InterfaceCatalog;
  readonly #publicWire: WireServer;
  #internal: WireServer | undefined;
  #app: FastifyInstance | undefined;
  #sessions: SessionServer | undefined;
  #url = '';

  constructor(opts: GatewayOptions) {
    this.#opts = opts;
    // A fresh suffix, as for hosts: gateways of several machines are distinct members.
    this.id = `${opts.identity.node}-${randomBytes(3).toString('hex')}`;
    this.#pool = new PeerPool({ identity: opts.identity, log: opts.log.warn });
    this.#router = new ActorRouter({ placement: opts.placement, pool: this.#pool });
    this.#services = new ServiceTable().add(GatewayInterface, new GatewayService(opts.placement, () => this.#sessions));
    this.#catalog = new InterfaceCatalog(opts.placement);
    this.#publicWire = WireServer.forUpgrades({ identity: opts.identity, onRequest: (env, peer) => this.#onRequest(env, peer), spans: true, log: opts.log.warn });
  }

  /** Where clients connect: `ws://host:port` (or `wss://` with TLS). */
  get url(): string {
    if (!this.#url) throw new Error('gateway is not started');
    return this.#url;
  }

  get httpUrl(): string {
    return this.url.replace(/^ws/, 'http');
  }

  /** A typed proxy for code running in the gateway (plugins' routes). */
  getProxy<I extends ActorInterface>(iface: I, id: string | number, opts: { timeoutMs?: number } = {}): ActorProxy<I> {
    return createProxy(iface, id, (target, key, message, args) =>
      this.#router.call(target, message, args, {
        key,
        chain: newChainId(),
        deadline: Date.now() + (opts.timeoutMs ?? target.options.methodTimeoutsMs?.[message.name] ?? target.options.timeoutMs ?? this.#opts.settings.requestTimeoutMs),
        headers: {},
      }),
    );
  }

  async start(): Promise<void> {
    const { settings, root } = this.#opts;
    const internal = (this.#internal = await WireServer.listen({ identity: this.#opts.identity, host: settings.host, port: 0, onRequest: (env, peer) => this.#onRequest(env, peer), spans: true, log: this.#opts.log.warn }));
    this.#sessions = new SessionServer({
      settings,
      cluster: this.#opts.identity.cluster,
      router: this.#router,
      catalog: this.#catalog,
      internalAddress: () => internal.url,
      forward: (env, peer, done) => this.#onRequest(env, peer, done),
      log: this.#opts.log,
    });
    const app = (this.#app = (
      settings.tls
        ? fastify({ https: { cert: await readFile(resolveIn(root, settings.tls.cert)), key: await readFile(resolveIn(root, settings.tls.key)) }, bodyLimit: settings.limits.maxFrameBytes })
        : fastify({ bodyLimit: settings.limits.maxFrameBytes })
    ) as unknown as FastifyInstance);
    if (settings.bridge.enabled) registerHttpBridge(app, { catalog: this.#catalog, router: this.#router, requestTimeoutMs: settings.requestTimeoutMs, ...(settings.bridge.token === undefined ? {} : { token: settings.bridge.token }) });
    registerBrowserClient(app);
    if (settings.static) await app.register(fastifyStatic, { root: resolveIn(root, settings.static), prefix: '/' });
    await this.#loadPlugins(app);
    app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    await app.listen({ host: settings.host, port: settings.port });
    const addr = app.server.address() as AddressInfo;
    this.#url = `${settings.tls ? 'wss' : 'ws'}://${advertisedHost(addr.address)}:${addr.port}`;
    if (settings.bridge.enabled && settings.bridge.token === undefined && !isLoopback(addr.address)) {
      this.#opts.log.warn(`the HTTP bridge (POST /v1/actors/…) takes calls to any actor from anyone who reaches ${addr.address}:${addr.port}: set gateway.bridge.token (or KOALA_BRIDGE_TOKEN), or gateway.bridge.enabled: false`);
    }
    await this.#opts.placement.announce({ id: this.id, role: 'gateway', address: this.#url, pid: process.pid });
  }

  async stop(): Promise<void> {
    this.#sessions?.close();
    await this.#publicWire.close();
    await this.#app?.close();
    await this.#internal?.close();
    await this.#pool.close();
    await this.#opts.placement.close();
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path === SESSION_PATH) {
      if (this.#sessions) this.#sessions.handleUpgrade(req, socket, head);
      else socket.destroy();
      return;
    }
    this.#publicWire.handleUpgrade(req, socket, head);
  }

  async #loadPlugins(app: FastifyInstance): Promise<void> {
    const { settings, root } = this.#opts;
    if (settings.plugins.length === 0) return;
    const cluster: GatewayCluster = {
      getProxy: (iface, id, opts) => this.getProxy(iface, id, opts),
      signFirstPacket: (fields) => {
        if (!settings.clientSecret) throw new Error('gateway.clientSecret (or KOALA_CLIENT_SECRET) is not set: there is nothing to sign sessions with');
        return signFirstPacket(settings.clientSecret, fields);
      },
    };
    for (const file of await resolvePluginFiles(root, settings.plugins)) {
      const plugin = await importPlugin(root, file);
      if (!isGatewayPlugin(plugin)) throw new PluginError(`gateway plugin ${file} must \`export default defineGatewayPlugin((app, cluster) => …)\``);
      await plugin.register(app, cluster);
    }
  }

  /**
   * Answers `koala.Gateway` itself and forwards every other call; `done` is told once the call is
   * answered (or failed).
   */
  #onRequest(env: DecodedEnvelope, peer: Peer, done?: () => void): void {
    if (this.#services.has(env.iface)) {
      void this.#services.dispatch(env, peer).finally(done);
      return;
    }
    if (env.kind === 'CANCEL') {
      done?.();
      return;
    }
    const deadline = env.deadline > 0 ? env.deadline : Date.now() + this.#opts.settings.requestTimeoutMs;
    this.#router.forwardDecoded(env, deadline, new ReplyTo(peer, env, done));
  }
}

/** Passes a forwarded call's answer back to the connection that asked (a ONEWAY's answer goes nowhere). */
class ReplyTo implements AnswerSink {
  readonly #peer: Peer;
  readonly #request: DecodedEnvelope;
  readonly #done: (() => void) | undefined;

  constructor(peer: Peer, request: DecodedEnvelope, done: (() => void) | undefined) {
    this.#peer = peer;
    this.#request = request;
    this.#done = done;
  }

  answer(kind: EnvelopeKind, _id: number, frame: Buffer, start: number, end: number): void {
    if (this.#request.kind === 'REQUEST') this.#peer.replyBytes(this.#request, kind, frame, start, end);
    this.#done?.();
  }

  fail(err: Error): void {
    replyError(this.#peer, this.#request, err, `${this.#request.iface}/${this.#request.key}`);
    this.#done?.();
  }
}

function resolveIn(root: string, path: string): string {
  return path.startsWith('/') ? path : `${root}/${path}`;
}
