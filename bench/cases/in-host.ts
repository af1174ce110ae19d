// In-host actor-to-actor calls: a driver actor calls a target actor on the same host, pipelined.
import { Actor, defineInterface, definePlugin } from '../../src/index.ts';
import { EmbeddedPlacementService } from '../../src/runtime/placement/embedded/service.ts';
import { InProcessPlacement } from '../../src/runtime/placement/embedded/in-process.ts';
import { STRATEGIES } from '../../src/runtime/placement/strategies.ts';
import { Host } from '../../src/runtime/host/host.ts';
import { createLogger } from '../../src/runtime/util/log.ts';

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
  const placement = new InProcessPlacement(new EmbeddedPlacementService({ leaseTtlMs: 60_000, strategy: STRATEGIES.random }));
  const host = new Host({
    name: 'bench',
    group: 'bench',
    cluster: 'bench',
    secret: 'bench-secret-bench-secret',
    listenHost: '127.0.0.1',
    plugins: [definePlugin({ interface: ITarget, implementation: Target }), definePlugin({ interface: IDriver, implementation: Driver })],
    placement,
    callTimeoutMs: 30_000,
    idleTimeoutMs: 3_600_000,
    log: createLogger('warn'),
  });
  await host.start();
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
