// A rate meter: counts hits, and every PERIOD_MS a timer turns the count into a sample.
import { setTimeout as sleep } from 'node:timers/promises';
import { Actor, defineInterface, definePlugin, type MethodResult } from 'koala';

export const PERIOD_MS = 50;

export const IRate = defineInterface(
  {
    protocol: 'IRate',
    types: [{ type: 'record', name: 'Sample', fields: [{ name: 'at', type: 'double' }, { name: 'hits', type: 'int' }] }],
    messages: {
      hit: { request: [], response: 'null' },
      samples: { request: [], response: { type: 'array', items: 'Sample' } },
      pause: { request: [], response: 'null' },
      /** A long call: sleeps `ms`, holding the mailbox. */
      hold: { request: [{ name: 'ms', type: 'int' }], response: 'null' },
    },
  },
  { idleTimeoutMs: 1000 },
);

/** `{ at: number; hits: number }`, inferred from the protocol. */
type Sample = MethodResult<typeof IRate.protocol, 'samples'>[number];

class Rate extends Actor {
  #hits = 0;
  readonly #samples: Sample[] = [];
  #timer: ReturnType<Actor['registerTimer']> | undefined;

  onActivate(): void {
    // Each tick is a turn: no call runs during it, so no hit is lost or counted twice.
    this.#timer = this.registerTimer(
      () => {
        this.#samples.push({ at: Date.now(), hits: this.#hits });
        if (this.#samples.length > 200) this.#samples.shift();
        this.#hits = 0;
      },
      PERIOD_MS,
      PERIOD_MS,
    );
  }

  hit(): null {
    this.#hits++;
    return null;
  }

  samples(): Sample[] {
    return this.#samples;
  }

  pause(): null {
    this.#timer?.dispose();
    return null;
  }

  async hold(ms: number): Promise<null> {
    await sleep(ms);
    return null;
  }
}

export default definePlugin({ interface: IRate, implementation: Rate });
