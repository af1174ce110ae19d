// An actor host: serves the actors of its plugins, activating them on demand under a placement
// lease, and stops them all before that lease could be granted to anyone else.
import { randomBytes } from 'node:crypto';
import { Activation } from '../actor/activation.ts';
import { ActivationTable } from '../actor/activations.ts';
import { bindActor, type ActorLifecycle } from '../actor/actor.ts';
import type { ActorPlugin } from '../actor/plugin.ts';
import { KoalaError } from '../errors/errors.ts';
import type { ActorInterface, ActorProxy } from '../interface/interface.ts';
import { createProxy } from '../interface/proxy.ts';
import type { HostInfo, Placement } from '../placement/protocol.ts';
import { ActorRouter } from '../routing/router.ts';
import type { Logger } from '../util/log.ts';
import { PeerPool } from '../wire/connect.ts';
import type { LocalIdentity } from '../wire/handshake.ts';
import type { Peer } from '../wire/peer.ts';
import { decodeArgs, encodeArgs, encodeError, encodeResult, methodOf, readAnswer } from '../wire/rpc.ts';
import { positionType, type Envelope, type Position } from '../wire/schemas.ts';
import { WireServer } from '../wire/server.ts';

export interface HostOptions {
  name: string;
  group: string;
  cluster: string;
  secret: string;
  listenHost: string;
  plugins: readonly ActorPlugin[];
  placement: Placement;
  callTimeoutMs: number;
  log: Logger;
}

type Answer = Pick<Envelope, 'kind' | 'payload'>;

/** Renew this many times per lease; fence when the last renewal is this close to running out. */
const RENEWALS_PER_TTL = 3;
const FENCE_MARGIN = 0.2;

export class Host {
  readonly id: string;
  readonly #opts: HostOptions;
  readonly #plugins = new Map<string, ActorPlugin>();
  readonly #activations = new ActivationTable();
  readonly #identity: LocalIdentity;
  readonly #pool: PeerPool;
  readonly #router: ActorRouter;
  #server: WireServer | undefined;
  #leaseTtlMs = 0;
  /** The lease is certainly valid until this time (measured from when we *sent* the last good renewal). */
  #leaseValidUntil = 0;
  #renewTimer: NodeJS.Timeout | undefined;
  #stopping = false;
  #fenced = false;
  readonly #startedAt = Date.now();

  constructor(opts: HostOptions) {
    this.#opts = opts;
    // A fresh suffix per process start: a restarted host is a new member, never mistaken for the old one.
    this.id = `${opts.name}-${randomBytes(3).toString('hex')}`;
    for (const plugin of opts.plugins) this.#plugins.set(plugin.interface.name, plugin);
    this.#identity = { cluster: opts.cluster, secret: opts.secret, node: this.id, role: 'host' };
    this.#pool = new PeerPool({ identity: this.#identity, log: opts.log.warn });
    this.#router = new ActorRouter({ placement: opts.placement, pool: this.#pool, local: { hostId: this.id, handle: (env) => this.#answerLocal(env) } });
  }

  get url(): string {
    if (!this.#server) throw new Error('host is not started');
    return this.#server.url;
  }

  get activationCount(): number {
    return this.#activations.size;
  }

  async start(): Promise<void> {
    this.#server = await WireServer.listen({
      identity: this.#identity,
      host: this.#opts.listenHost,
      port: 0,
      onRequest: (env, peer) => this.#onRequest(env, peer),
      log: this.#opts.log.warn,
    });
    await this.#register();
    this.#scheduleRenewal();
  }

  info(): HostInfo {
    return {
      id: this.id,
      group: this.#opts.group,
      address: this.url,
      pid: process.pid,
      startedAt: this.#startedAt,
      load: this.#activations.size,
      interfaces: [...this.#plugins.values()].map((p) => ({
        name: p.interface.name,
        fingerprint: p.interface.fingerprint,
        protocol: JSON.stringify(p.interface.protocol),
      })),
    };
  }

  /** Graceful stop: refuse new work, deactivate everything, give up the lease, close. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#renewTimer);
    await this.#deactivateAll();
    await this.#opts.placement.unregister(this.id).catch(() => {});
    await this.#server?.close();
    await this.#pool.close();
    await this.#opts.placement.close();
  }

  // ---- lease -------------------------------------------------------------------------------

  async #register(): Promise<void> {
    const sentAt = Date.now();
    this.#leaseTtlMs = await this.#opts.placement.register(this.info());
    this.#leaseValidUntil = sentAt + this.#leaseTtlMs;
    this.#fenced = false;
  }

  #scheduleRenewal(): void {
    if (this.#stopping) return;
    this.#renewTimer = setTimeout(() => void this.#renew(), Math.max(50, Math.floor(this.#leaseTtlMs / RENEWALS_PER_TTL)));
  }

  async #renew(): Promise<void> {
    const sentAt = Date.now();
    try {
      const known = await this.#opts.placement.renew(this.id, this.#activations.size);
      if (known) {
        this.#leaseValidUntil = sentAt + this.#leaseTtlMs;
      } else {
        // Placement forgot us (it restarted, or our lease ran out): none of our positions are ours any more.
        this.#opts.log.warn('placement no longer knows this host; deactivating all actors and registering again');
        await this.#fence();
        await this.#register();
      }
    } catch (err) {
      this.#opts.log.warn(`lease renewal failed: ${(err as Error).message}`);
      if (Date.now() >= this.#leaseValidUntil - this.#leaseTtlMs * FENCE_MARGIN) {
        // Self-fencing: stop our activations before placement could hand them to another host.
        this.#opts.log.warn('lease about to expire; deactivating all actors until placement is back');
        await this.#fence();
      }
    } finally {
      this.#scheduleRenewal();
    }
  }

  async #fence(): Promise<void> {
    this.#fenced = true;
    await this.#deactivateAll(false);
  }

  // ---- calls -------------------------------------------------------------------------------

  #onRequest(env: Envelope, peer: Peer): void {
    if (env.kind === 'CANCEL') return; // cancellation arrives with the finer call semantics
    this.#answer(env).then((answer) => {
      if (env.kind === 'REQUEST') peer.reply(env, answer.kind, answer.payload);
    });
  }

  async #answerLocal(env: Envelope): Promise<Envelope> {
    return { ...env, ...(await this.#answer(env)) };
  }

  /** Runs one call and produces its answer; never rejects. */
  async #answer(env: Envelope): Promise<Answer> {
    const identity = `${env.iface}/${env.key}`;
    try {
      if (this.#stopping) throw new KoalaError('SHUTTING_DOWN', `host ${this.id} is shutting down; retry`);
      const plugin = this.#plugins.get(env.iface);
      if (plugin === undefined) throw new KoalaError('UNKNOWN_INTERFACE', `host ${this.id} does not serve ${env.iface}`);
      const message = methodOf(plugin.interface, env.method);
      const args = decodeArgs(message, env.payload);
      const target = await this.#activations.obtain(identity, () => this.#activate(plugin, env.key));
      if (!(target instanceof Activation)) return { kind: 'REDIRECT', payload: positionType.toBuffer(target) };
      const method = target.instance[env.method] as (...a: unknown[]) => unknown;
      const value = await target.enqueue(() => method.apply(target.instance, args));
      return { kind: 'RESPONSE', payload: encodeResult(plugin.interface, message, value) };
    } catch (err) {
      return { kind: 'ERROR', payload: encodeError(err, identity) };
    }
  }

  /** Activates the actor here if placement says it lives here; otherwise yields its real position. */
  async #activate(plugin: ActorPlugin, key: string): Promise<Activation | Position> {
    if (this.#fenced) throw new KoalaError('LEASE_LOST', `host ${this.id} lost its placement lease; the call can be retried`);
    const position = await this.#opts.placement.locate(plugin.interface.name, key);
    if (position.host !== this.id) return position;
    const instance = new plugin.implementation() as object & ActorLifecycle;
    bindActor(instance, {
      iface: plugin.interface,
      key,
      hostId: this.id,
      getProxy: (iface, id) => this.proxy(iface, id),
    });
    const activation = new Activation(plugin.interface, key, instance, position.epoch);
    if (typeof instance.onActivate === 'function') {
      try {
        await activation.enqueue(() => instance.onActivate!());
      } catch (err) {
        throw new KoalaError('ACTIVATION_FAILED', `${activation.identity} failed to activate: ${(err as Error).message}`, {
          name: 'ActivationError',
          actor: activation.identity,
          ...((err as Error).stack ? { remoteStack: (err as Error).stack } : {}),
        });
      }
    }
    this.#opts.log.debug(`activated ${activation.identity} (epoch ${position.epoch})`);
    return activation;
  }

  async #deactivate(activation: Activation, release: boolean): Promise<void> {
    const instance = activation.instance as ActorLifecycle;
    try {
      if (typeof instance.onDeactivate === 'function') await activation.enqueue(() => instance.onDeactivate!());
    } catch (err) {
      this.#opts.log.warn(`${activation.identity} onDeactivate failed: ${(err as Error).message}`);
    }
    this.#activations.delete(activation);
    if (release) {
      await this.#opts.placement.release(activation.iface.name, activation.key, this.id, activation.epoch).catch(() => {});
    }
  }

  async #deactivateAll(release = true): Promise<void> {
    await Promise.all(this.#activations.values().map((a) => this.#deactivate(a, release)));
  }

  /** A typed proxy for calls made by actors on this host. */
  proxy<I extends ActorInterface>(iface: I, id: string | number): ActorProxy<I> {
    return createProxy(iface, id, async (target, key, message, args) => {
      const payload = encodeArgs(target, message, args);
      const answer = await this.#router.forward({
        iface: target.name,
        key,
        method: message.name,
        chain: '',
        deadline: Date.now() + this.#opts.callTimeoutMs,
        epoch: 0,
        headers: {},
        payload,
      });
      const result = readAnswer(answer, message);
      return result.kind === 'value' ? result.value : undefined;
    });
  }
}
