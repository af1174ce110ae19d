// The base class of actor implementations. The runtime binds each instance to its identity
// before `onActivate`; implementations use `this.id` and, for calls, `this.getProxy`.
import type { ActorInterface, ActorProxy } from '../interface/interface.ts';
import type { TimerHandle } from './timers.ts';

export interface ProxyOptions {
  /** Deadline of each call through this proxy, in ms (default: the interface's, else the cluster's). */
  readonly timeoutMs?: number;
}

/** A client session bound to this actor (through a gateway). */
export interface Session {
  readonly id: string;
  /** The claims of the session's signed first packet. */
  readonly claims: Readonly<Record<string, string>>;
  /** Sends a message to this client: bytes, or a value of the interface's `session.outbound` type. */
  push(data: unknown): void;
}

export interface ActorContext {
  readonly iface: ActorInterface;
  readonly key: string;
  readonly hostId: string;
  getProxy<I extends ActorInterface>(iface: I, id: string | number, opts?: ProxyOptions): ActorProxy<I>;
  registerTimer(callback: () => unknown, dueMs: number, periodMs: number): TimerHandle;
  deactivateOnIdle(): void;
  sessions(): Session[];
  /** Persistent state, when the plugin declares it. */
  state: StateAccess | undefined;
  registerReminder(name: string, dueMs: number, periodMs: number): Promise<void>;
  unregisterReminder(name: string): Promise<void>;
}

export interface StateAccess {
  get(): unknown;
  set(value: unknown): void;
  write(): Promise<void>;
  clear(): Promise<void>;
  /** Sub-keyed rows (large state split into rows), read and written one at a time. */
  readRow(subKey: string): Promise<unknown>;
  writeRow(subKey: string, value: unknown): Promise<void>;
  clearRow(subKey: string): Promise<void>;
}

// A registered symbol, not a private one: a plugin that resolved its own copy of Koala still gets bound.
const CONTEXT = Symbol.for('koala.actorContext');

/** `S`: the type of `this.state` (declare the state's Avro schema in `definePlugin`). */
export class Actor<S = unknown> {
  [CONTEXT]: ActorContext | undefined;

  /** The actor's id (the `1` in `IPlayer/1`). */
  get id(): string {
    return this.#context().key;
  }

  /** `Interface/id`. */
  get identity(): string {
    const ctx = this.#context();
    return `${ctx.iface.name}/${ctx.key}`;
  }

  /**
   * A proxy to another actor (or to this one), wherever it lives. `timeoutMs` shortens its calls'
   * deadline (never beyond what is left of the current call's).
   */
  getProxy<I extends ActorInterface>(iface: I, id: string | number, opts?: ProxyOptions): ActorProxy<I> {
    return this.#context().getProxy(iface, id, opts);
  }

  /**
   * Runs `callback` as a turn after `dueMs`, then every `periodMs` (0 = once). Ticks are
   * drift-compensated, do not keep the actor alive and stop when it deactivates.
   */
  registerTimer(callback: () => unknown, dueMs: number, periodMs = 0): TimerHandle {
    return this.#context().registerTimer(callback, dueMs, periodMs);
  }

  /**
   * The actor's persistent state: loaded before its first turn (or the plugin's initial value).
   * Change it, then `await this.writeState()`.
   */
  get state(): S {
    return this.#stateAccess().get() as S;
  }

  set state(value: S) {
    this.#stateAccess().set(value);
  }

  /**
   * Persists `this.state`; resolves once it is durable. Fails with STALE_STATE if the stored state
   * changed since this activation read it (this activation is stale: another one owns the actor).
   */
  writeState(): Promise<void> {
    return this.#stateAccess().write();
  }

  /** Removes the stored state; `this.state` goes back to the initial value. */
  clearState(): Promise<void> {
    return this.#stateAccess().clear();
  }

  /** One sub-keyed row of this actor's state (declared with `state.rows`); undefined if absent. */
  readStateRow<R = unknown>(subKey: string): Promise<R | undefined> {
    return this.#stateAccess().readRow(subKey) as Promise<R | undefined>;
  }

  /** Writes one row, with the same version check and durability as `writeState`. */
  writeStateRow(subKey: string, value: unknown): Promise<void> {
    return this.#stateAccess().writeRow(subKey, value);
  }

  clearStateRow(subKey: string): Promise<void> {
    return this.#stateAccess().clearRow(subKey);
  }

  #stateAccess(): StateAccess {
    const access = this.#context().state;
    if (access === undefined) throw new Error(`${this.identity} has no persistent state: declare it with definePlugin({ …, state: { schema, initial } })`);
    return access;
  }

  /**
   * A durable reminder: `receiveReminder(name)` is called after `dueMs`, then every `periodMs`
   * (0 = once), even if the actor was deactivated or its hosts restarted — it is activated for it.
   * Delivery is at least once. Registering a name again replaces it. Resolves once persisted.
   */
  registerReminder(name: string, dueMs: number, periodMs = 0): Promise<void> {
    return this.#context().registerReminder(name, dueMs, periodMs);
  }

  unregisterReminder(name: string): Promise<void> {
    return this.#context().unregisterReminder(name);
  }

  /** The client sessions bound to this actor now. An actor with sessions is not deactivated when idle. */
  get sessions(): readonly Session[] {
    return this.#context().sessions();
  }

  /** Sends a message to every client session bound to this actor. */
  pushToSessions(data: unknown): void {
    for (const s of this.#context().sessions()) s.push(data);
  }

  /** Deactivates this actor once its current turn ends and its mailbox is empty. */
  deactivateOnIdle(): void {
    this.#context().deactivateOnIdle();
  }

  #context(): ActorContext {
    const ctx = this[CONTEXT];
    if (ctx === undefined) throw new Error('this actor is not activated yet: use its identity from onActivate or a method, not the constructor');
    return ctx;
  }
}

/** Lifecycle hooks an implementation may define. */
export interface ActorLifecycle {
  onActivate?(): unknown;
  onDeactivate?(): unknown;
  /** A client session bound to this actor (or resumed its binding). */
  onSessionOpen?(session: Session): unknown;
  /** A message from a bound client: bytes, or a value of the interface's `session.inbound` type. */
  onSessionMessage?(session: Session, data: unknown): unknown;
  /** A bound client's connection closed. */
  onSessionClosed?(session: Session): unknown;
  /** A durable reminder is due (see `registerReminder`). */
  receiveReminder?(name: string): unknown;
}

/** Gives an activation its loaded state (after binding, before its first turn). */
export function bindState(instance: object, access: StateAccess): void {
  const ctx = (instance as { [CONTEXT]?: ActorContext })[CONTEXT];
  if (ctx) (ctx as { state: StateAccess | undefined }).state = access;
}

export function bindActor(instance: object, ctx: ActorContext): void {
  (instance as { [CONTEXT]?: ActorContext })[CONTEXT] = ctx;
}
