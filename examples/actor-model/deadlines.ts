// Deadlines: per interface, per method, per proxy, and down a call chain.
import { setTimeout as sleep } from 'node:timers/promises';
import { Actor, defineInterface, definePlugin } from 'koala';

export const IBackend = defineInterface(
  {
    protocol: 'IBackend',
    messages: {
      fetch: { request: [{ name: 'key', type: 'string' }, { name: 'ms', type: 'int' }], response: 'string' },
      preview: { request: [{ name: 'key', type: 'string' }, { name: 'ms', type: 'int' }], response: 'string' },
      via: { request: [{ name: 'other', type: 'string' }, { name: 'key', type: 'string' }, { name: 'ms', type: 'int' }], response: 'string' },
      fetched: { request: [], response: { type: 'array', items: 'string' } },
    },
  },
  {
    // Calls to IBackend get 2 s unless the caller says otherwise; `preview` gets 200 ms.
    timeoutMs: 2000,
    methodTimeoutsMs: { preview: 200 },
    // `fetched` only reads: it runs beside a fetch in progress instead of waiting for it.
    interleave: ['fetched'],
  },
);

class Backend extends Actor {
  readonly #fetched: string[] = [];

  /** Takes `ms` to produce the value of `key` (stands for slow I/O). */
  async fetch(key: string, ms: number): Promise<string> {
    await sleep(ms);
    this.#fetched.push(key);
    return `value of ${key}`;
  }

  async preview(key: string, ms: number): Promise<string> {
    return this.fetch(key, ms);
  }

  /** Fetches from another backend: that call gets what is left of this call's deadline. */
  async via(other: string, key: string, ms: number): Promise<string> {
    return this.getProxy(IBackend, other).fetch(key, ms);
  }

  /** The keys whose fetch ran to the end, in order. */
  fetched(): string[] {
    return this.#fetched;
  }
}

export default definePlugin({ interface: IBackend, implementation: Backend });
