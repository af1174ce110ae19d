// One live actor: its instance and its mailbox. Turns run one at a time in arrival order; an error
// in one turn fails that call only. A call from the chain that holds the actor re-enters at once
// (reentrancy), or — for a non-reentrant interface — fails at once as a deadlock.
import { KoalaError, TimeoutError } from '../errors/errors.ts';
import type { ActorInterface } from '../interface/interface.ts';

export interface TurnOptions {
  /** The call chain the turn belongs to ('' = none). */
  chain: string;
  /** Absolute deadline (ms); a turn whose caller has given up is not run. 0 = none. */
  deadline: number;
  /** Runs beside other turns instead of waiting for the mailbox (read-only / interleaving methods). */
  interleave?: boolean;
  /** Counts as activity for idle deactivation (timer ticks do not). Default true. */
  touch?: boolean;
  /** The chain's path of identities, for the deadlock message. */
  path?: readonly string[];
}

interface Turn {
  run: () => unknown;
  opts: TurnOptions;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
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
  /** The placement epoch this activation was granted under. */
  readonly epoch: number;
  readonly #reentrant: boolean;
  state: ActivationState = 'active';
  lastActiveAt = Date.now();
  readonly #queue: Turn[] = [];
  #head = 0;
  /** The chain whose turn holds the mailbox; undefined when idle. */
  #holder: string | undefined;
  #busy = false;
  #inFlight = 0;
  readonly #disposers = new Set<() => void>();

  constructor(iface: ActorInterface, key: string, instance: object, epoch: number) {
    this.iface = iface;
    this.key = key;
    this.identity = `${iface.name}/${key}`;
    this.instance = instance as Record<string, unknown>;
    this.epoch = epoch;
    this.#reentrant = iface.options.reentrant !== false;
  }

  /** Turns waiting in the mailbox. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** Nothing running, nothing waiting. */
  get quiet(): boolean {
    return !this.#busy && this.#inFlight === 0 && this.queued === 0;
  }

  /** Registers cleanup (timers) to run when the activation dies. */
  onDispose(fn: () => void): () => void {
    this.#disposers.add(fn);
    return () => this.#disposers.delete(fn);
  }

  /** Schedules a turn; resolves with what it returned. */
  enqueue<T>(run: () => T | Promise<T>, opts: TurnOptions): Promise<T> {
    if (this.state !== 'active') return Promise.reject(new ActivationGone(`${this.identity} is ${this.state}`));
    if (opts.chain !== '' && opts.chain === this.#holder) {
      if (!this.#reentrant) return Promise.reject(this.#deadlock(opts));
      return this.#runNow(run, opts); // re-entry: the holder is waiting for this very call
    }
    if (opts.interleave) return this.#runNow(run, opts);
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run, opts, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#busy) void this.#drain();
    });
  }

  /** Runs `run` as the last turn, then refuses all further turns. */
  async close(run: () => unknown): Promise<void> {
    if (this.state !== 'active') return;
    const last = new Promise<unknown>((resolve, reject) => {
      this.#queue.push({ run, opts: { chain: '', deadline: 0, touch: false }, resolve, reject });
      if (!this.#busy) void this.#drain();
    });
    this.state = 'deactivating';
    try {
      await last;
    } finally {
      this.state = 'dead';
      for (const dispose of this.#disposers) dispose();
      this.#disposers.clear();
    }
  }

  async #runNow<T>(run: () => T | Promise<T>, opts: TurnOptions): Promise<T> {
    this.#inFlight++;
    if (opts.touch !== false) this.lastActiveAt = Date.now();
    try {
      return await run();
    } finally {
      this.#inFlight--;
    }
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    while (this.#head < this.#queue.length) {
      const turn = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Turn;
      if (turn.opts.deadline > 0 && turn.opts.deadline <= Date.now()) {
        turn.reject(new TimeoutError(`the call to ${this.identity} expired while it waited in the mailbox`, this.identity));
        continue;
      }
      if (turn.opts.touch !== false) this.lastActiveAt = Date.now();
      this.#holder = turn.opts.chain === '' ? undefined : turn.opts.chain;
      try {
        turn.resolve(await turn.run());
      } catch (err) {
        turn.reject(err);
      }
      this.#holder = undefined;
    }
    this.#queue.length = 0;
    this.#head = 0;
    this.#busy = false;
  }

  #deadlock(opts: TurnOptions): KoalaError {
    const path = opts.path ?? [];
    const start = path.indexOf(this.identity);
    const cycle = [...(start >= 0 ? path.slice(start) : path), this.identity].join(' → ');
    return new KoalaError('DEADLOCK', `deadlock: ${cycle}; ${this.iface.name} is not reentrant, so ${this.identity} cannot take a call from the chain it is waiting on`, {
      name: 'DeadlockError',
      actor: this.identity,
    });
  }
}
