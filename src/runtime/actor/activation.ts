// One live actor: its instance and its mailbox. Turns run one at a time in arrival order; an error
// in one turn fails that call only. A call from the chain that holds the actor re-enters at once
// (reentrancy), or — for a non-reentrant interface — fails at once as a deadlock.
import { KoalaError, TimeoutError } from '../errors/errors.ts';
import { lastReading } from '../util/clock.ts';
import { isThenable } from '../util/thenable.ts';
import type { ActorInterface } from '../interface/interface.ts';
import { callSync, isAsyncFunction, pathOf, runInCall, type CallContext } from './call-context.ts';

type Method = (...args: unknown[]) => unknown;

/**
 * A call waiting for or running in the mailbox. A hot path may hand in its own object (`enqueueTurn`)
 * that is also the call's context and hears its outcome: one object per call.
 */
export interface Turn {
  readonly method: Method;
  readonly args: readonly unknown[];
  readonly ctx: CallContext;
  readonly touch: boolean;
  /** Validates (and may normalise) the result before it is delivered; throwing fails the call. */
  readonly check: ((value: unknown) => unknown) | undefined;
  /** Hears the outcome: a caller's handler, or (for `enqueue`) the turn itself with its Promise's functions. */
  readonly done: TurnDone;
  /** Answered (or expired): a later outcome is dropped. Starts false. */
  settled: boolean;
}

/** Told how a turn ended: its result, or the error it failed with. */
export interface TurnDone {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

function settle(turn: Turn, value: unknown, failed: boolean): void {
  if (turn.settled) return;
  turn.settled = true;
  if (failed) {
    turn.done.reject(value);
    return;
  }
  let result: unknown;
  try {
    result = turn.check ? turn.check(value) : value;
  } catch (err) {
    turn.done.reject(err);
    return;
  }
  turn.done.resolve(result);
}

export type ActivationState = 'active' | 'deactivating' | 'dead';

/** Thrown by `enqueue` on an activation that is going away: the caller obtains a fresh one. */
export class ActivationGone extends Error {
  override name = 'ActivationGone';
}


export class Activation {
  readonly iface: ActorInterface;
  readonly key: string;
  readonly identity: string;
  readonly instance: Record<string, unknown>;
  /** The placement epoch this activation was granted under (0 = not placed: a stateless worker). */
  readonly epoch: number;
  readonly #reentrant: boolean;
  state: ActivationState = 'active';
  /** Client sessions bound to this actor, by id (created on the first). */
  sessions: Map<string, { gateway: string; claims: Record<string, string> }> | undefined;
  /** Sessions whose close arrived before their open (events of one session can overtake each other). */
  closedSessions: Set<string> | undefined;
  lastActiveAt = Date.now();
  // Created on first use: an idle actor should cost as little memory as possible.
  #queue: Turn[] | undefined;
  #head = 0;
  /**
   * The context of the turn that holds the mailbox; undefined when none does. Its chain is read
   * only when another call arrives meanwhile: a host creates a chain id lazily, and one that
   * nobody read cannot have come back.
   */
  #holder: CallContext | undefined;
  #busy = false;
  /** The exclusive turn running now. */
  #current: Turn | undefined;
  /** Turns running beside the mailbox (re-entries, interleaving methods). */
  #side: Set<Turn> | undefined;
  #disposers: Set<() => void> | undefined;
  /** Told of each turn with a deadline, so that someone expires it on time (`expire`). */
  readonly #watch: ((a: Activation, deadline: number) => void) | undefined;
  /** For whoever `watch` tells: whether it already holds this activation among those it sweeps. */
  watched = false;
  /** Gives errors thrown by the actor the shape they have after crossing the wire. */
  readonly #mapError: ((err: unknown, identity: string) => unknown) | undefined;

  constructor(iface: ActorInterface, key: string, identity: string, instance: object, epoch: number, watch?: (a: Activation, deadline: number) => void, mapError?: (err: unknown, identity: string) => unknown) {
    this.#watch = watch;
    this.#mapError = mapError;
    this.iface = iface;
    this.key = key;
    this.identity = identity;
    this.instance = instance as Record<string, unknown>;
    this.epoch = epoch;
    this.#reentrant = iface.options.reentrant !== false;
  }

  /** Turns waiting in the mailbox. */
  get queued(): number {
    return this.#queue === undefined ? 0 : this.#queue.length - this.#head;
  }

  /** Nothing running, nothing waiting. */
  get quiet(): boolean {
    return !this.#busy && (this.#side === undefined || this.#side.size === 0) && this.queued === 0;
  }

  /** Registers cleanup (timers) to run when the activation dies. */
  onDispose(fn: () => void): () => void {
    (this.#disposers ??= new Set()).add(fn);
    return () => this.#disposers?.delete(fn);
  }

  /**
   * Schedules `method.apply(instance, args)` as a turn running in `ctx`. `interleave` turns run
   * beside others; `touch` = false (timer ticks) does not count as activity.
   */
  enqueue(method: Method, args: readonly unknown[], ctx: CallContext, interleave = false, touch = true, check?: (value: unknown) => unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      // The turn hears its own outcome, with its Promise's functions: no receiver object per call.
      const turn = { method, args, ctx, touch, check, done: undefined as unknown as TurnDone, settled: false, resolve, reject };
      turn.done = turn;
      this.#schedule(turn, interleave);
    });
  }

  /** `enqueue` without a Promise: `turn.done` hears the outcome (a host's hot path). */
  enqueueTurn(turn: Turn, interleave = false): void {
    this.#schedule(turn, interleave);
  }

  #schedule(turn: Turn, interleave: boolean): void {
    if (this.state !== 'active') {
      turn.done.reject(new ActivationGone(`${this.identity} is ${this.state}`));
      return;
    }
    const ctx = turn.ctx;
    if (ctx.deadline > 0 && this.#watch !== undefined) this.#watch(this, ctx.deadline);
    if (this.#heldBy(ctx)) {
      if (!this.#reentrant) turn.done.reject(this.#deadlock(ctx));
      else this.#runNow(turn); // re-entry: the holder is waiting for this very call
      return;
    }
    if (interleave) {
      this.#runNow(turn);
      return;
    }
    if (this.#busy) (this.#queue ??= []).push(turn);
    else this.#drain(turn); // an idle mailbox: the turn runs at once, without a queue
  }

  /** Whether `ctx` belongs to the chain whose turn holds the mailbox (a re-entry). */
  #heldBy(ctx: CallContext): boolean {
    const holder = this.#holder;
    if (holder === undefined) return false;
    const chain = holder.chain;
    return chain !== '' && ctx.chain === chain;
  }

  /**
   * Fails every call waiting for or running in this activation with `err` (their turns are not
   * run, or their results dropped). For a host that must stop serving now: its lease is gone.
   */
  abort(err: Error): void {
    if (this.#queue) for (let i = this.#head; i < this.#queue.length; i++) settle(this.#queue[i]!, err, true);
    if (this.#current) settle(this.#current, err, true);
    if (this.#side) for (const turn of this.#side) settle(turn, err, true);
  }

  /** Ends the activation at once, without a last turn (its actor may already live elsewhere). */
  kill(): void {
    this.state = 'dead';
    this.#dispose();
  }

  #dispose(): void {
    if (this.#disposers) for (const dispose of this.#disposers) dispose();
    this.#disposers = undefined;
  }

  /** Runs `last` as the final turn, then refuses all further turns. */
  async close(last: Method, ctx: CallContext): Promise<void> {
    if (this.state !== 'active') return;
    const done = this.enqueue(last, [], ctx, false, false);
    this.state = 'deactivating';
    try {
      await done;
    } finally {
      this.state = 'dead';
      this.#dispose();
    }
  }

  /** Runs a turn at once, beside the mailbox (re-entry or an interleaving method). */
  #runNow(turn: Turn): void {
    if (turn.touch) this.lastActiveAt = lastReading();
    (this.#side ??= new Set()).add(turn);
    const done = (value: unknown, failed: boolean) => {
      this.#side?.delete(turn);
      settle(turn, value, failed);
    };
    try {
      Promise.resolve(runInCall(turn.ctx, turn.method, this.instance, turn.args)).then(
        (v) => done(v, false),
        (e: unknown) => done(this.#mapped(e), true),
      );
    } catch (err) {
      done(this.#mapped(err), true);
    }
  }

  #drain(first: Turn): void {
    this.#busy = true;
    this.#runTurns(first, false);
  }

  /**
   * Runs `turn`, then the mailbox's turns in order, in this same tick for as long as they finish
   * synchronously (most do: no Promise per drain); a turn that returns a promise continues the
   * drain once it settles (`#awaitTurn`). Activity is stamped once, when the mailbox runs dry (an
   * activation is not idle while it drains, and reading the clock per turn was a measurable part
   * of an in-host call).
   */
  #runTurns(turn: Turn | undefined, touched: boolean): void {
    for (; turn !== undefined; turn = this.#dequeue()) {
      if (turn.settled) continue; // expired while waiting: its caller already has a TimeoutError
      if (turn.touch) touched = true;
      this.#holder = turn.ctx;
      this.#current = turn;
      try {
        // Only `async` methods need a storage frame: their code after an await must still find its call.
        const result = isAsyncFunction(turn.method) ? runInCall(turn.ctx, turn.method, this.instance, turn.args) : callSync(turn.ctx, turn.method, this.instance, turn.args);
        if (isThenable(result)) {
          void this.#awaitTurn(turn, result, touched);
          return;
        }
        settle(turn, result, false);
      } catch (err) {
        settle(turn, this.#mapped(err), true);
      }
      this.#current = undefined;
      this.#holder = undefined;
    }
    if (touched) this.lastActiveAt = lastReading();
    this.#queue = undefined;
    this.#head = 0;
    this.#busy = false;
  }

  /** The next turn waiting in the mailbox, taken out of it. */
  #dequeue(): Turn | undefined {
    const queue = this.#queue;
    if (queue === undefined || this.#head >= queue.length) return undefined;
    const turn = queue[this.#head]!;
    queue[this.#head++] = undefined as unknown as Turn;
    return turn;
  }

  /** Waits for a turn's promise, settles the turn, and goes on with the mailbox. */
  async #awaitTurn(turn: Turn, result: PromiseLike<unknown>, touched: boolean): Promise<void> {
    try {
      settle(turn, await result, false);
    } catch (err) {
      settle(turn, this.#mapped(err), true);
    }
    this.#current = undefined;
    this.#holder = undefined;
    this.#runTurns(this.#dequeue(), touched);
  }

  /** An error the actor threw, in the shape it has after crossing the wire (see `mapError`). */
  #mapped(err: unknown): unknown {
    return this.#mapError ? this.#mapError(err, this.identity) : err;
  }

  /**
   * Fails the calls whose deadline has passed (queued or running); their late results are dropped.
   * Returns the earliest deadline of the calls left (Infinity: none).
   */
  expire(now: number): number {
    let next = Infinity;
    const check = (turn: Turn) => {
      const deadline = turn.ctx.deadline;
      if (turn.settled || deadline <= 0) return;
      if (deadline <= now) settle(turn, new TimeoutError(`${this.identity}.${turn.method.name || 'call'} did not answer before its deadline`, this.identity), true);
      else if (deadline < next) next = deadline;
    };
    if (this.#queue) for (let i = this.#head; i < this.#queue.length; i++) check(this.#queue[i]!);
    if (this.#current) check(this.#current);
    if (this.#side) for (const turn of this.#side) check(turn);
    return next;
  }

  #deadlock(ctx: CallContext): KoalaError {
    const path = ctx.parent ? pathOf(ctx.parent) : ctx.origin ? ctx.origin.split(' ') : [];
    const start = path.indexOf(this.identity);
    const cycle = [...(start >= 0 ? path.slice(start) : path), this.identity].join(' → ');
    return new KoalaError('DEADLOCK', `deadlock: ${cycle}; ${this.iface.name} is not reentrant, so ${this.identity} cannot take a call from the chain it is waiting on`, {
      name: 'DeadlockError',
      actor: this.identity,
    });
  }
}
