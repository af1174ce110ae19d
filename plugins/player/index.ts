// The example plugin shipped with Koala: `IPlayer`, an interface (an Avro protocol) and an actor.
import { Actor, defineInterface, definePlugin } from 'koala';

export const IPlayer = defineInterface({
  protocol: 'IPlayer',
  doc: 'A player: echoes messages and counts the calls made to its current activation.',
  messages: {
    echo: { doc: 'Returns its argument.', request: [{ name: 'msg', type: 'string' }], response: 'string' },
    count: { doc: 'Returns 1, 2, 3… on successive calls to one activation.', request: [], response: 'int' },
  },
});

export class Player extends Actor {
  #calls = 0;

  echo(msg: string): string {
    return msg;
  }

  count(): number {
    return ++this.#calls;
  }
}

export default definePlugin({ interface: IPlayer, implementation: Player });
