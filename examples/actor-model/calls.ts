// Calls between actors: one-way messages, and values passed by reference between actors that are
// active on the same host.
import { Actor, defineInterface, definePlugin } from 'koala';

export const IInbox = defineInterface({
  protocol: 'IInbox',
  messages: {
    /** One-way: the caller does not wait, and gets neither a result nor an error. */
    post: { request: [{ name: 'text', type: 'string' }], response: 'null', 'one-way': true },
    read: { request: [], response: { type: 'array', items: 'string' } },
    forward: { request: [{ name: 'to', type: 'string' }], response: 'int' },
    sameArray: { request: [{ name: 'other', type: 'string' }], response: 'boolean' },
    pid: { request: [], response: 'int' },
  },
});

class Inbox extends Actor {
  readonly #messages: string[] = [];

  post(text: string): void {
    this.#messages.push(text);
  }

  /** Hands out its own array: a caller on the same host gets this very array. */
  read(): string[] {
    return this.#messages;
  }

  /** Posts every message to another inbox, without waiting. */
  forward(to: string): number {
    // A call to this same actor would be on this turn's chain: it would run at once, inside this loop.
    if (to === this.id) throw new RangeError('an inbox cannot forward to itself');
    const inbox = this.getProxy(IInbox, to);
    for (const text of this.#messages) void inbox.post(text);
    return this.#messages.length;
  }

  /** Whether two reads of `other` return one and the same array. */
  async sameArray(other: string): Promise<boolean> {
    const inbox = this.getProxy(IInbox, other);
    return (await inbox.read()) === (await inbox.read());
  }

  pid(): number {
    return process.pid;
  }
}

export default definePlugin({ interface: IInbox, implementation: Inbox });
