// The known limit of reentrancy: parallel branches of one call chain share its id, so they may
// both enter one actor, and its turns then overlap.
import { setTimeout as sleep } from 'node:timers/promises';
import { Actor, defineInterface, definePlugin } from 'koala';

export const IShelf = defineInterface({
  protocol: 'IShelf',
  messages: {
    take: { request: [], response: 'boolean' },
    left: { request: [], response: 'int' },
  },
});

class Shelf extends Actor {
  #left = 1;

  async take(): Promise<boolean> {
    if (this.#left === 0) return false;
    await sleep(20); // stands for any await: a call to another actor, I/O
    this.#left--;
    return true;
  }

  left(): number {
    return this.#left;
  }
}

export const IShopper = defineInterface({
  protocol: 'IShopper',
  messages: {
    takeTwo: { request: [{ name: 'shelf', type: 'string' }], response: { type: 'array', items: 'boolean' } },
    takeTwoInTurn: { request: [{ name: 'shelf', type: 'string' }], response: { type: 'array', items: 'boolean' } },
  },
});

class Shopper extends Actor {
  // Both calls carry this turn's chain id: the second enters the shelf while the first is
  // still awaiting inside take(), and both see an item left.
  async takeTwo(shelf: string): Promise<boolean[]> {
    const s = this.getProxy(IShelf, shelf);
    return Promise.all([s.take(), s.take()]);
  }

  // One after the other: the second take() starts after the first has ended.
  async takeTwoInTurn(shelf: string): Promise<boolean[]> {
    const s = this.getProxy(IShelf, shelf);
    return [await s.take(), await s.take()];
  }
}

export default [definePlugin({ interface: IShelf, implementation: Shelf }), definePlugin({ interface: IShopper, implementation: Shopper })];
