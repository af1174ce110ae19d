// A visit counter that survives deactivation: onActivate loads it from a file, onDeactivate
// saves it. Idle actors are deactivated; an actor can also ask to be deactivated.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Actor, defineInterface, definePlugin } from 'koala';

export const ICounter = defineInterface(
  {
    protocol: 'ICounter',
    messages: {
      visit: { request: [], response: 'int' },
      /** How many times this counter has been activated. */
      loads: { request: [], response: 'int' },
      /** A long call: sleeps `ms` (the actor is busy, not idle). */
      hold: { request: [{ name: 'ms', type: 'int' }], response: 'null' },
      close: { request: [], response: 'null' },
    },
  },
  // Deactivate after 1 s without calls (the host group's idleTimeout is 15 min by default).
  { idleTimeoutMs: 1000, interleave: ['loads'] },
);

interface Saved {
  visits: number;
  loads: number;
}

/** Where a counter is saved: under $KOALA_EXAMPLE_DATA, else under the system's temp directory. */
export function fileOf(identity: string): string {
  const dir = process.env.KOALA_EXAMPLE_DATA ?? join(tmpdir(), 'koala-example-data');
  return join(dir, `${encodeURIComponent(identity)}.json`);
}

class Counter extends Actor {
  #saved: Saved = { visits: 0, loads: 0 };

  async onActivate(): Promise<void> {
    const text = await readFile(fileOf(this.identity), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined; // a new counter
      throw err;
    });
    // A file that does not parse fails the activation: the caller gets an ActivationError.
    if (text !== undefined) this.#saved = JSON.parse(text) as Saved;
    this.#saved.loads++;
  }

  async onDeactivate(): Promise<void> {
    const file = fileOf(this.identity);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(this.#saved));
  }

  visit(): number {
    return ++this.#saved.visits;
  }

  loads(): number {
    return this.#saved.loads;
  }

  async hold(ms: number): Promise<null> {
    await sleep(ms);
    return null;
  }

  close(): null {
    this.deactivateOnIdle();
    return null;
  }
}

export default definePlugin({ interface: ICounter, implementation: Counter });
