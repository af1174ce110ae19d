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
}

// A registered symbol, not a private one: a plugin that resolved its own copy of Koala still gets bound.
const CONTEXT = Symbol.for('koala.actorContext');

export class Actor {
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
}

export function bindActor(instance: object, ctx: ActorContext): void {
  (instance as { [CONTEXT]?: ActorContext })[CONTEXT] = ctx;
}
