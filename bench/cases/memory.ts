// Memory per idle activation: activate many empty actors, let them go idle, and divide the heap
// growth by their number. Includes the in-process placement's record of each position, so it is an
// upper bound for the host's own share. Needs --expose-gc.
import { Actor, defineInterface, definePlugin } from '../../src/index.ts';
import { startInProcessHost } from './in-process-host.ts';

const IEmpty = defineInterface({ protocol: 'IEmpty', messages: { touch: { request: [], response: 'null' } } });

class Empty extends Actor {
  touch(): null {
    return null;
  }
}

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

export async function run(seconds: number): Promise<Record<string, number>> {
  // Scale with the time budget: the full run uses 250 000 activations (500 000 and 1 M gave about
  // the same bytes per activation, 625 and 627 against 622, in twice and four times the time); a
  // smoke run far fewer.
  const count = seconds >= 3 ? 250_000 : 20_000;
  const host = await startInProcessHost([definePlugin({ interface: IEmpty, implementation: Empty })]);
  try {
    const before = heapAfterGc();
    const started = performance.now();
    const inFlight = 256;
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < count) await host.proxy(IEmpty, next++).touch();
      }),
    );
    const activationsPerSec = Math.round((count / (performance.now() - started)) * 1000);
    const after = heapAfterGc();
    if (host.activationCount !== count) throw new Error(`expected ${count} activations, found ${host.activationCount}`);
    return { activations: count, bytesPerActivation: Math.round((after - before) / count), activationsPerSec };
  } finally {
    await host.stop();
  }
}
