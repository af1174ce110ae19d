// An actor host: serves the actors of its plugins, activating them on demand under its placement
// lease, runs their turns, timers and idle deactivation, and routes the calls they make.
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Activation, ActivationGone, type Turn, type TurnDone } from '../actor/activation.ts';
import { ActivationTable } from '../actor/activations.ts';
import { bindActor, bindState, type ActorContext, type ActorLifecycle, type ProxyOptions, type Session } from '../actor/actor.ts';
import type { StorageSettings } from '../config/manifest.ts';
import type { ReminderRow, Store } from '../storage/index.ts';
import { loadState, prepareStateCodec, StateStores, type StateCodec } from './state.ts';
import { GatewayInterface } from '../gateway/protocol.ts';
import { SESSION_METHODS, sessionEventType, type SessionEvent } from '../gateway/session-protocol.ts';
import { typeForSchema, type AvroType } from '../interface/avro.ts';
import { currentCall, deadlockPath, newChainId, originFromHeaders, PATH_HEADER, type CallContext } from '../actor/call-context.ts';
import type { ActorPlugin } from '../actor/plugin.ts';
import { startTimer } from '../actor/timers.ts';
import { fromErrorRecord, KoalaError, TimeoutError, toErrorRecord } from '../errors/errors.ts';
import type { AvroMessageTypes } from '../interface/avro.ts';
import type { ActorInterface, ActorProxy } from '../interface/interface.ts';
import { createProxy, type Invoker } from '../interface/proxy.ts';
import type { HostInfo, Placement } from '../placement/protocol.ts';
import { ActorRouter } from '../routing/router.ts';
import type { Logger } from '../util/log.ts';
import { PeerPool } from '../wire/connect.ts';
import type { LocalIdentity } from '../wire/handshake.ts';
import type { Peer } from '../wire/peer.ts';
import { checkArgs, checkResult, decodeArgs, encodeArgs, encodeError, encodeResult, methodOf, replyError, replyResult } from '../wire/rpc.ts';
import { errorRecordType, positionType, type Envelope, type Position } from '../wire/schemas.ts';
import { WireServer } from '../wire/server.ts';
import { NO_HEADERS, type DecodedEnvelope } from '../wire/frame.ts';
import { clockNow, lastReading } from '../util/clock.ts';
import { DeadlineTimer } from '../util/deadline-timer.ts';
import { methodCodec } from '../wire/value-codec.ts';
import { HostLease } from './lease.ts';

export interface HostOptions {
  name: string;
  group: string;
  cluster: string;
  secret: string;
  listenHost: string;
  plugins: readonly ActorPlugin[];
  placement: Placement;
  callTimeoutMs: number;
  /** Idle time after which an actor is deactivated, unless its interface says otherwise. */
  idleTimeoutMs: number;
  storage: StorageSettings;
  /** Project root: relative storage paths start there. */
  root: string;
  log: Logger;
}

type Answer = Pick<Envelope, 'kind' | 'payload'>;

/** A stateless worker activation, with the calls assigned to it and not yet answered. */
interface Worker {
  activation: Activation | undefined;
  starting: Promise<Activation>;
  assigned: number;
}

/** What the host derives once per interface from its plugin. */
interface Served {
  plugin: ActorPlugin;
  interleave: ReadonlySet<string>;
  idleTimeoutMs: number;
  /** Stateless worker: activations per id on this host (0 = a normal, placed actor). */
  maxLocal: number;
  /** Per method: checks a result against its Avro type, for in-process calls (the wire checks by encoding). */
  checkers: ReadonlyMap<string, (value: unknown) => unknown>;
  /** The interface's methods by name (own entries only: `constructor` is not a method). */
  methods: ReadonlyMap<string, AvroMessageTypes>;
  /** Types of client-session messages, when the interface declares them. */
  sessionTypes: { inbound: AvroType | undefined; outbound: AvroType | undefined };
}

const MIN_SWEEP_MS = 50;
/**
 * How close to the end of the deadline it inherits a call must be for a fresh clock reading to
 * decide whether any time is left (see `#deadlineFor`). Beyond it, the last reading decides: it is
 * older than that only in a task (a callback and its microtasks) that has run for longer; then a
 * call made after its chain's deadline still leaves, with the time left at that reading, and fails
 * when that deadline comes.
 */
const NEAR_END_MS = 1000;
/**
 * From how long a budget on a call's own deadline counts from the task's last clock reading, not a
 * fresh one (see `#deadlineFor`). That reading is earlier than now by the time the task has run
 * since (microseconds to milliseconds): the deadline comes that much early, never late, which is
 * nothing to a budget of seconds. A fresh reading per call was ~3 % of a host-to-host call whose
 * caller's own deadline is longer than the call's budget.
 */
const LONG_BUDGET_MS = 5000;
/** How often a host looks for due reminders: their resolution. */
const REMINDER_POLL_MS = 250;
const REMINDER_METHOD = '@reminder';
const reminderNameType = typeForSchema<string>('string');
const MAX_SWEEP_MS = 30_000;
/** Deactivations run at once during a stop (each may write state and release its position). */
const DEACTIVATE_CONCURRENCY = 256;

/** An activation's ActorContext: its own fields on a prototype of the host's methods. */
interface BoundContext extends ActorContext {
  iface: ActorInterface;
  key: string;
  hostId: string;
  state: ActorContext['state'];
  activation: Activation;
}

type ContextMethods = Pick<ActorContext, 'getProxy' | 'registerTimer' | 'deactivateOnIdle' | 'sessions' | 'registerReminder' | 'unregisterReminder'>;

/**
 * A call's arguments, decoded in place (no payload view), or undefined if they do not decode (the
 * general path decodes again, and reports what is wrong).
 */
function argumentsOf(message: AvroMessageTypes, env: DecodedEnvelope): unknown[] | undefined {
  try {
    return methodCodec(message).decodeArgs(env.frame, env.payloadStart, env.payloadEnd);
  } catch {
    return undefined;
  }
}

/** Errors an actor throws reach in-process callers in the same shape as remote ones. */
function mapActorError(err: unknown, identity: string): unknown {
  return err instanceof KoalaError ? err : fromErrorRecord(toErrorRecord(err, identity));
}

export class Host {
  readonly id: string;
  readonly #opts: HostOptions;
  readonly #served = new Map<string, Served>();
  // The last interface looked up in #served: calls come in runs of one interface, and a comparison
  // costs less than a lookup (~60 of ~9 400 instructions per host-to-host call, by callgrind).
  #lastServedName = '';
  #lastServed: Served | undefined;
  readonly #activations = new ActivationTable();
  /** Stateless workers: identity → local activations, used round-robin. */
  readonly #workers = new Map<string, { pool: Worker[] }>();
  readonly #retiring = new Set<Activation>();
  readonly #headersByTurn = new WeakMap<CallContext, Record<string, string>>();
  /**
   * The last turn `#pathHeaders` answered for, and its headers: a turn that fans out asks many
   * times in a row (this keeps that one turn reachable until another turn makes a call).
   */
  #lastTurn: CallContext | undefined;
  #lastTurnHeaders: Record<string, string> = NO_HEADERS;
  readonly #identity: LocalIdentity;
  readonly #pool: PeerPool;
  readonly #router: ActorRouter;
  readonly #lease: HostLease;
  readonly #startedAt = Date.now();
  readonly #stores: StateStores;
  /** Per interface with state: how its records are read and written (checked at start). */
  readonly #codecs = new Map<string, StateCodec>();
  /** Activations with turns that have deadlines: swept together, by one timer armed at the earliest deadline. */
  readonly #busy = new Set<Activation>();
  readonly #deadlines = new DeadlineTimer((now) => this.#sweepDeadlines(now));
  readonly #watch = (activation: Activation, deadline: number) => {
    if (!activation.watched) {
      activation.watched = true;
      this.#busy.add(activation);
    }
    this.#deadlines.expect(deadline);
  };
  /** The prototype of every activation's ActorContext (see `#start`). */
  readonly #contextMethods: ContextMethods = this.#makeContextMethods();
  #server: WireServer | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #reminders: NodeJS.Timeout | undefined;
  #stopping = false;

  constructor(opts: HostOptions) {
    this.#opts = opts;
    // A fresh suffix per process start: a restarted host is a new member, never mistaken for the old one.
    this.id = `${opts.name}-${randomBytes(3).toString('hex')}`;
    for (const plugin of opts.plugins) {
      const o = plugin.interface.options;
      this.#served.set(plugin.interface.name, {
        plugin,
        interleave: new Set(o.interleave ?? []),
        idleTimeoutMs: o.idleTimeoutMs ?? opts.idleTimeoutMs,
        maxLocal: o.stateless ? ((typeof o.stateless === 'object' ? o.stateless.maxLocal : undefined) ?? availableParallelism()) : 0,
        checkers: new Map(plugin.interface.service.messages.map((m) => [m.name, (value: unknown) => checkResult(plugin.interface, m, value)])),
        methods: new Map(plugin.interface.service.messages.map((m) => [m.name, m])),
        sessionTypes: {
          inbound: o.session?.inbound === undefined ? undefined : typeForSchema(o.session.inbound),
          outbound: o.session?.outbound === undefined ? undefined : typeForSchema(o.session.outbound),
        },
      });
    }
    this.#identity = { cluster: opts.cluster, secret: opts.secret, node: this.id, role: 'host' };
    this.#stores = new StateStores(opts.storage, opts.root);
    this.#pool = new PeerPool({ identity: this.#identity, log: opts.log.warn });
    this.#router = new ActorRouter({
      placement: opts.placement,
      pool: this.#pool,
      local: { hostId: this.id, handle: (env) => this.#answerLocal(env), statelessHere: (iface) => (this.#servedAs(iface)?.maxLocal ?? 0) > 0 },
    });
    this.#lease = new HostLease({
      placement: opts.placement,
      info: () => this.info(),
      load: () => this.#activations.size,
      fence: (expired) => this.#fence(expired),
      log: opts.log,
    });
  }

  get url(): string {
    if (!this.#server) throw new Error('host is not started');
    return this.#server.url;
  }

  get activationCount(): number {
    return this.#activations.size;
  }

  async start(): Promise<void> {
    // Refuse to start with a state schema that cannot read what is stored, before serving anything.
    for (const { plugin } of this.#served.values()) {
      if (plugin.state) this.#codecs.set(plugin.interface.name, await prepareStateCodec(await this.#stores.for(plugin.interface.name), plugin.interface.name, plugin.state.type));
    }
    this.#server = await WireServer.listen({
      identity: this.#identity,
      host: this.#opts.listenHost,
      port: 0,
      onRequest: (env, peer) => this.#onRequest(env, peer),
      log: this.#opts.log.warn,
    });
    await this.#lease.start();
    const shortestIdle = Math.min(...[...this.#served.values()].map((s) => s.idleTimeoutMs), MAX_SWEEP_MS * 4);
    this.#sweeper = setInterval(() => this.#sweepIdle(), Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, Math.floor(shortestIdle / 4))));
    this.#sweeper.unref();
    let polling = false;
    this.#reminders = setInterval(() => {
      if (polling) return;
      polling = true;
      void this.#pollReminders().finally(() => (polling = false));
    }, REMINDER_POLL_MS);
    this.#reminders.unref();
  }

  info(): HostInfo {
    return {
      id: this.id,
      group: this.#opts.group,
      address: this.url,
      pid: process.pid,
      startedAt: this.#startedAt,
      load: this.#activations.size,
      role: 'host',
      health: 'passing',
      interfaces: [...this.#served.values()].map(({ plugin, maxLocal }) => ({
        name: plugin.interface.name,
        fingerprint: plugin.interface.fingerprint,
        protocol: JSON.stringify(plugin.interface.protocol),
        stateless: maxLocal > 0,
      })),
    };
  }

  /** What this host serves of the interface `name` (undefined: not served here). */
  #servedAs(name: string): Served | undefined {
    if (name !== this.#lastServedName) {
      this.#lastServed = this.#served.get(name);
      this.#lastServedName = name;
    }
    return this.#lastServed;
  }

  /** Graceful stop: refuse new work, deactivate everything (running onDeactivate), give up the lease, close. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearInterval(this.#sweeper);
    clearInterval(this.#reminders);
    this.#deadlines.stop();
    this.#lease.stop();
    await this.#deactivateAll(true);
    await this.#opts.placement.unregister(this.id).catch(() => {});
    await this.#server?.close();
    await this.#pool.close();
    await this.#stores.close();
    await this.#opts.placement.close();
  }

  // ---- incoming calls ------------------------------------------------------------------------

  #onRequest(env: DecodedEnvelope, peer: Peer): void {
    if (env.kind === 'CANCEL') return; // the caller's deadline already covers abandoned calls
    if (!this.#answerActive(env, peer)) this.onRequestSlow(env, peer);
  }

  /**
   * The steady state, kept short: a call to a method of an actor active here, with a valid lease.
   * Its result is encoded straight into the answer frame. Returns false (having done nothing) for
   * everything else, which `#answer` handles: activation, redirects, workers, runtime methods, errors.
   */
  #answerActive(env: DecodedEnvelope, peer: Peer): boolean {
    const served = this.#servedAs(env.iface);
    const message = this.#shortPathMethod(served, env);
    if (message === undefined) return false;
    const activation = this.#activations.live(env.iface, env.key);
    if (activation === undefined) return false;
    const args = argumentsOf(message, env);
    if (args === undefined) return false;
    this.#runActive(env, peer, served!, message, activation, args);
    return true;
  }

  /** The method a call names, if the short path may take it now: an actor method, not a worker's, on a host that is not stopping and holds its lease. */
  #shortPathMethod(served: Served | undefined, env: Envelope): AvroMessageTypes | undefined {
    const message = served?.methods.get(env.method);
    return message === undefined || served!.maxLocal > 0 || this.#stopping || !this.#lease.valid ? undefined : message;
  }

  #runActive(env: DecodedEnvelope, peer: Peer, served: Served, message: AvroMessageTypes, activation: Activation, args: unknown[]): void {
    const method = activation.instance[env.method] as (...a: unknown[]) => unknown;
    activation.enqueueTurn(new ActiveCall(this, env, peer, served.plugin.interface, message, activation.identity, method, args), served.interleave.has(env.method));
  }

  /**
   * Everything the short path does not take. A call to an actor that is not active here yet (the
   * first call of a new actor) activates it, then takes the short path; the rest goes to `#answer`.
   */
  onRequestSlow(env: DecodedEnvelope, peer: Peer): void {
    const served = this.#servedAs(env.iface);
    const message = this.#shortPathMethod(served, env);
    // Decoded before activating: a call that would fail on its arguments must not activate its actor.
    const args = message === undefined ? undefined : argumentsOf(message, env);
    if (args === undefined) {
      this.#answerGeneral(env, peer);
      return;
    }
    const identity = `${env.iface}/${env.key}`;
    this.#activations.obtain(env.iface, env.key, identity, () => this.#activate(served!.plugin, env.key, env.epoch)).then(
      (target) => {
        if (!(target instanceof Activation)) {
          if (env.kind === 'REQUEST') peer.reply(env, 'REDIRECT', positionType.toBuffer(target));
          return;
        }
        // The host may have begun stopping, or the actor closing, meanwhile.
        const active = this.#shortPathMethod(served, env) === undefined ? undefined : this.#activations.live(env.iface, env.key);
        if (active !== undefined) this.#runActive(env, peer, served!, message!, active, args);
        else this.#answerGeneral(env, peer);
      },
      (err: unknown) => replyError(peer, env, err, identity),
    );
  }

  /** The general path (activation, redirects, retries, workers, runtime methods, errors): answers once `#answer` has. */
  #answerGeneral(env: Envelope, peer: Peer): void {
    void this.#answer(env).then((answer) => {
      if (env.kind === 'REQUEST') peer.reply(env, answer.kind, answer.payload);
    });
  }

  async #answerLocal(env: Envelope): Promise<Envelope> {
    return { ...env, ...(await this.#answer(env)) };
  }

  /** Runs one call and produces its answer; never rejects. */
  async #answer(env: Envelope): Promise<Answer> {
    const identity = `${env.iface}/${env.key}`;
    if (env.method.startsWith('@session.')) return this.#sessionEvent(env, identity);
    if (env.method === REMINDER_METHOD) return this.#reminderCall(env, identity);
    try {
      if (this.#stopping) throw new KoalaError('SHUTTING_DOWN', `host ${this.id} is shutting down; retry`);
      // Checked on every call, not only by the fence timer: a host that was frozen (stopped, swapped
      // out) serves nothing after its lease ran out, even before its timers get to run.
      if (!this.#lease.valid) throw new KoalaError('LEASE_LOST', `host ${this.id} has no valid placement lease; retry shortly`);
      const served = this.#servedAs(env.iface);
      if (served === undefined) throw new KoalaError('UNKNOWN_INTERFACE', `host ${this.id} does not serve ${env.iface}`);
      const message = methodOf(served.plugin.interface, env.method);
      const args = decodeArgs(message, env.payload);
      const chain = env.chain || newChainId();
      const origin = originFromHeaders(env.headers);
      const interleave = served.interleave.has(env.method);
      for (;;) {
        const worker = served.maxLocal > 0 ? await this.#worker(served, env.key) : undefined;
        const target = worker?.activation ?? this.#activations.live(env.iface, env.key) ?? (await this.#activations.obtain(env.iface, env.key, identity, () => this.#activate(served.plugin, env.key)));
        if (!(target instanceof Activation)) return { kind: 'REDIRECT', payload: positionType.toBuffer(target) };
        const method = target.instance[env.method] as (...a: unknown[]) => unknown;
        const ctx = { chain, deadline: env.deadline, identity, parent: undefined, origin };
        try {
          const value = await target.enqueue(method, args, ctx, interleave);
          return { kind: 'RESPONSE', payload: encodeResult(served.plugin.interface, message, value) };
        } catch (err) {
          if (err instanceof ActivationGone) continue; // it closed under us: the next one takes the call
          throw err;
        } finally {
          worker?.done();
        }
      }
    } catch (err) {
      return { kind: 'ERROR', payload: encodeError(err, identity) };
    }
  }

  // ---- durable reminders ---------------------------------------------------------------------

  /** A due reminder, delivered as a turn of its actor (activated if need be). */
  async #reminderCall(env: Envelope, identity: string): Promise<Answer> {
    try {
      if (!this.#lease.valid) throw new KoalaError('LEASE_LOST', `host ${this.id} has no valid placement lease; retry shortly`);
      const served = this.#servedAs(env.iface);
      if (served === undefined) throw new KoalaError('UNKNOWN_INTERFACE', `host ${this.id} does not serve ${env.iface}`);
      const name = reminderNameType.fromBuffer(env.payload);
      const target = this.#activations.live(env.iface, env.key) ?? (await this.#activations.obtain(env.iface, env.key, identity, () => this.#activate(served.plugin, env.key)));
      if (!(target instanceof Activation)) return { kind: 'REDIRECT', payload: positionType.toBuffer(target) };
      const hook = (target.instance as ActorLifecycle).receiveReminder;
      if (typeof hook !== 'function') throw new KoalaError('UNKNOWN_METHOD', `${identity} has a reminder "${name}" but no receiveReminder(name) method`);
      await target.enqueue(hook as (...a: unknown[]) => unknown, [name], { chain: newChainId(), deadline: env.deadline, identity, parent: undefined, origin: undefined });
      return { kind: 'RESPONSE', payload: Buffer.alloc(0) };
    } catch (err) {
      return { kind: 'ERROR', payload: encodeError(err, identity) };
    }
  }

  /**
   * Fires due reminders of the interfaces this host serves. Of the hosts serving an interface, the
   * one with the smallest id does it (so each tick is delivered by one host); a delivery that fails
   * on the way stays due and is tried again (at least once).
   */
  async #pollReminders(): Promise<void> {
    if (this.#stopping || !this.#lease.valid) return;
    const placed = [...this.#served.values()].filter((s) => s.maxLocal === 0).map((s) => s.plugin.interface.name);
    const now = Date.now();
    // The store first (a local query): placement is asked only when something is due.
    const dueByIface = new Map<string, { store: Store; due: ReminderRow[] }>();
    for (const iface of placed) {
      const store = await this.#stores.for(iface).catch(() => undefined);
      if (store === undefined) continue;
      const due = (await store.dueReminders(now, 256).catch(() => [])).filter((r) => r.iface === iface);
      if (due.length > 0) dueByIface.set(iface, { store, due });
    }
    if (dueByIface.size === 0) return;
    const members = await this.#opts.placement.members().catch(() => undefined);
    if (members === undefined) return;
    for (const [iface, { store, due }] of dueByIface) {
      const leader = members.filter((m) => m.role === 'host' && m.interfaces.some((i) => i.name === iface)).map((m) => m.id).sort()[0];
      if (leader !== this.id) continue;
      await Promise.all(
        due.map(async (r) => {
          const env = { iface: r.iface, key: r.key, method: REMINDER_METHOD, chain: newChainId(), deadline: Date.now() + this.#opts.callTimeoutMs, epoch: 0, headers: {}, payload: reminderNameType.toBuffer(r.name) };
          let answer: Envelope;
          try {
            answer = await this.#router.forward(env);
          } catch (err) {
            this.#opts.log.warn(`reminder ${r.name} of ${r.iface}/${r.key} not delivered (${(err as Error).message}); retrying`);
            return;
          }
          if (answer.kind === 'ERROR') {
            const rec = errorRecordType.fromBuffer(answer.payload);
            if (rec.code === 'LEASE_LOST' || rec.code === 'SHUTTING_DOWN' || rec.code === 'UNREACHABLE') return; // not delivered: stays due
            this.#opts.log.warn(`reminder ${r.name} of ${r.iface}/${r.key} failed: ${rec.message}`);
          }
          // The actor may have changed or removed its reminder while it ran: then leave its change be.
          const current = (await store.listReminders(r.iface).catch(() => [])).find((x) => x.key === r.key && x.name === r.name);
          if (current === undefined || current.dueAt !== r.dueAt || current.periodMs !== r.periodMs) return;
          if (r.periodMs > 0) {
            let next = r.dueAt + r.periodMs;
            if (next <= now) next = now + r.periodMs - ((now - r.dueAt) % r.periodMs); // skip missed ticks, keep the phase
            await store.upsertReminder({ ...r, dueAt: next }).catch(() => {});
          } else await store.deleteReminder(r.iface, r.key, r.name).catch(() => {});
        }),
      );
    }
  }

  // ---- client sessions -----------------------------------------------------------------------

  /** A session event from a gateway, run as a turn of the bound actor (activated if need be). */
  async #sessionEvent(env: Envelope, identity: string): Promise<Answer> {
    try {
      if (!this.#lease.valid) throw new KoalaError('LEASE_LOST', `host ${this.id} has no valid placement lease; retry shortly`);
      const served = this.#servedAs(env.iface);
      if (served === undefined || served.maxLocal > 0) throw new KoalaError('UNKNOWN_INTERFACE', `host ${this.id} has no actor ${env.iface} that sessions can bind to`);
      const event = sessionEventType.fromBuffer(env.payload);
      const closing = env.method === SESSION_METHODS.closed;
      // A closed session needs no new activation to be told about; but one being started (by this
      // session's open, still on its way) must hear it after the open.
      const target = closing
        ? (this.#activations.live(env.iface, env.key) ?? (await this.#activations.starting(identity)?.catch(() => undefined)))
        : (this.#activations.live(env.iface, env.key) ?? (await this.#activations.obtain(env.iface, env.key, identity, () => this.#activate(served.plugin, env.key))));
      if (target === undefined) return { kind: 'RESPONSE', payload: Buffer.alloc(0) };
      if (!(target instanceof Activation)) return { kind: 'REDIRECT', payload: positionType.toBuffer(target) };
      // An async turn: a hook that awaits still runs in the call's context.
      const turn = async () => this.#onSessionEvent(target, served, env.method, event);
      await target.enqueue(turn, [], { chain: env.chain || newChainId(), deadline: env.deadline, identity, parent: undefined, origin: undefined });
      return { kind: 'RESPONSE', payload: Buffer.alloc(0) };
    } catch (err) {
      return { kind: 'ERROR', payload: encodeError(err, identity) };
    }
  }

  /** Runs inside the actor's turn: keeps its session list and calls its hook. */
  #onSessionEvent(activation: Activation, served: Served, method: string, event: SessionEvent): unknown {
    const instance = activation.instance as ActorLifecycle;
    const record = { gateway: event.gateway, claims: Object.fromEntries(event.claims.map((c) => [c.name, c.value])) };
    if (method === SESSION_METHODS.closed) {
      const known = activation.sessions?.get(event.session);
      if (!known) {
        (activation.closedSessions ??= new Set()).add(event.session);
        return undefined;
      }
      activation.sessions!.delete(event.session);
      return instance.onSessionClosed?.(this.#session(activation, event.session, known));
    }
    // A late open or message of a session that already closed.
    if (activation.closedSessions?.has(event.session)) return undefined;
    // Every event refreshes the record: a re-activated actor learns its sessions from their next message.
    (activation.sessions ??= new Map()).set(event.session, record);
    const session = this.#session(activation, event.session, record);
    if (method === SESSION_METHODS.open) return instance.onSessionOpen?.(session);
    const inbound = served.sessionTypes.inbound;
    return instance.onSessionMessage?.(session, inbound ? inbound.fromBuffer(event.data) : event.data);
  }

  #session(activation: Activation, id: string, record: { gateway: string; claims: Record<string, string> }): Session {
    const served = this.#servedAs(activation.iface.name)!;
    return {
      id,
      claims: record.claims,
      push: (data) => {
        const outbound = served.sessionTypes.outbound;
        const bytes = outbound ? outbound.toBuffer(data) : Buffer.isBuffer(data) ? data : data instanceof Uint8Array ? Buffer.from(data) : undefined;
        if (bytes === undefined) throw new TypeError(`${activation.identity} pushed a ${typeof data}: push bytes, or declare session.outbound in the interface's options`);
        this.#push(record.gateway, [id], bytes);
      },
    };
  }

  /** Sends a push to the gateway holding the sessions (one-way, over the reused connection). */
  #push(gateway: string, sessions: string[], data: Buffer): void {
    const message = methodOf(GatewayInterface, 'push');
    const payload = encodeArgs(GatewayInterface, message, [sessions, data]);
    this.#pool.get(gateway).then(
      (peer) => peer.notify({ iface: GatewayInterface.name, key: '', method: 'push', chain: '', deadline: 0, epoch: 0, headers: {}, payload }),
      (err: Error) => this.#opts.log.warn(`push to ${gateway} failed: ${err.message}`),
    );
  }

  // ---- activation ----------------------------------------------------------------------------

  /**
   * Activates the actor here if this host owns it: if the call came with a grant of it to this host
   * that is certainly still standing (`HostLease.acceptsGrant`: a gateway's first call after
   * placement chose this host), at once; otherwise once placement confirms the claim. Else the
   * owner's position, for a redirect.
   */
  async #activate(plugin: ActorPlugin, key: string, granted = 0): Promise<Activation | Position> {
    if (!this.#lease.valid) throw new KoalaError('LEASE_LOST', `host ${this.id} has no valid placement lease; retry shortly`);
    if (granted > 0 && this.#lease.acceptsGrant(granted)) return this.#start(plugin, key, granted);
    const position = await this.#opts.placement.claim(plugin.interface.name, key, this.id);
    if (position.host !== this.id) return position;
    return this.#start(plugin, key, position.epoch);
  }

  #makeContextMethods(): ContextMethods {
    // Arrow functions would capture per activation; these reach the activation through `this`
    // (the context object) and the host through the enclosing scope, once per host.
    const host = this;
    return {
      getProxy(this: BoundContext, iface, id, opts) {
        return host.proxy(iface, id, opts);
      },
      registerTimer(this: BoundContext, callback, dueMs, periodMs) {
        const activation = this.activation;
        return startTimer(activation, callback, dueMs, periodMs, (err) => host.#opts.log.warn(`${activation.identity} timer failed: ${(err as Error).message}`));
      },
      deactivateOnIdle(this: BoundContext) {
        host.#retireWhenQuiet(this.activation);
      },
      sessions(this: BoundContext) {
        const activation = this.activation;
        return [...(activation.sessions ?? [])].map(([id, s]) => host.#session(activation, id, s));
      },
      async registerReminder(this: BoundContext, name, dueMs, periodMs) {
        if (!(dueMs >= 0) || !(periodMs >= 0)) throw new RangeError(`reminder ${name}: due (${dueMs}) and period (${periodMs}) must be non-negative numbers of ms`);
        const iface = this.iface.name;
        await (await host.#stores.for(iface)).upsertReminder({ iface, key: this.key, name, dueAt: Date.now() + dueMs, periodMs });
      },
      async unregisterReminder(this: BoundContext, name) {
        const iface = this.iface.name;
        await (await host.#stores.for(iface)).deleteReminder(iface, this.key, name);
      },
    };
  }

  async #start(plugin: ActorPlugin, key: string, epoch: number): Promise<Activation> {
    const instance = new plugin.implementation() as object & ActorLifecycle;
    const identity = `${plugin.interface.name}/${key}`;
    const activation = new Activation(plugin.interface, key, identity, instance, epoch, this.#watch, mapActorError);
    // The context's methods live on one prototype per host: an activation costs one small object
    // here, not a closure per method (memory per idle actor, and activations per second).
    const context = Object.create(this.#contextMethods) as BoundContext;
    context.iface = plugin.interface;
    context.key = key;
    context.hostId = this.id;
    context.activation = activation;
    context.state = undefined; // loaded below, before the first turn
    bindActor(instance, context);
    if (plugin.state) {
      const name = plugin.interface.name;
      const codec = this.#codecs.get(name);
      if (codec === undefined) throw new KoalaError('INTERNAL', `${name}: state codec missing (host not started?)`);
      bindState(instance, await loadState(await this.#stores.for(name), name, key, codec, plugin.state.initial, plugin.state.rows));
    }
    if (typeof instance.onActivate === 'function') {
      const chain = newChainId();
      try {
        await activation.enqueue(instance.onActivate as () => unknown, [], { chain, deadline: 0, identity: activation.identity, parent: undefined, origin: undefined });
      } catch (err) {
        // Timers it may have registered die with it.
        activation.kill();
        const stack = (err as KoalaError).remoteStack ?? (err as Error).stack;
        throw new KoalaError('ACTIVATION_FAILED', `${activation.identity} failed to activate: ${(err as Error).message}`, {
          name: 'ActivationError',
          actor: activation.identity,
          ...(stack ? { remoteStack: stack } : {}),
        });
      }
    }
    this.#opts.log.debug(`activated ${activation.identity} (epoch ${epoch})`);
    return activation;
  }

  /** A stateless worker for this id: an idle one, else a new one while under the limit, else round-robin. */
  /**
   * A stateless worker for this id: the one with the fewest calls assigned, or a new one while
   * every worker is busy and the pool is under its limit. Calls are counted when assigned (not
   * when they start), so that a burst spreads instead of piling onto the first idle worker.
   */
  async #worker(served: Served, key: string): Promise<{ activation: Activation; done: () => void }> {
    const identity = `${served.plugin.interface.name}/${key}`;
    let workers = this.#workers.get(identity);
    if (workers === undefined) this.#workers.set(identity, (workers = { pool: [] }));
    workers.pool = workers.pool.filter((w) => w.activation === undefined || w.activation.state === 'active');
    let chosen = workers.pool.reduce<Worker | undefined>((best, w) => (best === undefined || w.assigned < best.assigned ? w : best), undefined);
    if (chosen === undefined || (chosen.assigned > 0 && workers.pool.length < served.maxLocal)) {
      const worker: Worker = { activation: undefined, starting: this.#start(served.plugin, key, 0), assigned: 0 };
      worker.starting.then((a) => (worker.activation = a), () => workers.pool.splice(workers.pool.indexOf(worker), 1));
      workers.pool.push(worker);
      chosen = worker;
    }
    const worker = chosen;
    worker.assigned++;
    try {
      return { activation: worker.activation ?? (await worker.starting), done: () => worker.assigned-- };
    } catch (err) {
      worker.assigned--;
      throw err;
    }
  }

  #retireWhenQuiet(activation: Activation): void {
    this.#retiring.add(activation);
    // After the current turn has finished (it is the one asking).
    setImmediate(() => this.#sweepIdle());
  }

  #sweepIdle(): void {
    const now = Date.now();
    for (const activation of this.#allActivations()) {
      // Busy, or bound to client sessions: not idle.
      if (activation.state !== 'active' || !activation.quiet || (activation.sessions?.size ?? 0) > 0) continue;
      const idleMs = this.#servedAs(activation.iface.name)!.idleTimeoutMs;
      if (this.#retiring.has(activation) || now - activation.lastActiveAt >= idleMs) void this.#deactivate(activation, true);
    }
  }

  #allActivations(): Activation[] {
    const all = this.#activations.values();
    for (const { pool } of this.#workers.values()) for (const w of pool) if (w.activation) all.push(w.activation);
    return all;
  }

  #deactivate(activation: Activation, release: boolean): Promise<void> {
    const close = async () => {
      const instance = activation.instance as ActorLifecycle;
      try {
        const onDeactivate = typeof instance.onDeactivate === 'function' ? (instance.onDeactivate as () => unknown) : () => undefined;
        await activation.close(onDeactivate, { chain: newChainId(), deadline: 0, identity: activation.identity, parent: undefined, origin: undefined });
      } catch (err) {
        this.#opts.log.warn(`${activation.identity} onDeactivate failed: ${(err as Error).message}`);
      }
      this.#retiring.delete(activation);
      this.#opts.log.debug(`deactivated ${activation.identity}`);
      if (release && activation.epoch > 0) {
        this.#lease.releasing(activation.epoch);
        await this.#opts.placement.release(activation.iface.name, activation.key, this.id, activation.epoch).catch(() => {});
      }
    };
    return this.#retire(activation, close);
  }

  /** Takes an activation out of the table (or its worker pool) once `close` is done. */
  #retire(activation: Activation, close: () => Promise<void>): Promise<void> {
    const workers = this.#workers.get(activation.identity);
    if (workers?.pool.some((w) => w.activation === activation)) {
      return close().finally(() => {
        workers.pool = workers.pool.filter((w) => w.activation !== activation);
        if (workers.pool.length === 0) this.#workers.delete(activation.identity);
      });
    }
    return this.#activations.retire(activation, close);
  }

  /** Stops serving at once: waiting and running calls fail with LEASE_LOST; then every activation ends. */
  async #fence(expired: boolean): Promise<void> {
    const lost = new KoalaError('LEASE_LOST', `host ${this.id} lost its placement lease; retry`);
    const all = this.#allActivations();
    for (const activation of all) activation.abort(lost);
    if (!expired) return this.#deactivateAll(false);
    await Promise.all(all.map((a) => this.#retire(a, async () => a.kill())));
  }

  async #deactivateAll(release: boolean): Promise<void> {
    // A bounded number at a time: a million deactivations started at once would hold a million
    // pending promise chains, and collecting them cost more than the deactivations (21 s vs 4 s).
    const all = this.#allActivations();
    let next = 0;
    const lane = async () => {
      while (next < all.length) await this.#deactivate(all[next++]!, release);
    };
    await Promise.all(Array.from({ length: Math.min(DEACTIVATE_CONCURRENCY, all.length) }, lane));
  }

  // ---- outgoing calls ------------------------------------------------------------------------

  /**
   * A typed proxy for calls made by actors on this host: the chain, deadline and path follow the
   * caller. A call to an actor already active on this host runs in-process, without encoding: its
   * arguments and result are passed by reference (treat them as immutable).
   */
  proxy<I extends ActorInterface>(iface: I, id: string | number, opts?: ProxyOptions): ActorProxy<I> {
    const timeoutMs = opts?.timeoutMs;
    // Actors make a proxy per call (`this.getProxy(I, id).m()`): without options they share one invoker.
    return createProxy(iface, id, timeoutMs === undefined ? this.#invokeFromActor : (target, key, message, args) => this.#invoke(target, key, message, args, timeoutMs));
  }

  readonly #invokeFromActor: Invoker = (target, key, message, args) => this.#invoke(target, key, message, args, undefined);

  #invoke(target: ActorInterface, key: string, message: AvroMessageTypes, args: unknown[], timeoutMs: number | undefined): Promise<unknown> {
    const caller = currentCall();
    const served = this.#servedAs(target.name);
    if (served !== undefined && served.maxLocal === 0) {
      const local = this.#activations.live(target.name, key);
      if (local !== undefined) return this.#callLocal(local, served, message, args, caller, timeoutMs);
    }
    return this.#callRouted(target, key, message, args, caller, timeoutMs);
  }

  /**
   * A call's absolute deadline: its budget from now, or the deadline of the call being served if
   * that comes first. It mostly does (a client's call with the cluster's timeout, counted from
   * earlier), and the last clock reading shows it without a reading of its own: that reading is
   * never later than now, so a deadline that comes first at it comes first at any later time too,
   * and then the call's deadline is exactly the caller's. Near that deadline's end a fresh reading
   * decides whether any time is left. A long budget (LONG_BUDGET_MS) also counts from the last
   * reading. `key` names the target in the error (built only then).
   */
  #deadlineFor(target: ActorInterface, key: string, method: string, caller: CallContext | undefined, timeoutMs: number | undefined): number {
    const budget = timeoutMs ?? target.options.methodTimeoutsMs?.[method] ?? target.options.timeoutMs ?? this.#opts.callTimeoutMs;
    const inherited = caller === undefined ? 0 : caller.deadline;
    const last = lastReading();
    const left = inherited > 0 ? inherited - last : Infinity;
    if (left > NEAR_END_MS) {
      if (left <= budget) return inherited;
      if (budget >= LONG_BUDGET_MS) return last + budget;
    }
    const now = clockNow();
    const deadline = inherited > 0 ? Math.min(inherited, now + budget) : now + budget;
    if (deadline <= now) throw new TimeoutError(`no time left in the call chain to call ${target.name}/${key}.${method}`);
    return deadline;
  }

  #callLocal(activation: Activation, served: Served, message: AvroMessageTypes, args: unknown[], caller: CallContext | undefined, timeoutMs: number | undefined): Promise<unknown> {
    let deadline: number;
    try {
      // The same checks as on the wire (where encoding does them), without the encoding.
      checkArgs(activation.iface, message, args);
      deadline = this.#deadlineFor(activation.iface, activation.key, message.name, caller, timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    const ctx: CallContext = { chain: caller?.chain ?? newChainId(), deadline, identity: activation.identity, parent: caller, origin: undefined };
    const method = activation.instance[message.name] as (...a: unknown[]) => unknown;
    const call = activation.enqueue(method, args, ctx, served.interleave.has(message.name), true, served.checkers.get(message.name));
    if (!message.oneWay) return call;
    call.catch((err: Error) => this.#opts.log.warn(`one-way ${activation.identity}.${message.name} failed: ${err.message}`));
    return Promise.resolve(undefined);
  }

  /** Expires the turns whose deadline has passed; returns the earliest deadline of the others. */
  #sweepDeadlines(now: number): number {
    let next = Infinity;
    for (const activation of this.#busy) {
      const earliest = activation.expire(now);
      if (earliest < next) next = earliest;
      if (earliest === Infinity) {
        this.#busy.delete(activation);
        activation.watched = false;
      }
    }
    return next;
  }

  #callRouted(target: ActorInterface, key: string, message: AvroMessageTypes, args: unknown[], caller: CallContext | undefined, timeoutMs: number | undefined): Promise<unknown> {
    const deadline = this.#deadlineFor(target, key, message.name, caller, timeoutMs);
    const headers = caller ? this.#pathHeaders(caller) : NO_HEADERS;
    const chain = caller?.chain ?? newChainId();
    // A closure for one-way errors only where there can be one (not one per call).
    const onOneWayError = message.oneWay ? (err: Error) => this.#opts.log.warn(`one-way ${target.name}/${key}.${message.name} failed: ${err.message}`) : undefined;
    // The budget sent is counted from the reading the deadline came from, or a later one: more
    // than what is left by at most the time this task has run since (never less).
    return this.#router.callAs(target, message, args, key, chain, deadline, headers, onOneWayError, lastReading());
  }

  /**
   * The headers of calls made by the turn `caller`: its `koala-path` (`deadlockPath`), or none.
   * The same for all its calls (a turn that fans out makes thousands), so they are built once per
   * turn.
   */
  #pathHeaders(caller: CallContext): Record<string, string> {
    if (caller === this.#lastTurn) return this.#lastTurnHeaders;
    let headers = this.#headersByTurn.get(caller);
    if (headers === undefined) {
      const path = deadlockPath(caller, this.#isReentrant);
      // Frozen: the frame writer then knows it cannot change and reuses its encoding.
      headers = path.length === 0 ? NO_HEADERS : Object.freeze({ [PATH_HEADER]: path.join(' ') });
      this.#headersByTurn.set(caller, headers);
    }
    this.#lastTurn = caller;
    this.#lastTurnHeaders = headers;
    return headers;
  }

  /** Whether the actor `identity` (`Interface/key`, active here) is of a reentrant interface; unknown ones count as not. */
  readonly #isReentrant = (identity: string): boolean => {
    const served = this.#servedAs(identity.slice(0, identity.indexOf('/')));
    return served !== undefined && served.plugin.interface.options.reentrant !== false;
  };
}

/**
 * A call the host took on its short path: the turn itself, its context (chain, deadline, identity)
 * and the receiver of its outcome in one object, which answers with the result encoded into the
 * answer frame, or the typed error.
 */
class ActiveCall implements Turn, TurnDone, CallContext {
  // As a turn:
  readonly method: (...a: unknown[]) => unknown;
  readonly args: readonly unknown[];
  readonly touch = true;
  readonly check = undefined;
  readonly ctx: CallContext = this;
  readonly done: TurnDone = this;
  settled = false;
  // As its context:
  readonly deadline: number;
  readonly identity: string;
  readonly parent: undefined = undefined;
  #chain: string;
  readonly #host: Host;
  readonly #env: DecodedEnvelope;
  readonly #peer: Peer;
  readonly #iface: ActorInterface;
  readonly #message: AvroMessageTypes;

  constructor(host: Host, env: DecodedEnvelope, peer: Peer, iface: ActorInterface, message: AvroMessageTypes, identity: string, method: (...a: unknown[]) => unknown, args: readonly unknown[]) {
    this.method = method;
    this.args = args;
    this.#chain = env.chain;
    this.deadline = env.deadline;
    this.identity = identity;
    this.#host = host;
    this.#env = env;
    this.#peer = peer;
    this.#iface = iface;
    this.#message = message;
  }

  /**
   * A call from outside the cluster starts a chain. Its id is made when first read (by a call the
   * turn makes, or a call arriving while it holds the actor): most turns make no calls, and an id
   * per call was a measurable part of the short path.
   */
  get chain(): string {
    if (this.#chain === '') this.#chain = newChainId();
    return this.#chain;
  }

  get origin(): string | undefined {
    return originFromHeaders(this.#env.headers);
  }

  resolve(value: unknown): void {
    replyResult(this.#peer, this.#env, this.#iface, this.#message, value, this.identity);
  }

  reject(err: unknown): void {
    // It closed under us: the general path takes the call to the next activation.
    if (err instanceof ActivationGone) this.#host.onRequestSlow(this.#env, this.#peer);
    else replyError(this.#peer, this.#env, err, this.identity);
  }
}
