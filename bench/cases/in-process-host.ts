// A host running in the benchmark's own process, with in-process embedded placement: measures the
// actor runtime alone, without sockets or other processes.
import type { ActorPlugin } from '../../src/runtime/actor/plugin.ts';
import { Host } from '../../src/runtime/host/host.ts';
import { InProcessPlacement } from '../../src/runtime/placement/embedded/in-process.ts';
import { EmbeddedPlacementService } from '../../src/runtime/placement/embedded/service.ts';
import { STRATEGIES } from '../../src/runtime/placement/strategies.ts';
import { createLogger } from '../../src/runtime/util/log.ts';

export async function startInProcessHost(plugins: ActorPlugin[]): Promise<Host> {
  const placement = new InProcessPlacement(new EmbeddedPlacementService({ leaseTtlMs: 600_000, strategy: STRATEGIES.random }));
  const host = new Host({
    name: 'bench',
    group: 'bench',
    cluster: 'bench',
    secret: 'bench-secret-bench-secret',
    listenHost: '127.0.0.1',
    plugins,
    placement,
    callTimeoutMs: 60_000,
    idleTimeoutMs: 3_600_000,
    storage: { provider: 'memory', file: '', interfaces: {} },
    root: process.cwd(),
    log: createLogger('warn'),
  });
  await host.start();
  return host;
}
