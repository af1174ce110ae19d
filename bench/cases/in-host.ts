// In-host actor-to-actor calls: a driver actor calls a target actor on the same host, pipelined.
import { Actor, defineInterface, definePlugin } from '../../src/index.ts';
import { startInProcessHost } from './in-process-host.ts';

const ITarget = defineInterface({ protocol: 'ITarget', messages: { ping: { request: [{ name: 'n', type: 'int' }], response: 'int' } } });
const IDriver = defineInterface({
  protocol: 'IDriver',
  messages: { drive: { request: [{ name: 'calls', type: 'int' }, { name: 'inFlight', type: 'int' }], response: 'double' } },
});

class Target extends Actor {
  ping(n: number): number {
    return n + 1;
  }
}

class Driver extends Actor {
  async drive(calls: number, inFlight: number): Promise<number> {
    const target = this.getProxy(ITarget, this.id);
    const started = performance.now();
    let next = 0;
    const lane = async () => {
      while (next < calls) {
        next++;
        await target.ping(next);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
    return performance.now() - started;
  }
}

export async function run(seconds: number): Promise<Record<string, number>> {
  const host = await startInProcessHost([definePlugin({ interface: ITarget, implementation: Target }), definePlugin({ interface: IDriver, implementation: Driver })]);
  try {
    const driver = host.proxy(IDriver, 'd');
    await driver.drive(20_000, 64); // warm-up: activations, JIT
    let calls = 0;
    let ms = 0;
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      ms += await driver.drive(100_000, 64);
      calls += 100_000;
    }
    return { callsPerSec: Math.round((calls / ms) * 1000) };
  } finally {
    await host.stop();
  }
}
