// The benchmark's actor: an empty one, so that the figures measure Koala, not the actor.
import { Actor, defineInterface, definePlugin } from '../src/index.ts';

export const IBench = defineInterface({ protocol: 'IBench', messages: { ping: { request: [{ name: 'n', type: 'int' }], response: 'int' } } });

class Bench extends Actor {
  ping(n: number): number {
    return n;
  }
}

export default definePlugin({ interface: IBench, implementation: Bench });
