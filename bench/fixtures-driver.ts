// The host-to-host benchmark's driver: one actor that calls `IBench` targets (which the case made
// sure live on another host) with `inFlight` calls outstanding, all within one turn of its own.
import { Actor, defineInterface, definePlugin } from '../src/index.ts';
import { IBench } from './fixtures-empty.ts';

export const IDriver = defineInterface({
  protocol: 'IDriver',
  messages: {
    drive: {
      doc: 'Makes `calls` calls to the targets, round-robin, `inFlight` at a time; returns the elapsed milliseconds.',
      request: [
        { name: 'calls', type: 'int' },
        { name: 'inFlight', type: 'int' },
        { name: 'targets', type: { type: 'array', items: 'string' } },
      ],
      response: 'double',
    },
  },
});

class Driver extends Actor {
  async drive(calls: number, inFlight: number, targets: string[]): Promise<number> {
    const started = performance.now();
    let next = 0;
    const lane = async () => {
      while (next < calls) {
        const n = next++;
        await this.getProxy(IBench, targets[n % targets.length]!).ping(n);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
    return performance.now() - started;
  }
}

export default definePlugin({ interface: IDriver, implementation: Driver });
