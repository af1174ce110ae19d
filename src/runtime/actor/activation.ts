// One live actor: its instance and its mailbox. Turns run one at a time, in arrival order, and an
// error in one turn fails that call only.
import type { ActorInterface } from '../interface/interface.ts';

interface Turn {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class Activation {
  readonly iface: ActorInterface;
  readonly key: string;
  readonly instance: Record<string, unknown>;
  /** The placement epoch this activation was granted under. */
  readonly epoch: number;
  lastActiveAt = Date.now();
  readonly #queue: Turn[] = [];
  #head = 0;
  #running = false;

  constructor(iface: ActorInterface, key: string, instance: object, epoch: number) {
    this.iface = iface;
    this.key = key;
    this.instance = instance as Record<string, unknown>;
    this.epoch = epoch;
  }

  get identity(): string {
    return `${this.iface.name}/${this.key}`;
  }

  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** Schedules a turn; resolves with what it returned. */
  enqueue<T>(run: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    while (this.#head < this.#queue.length) {
      const turn = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Turn;
      this.lastActiveAt = Date.now();
      try {
        turn.resolve(await turn.run());
      } catch (err) {
        turn.reject(err);
      }
    }
    this.#queue.length = 0;
    this.#head = 0;
    this.#running = false;
  }
}
