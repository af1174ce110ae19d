// Placement, side by side: new activations per second and steady-state calls per second through
// a real cluster (client → gateway → host), with embedded placement and with Consul placement (a
// real Consul dev agent that `koala up` starts). Steady-state calls never touch placement, so the
// two should match.
import { fileURLToPath } from 'node:url';
import { IBench } from '../fixtures-empty.ts';
import { pipelined, startRealCluster } from './real-cluster.ts';

const PLUGIN = fileURLToPath(new URL('../fixtures-empty.ts', import.meta.url));
const IN_FLIGHT = 256;

function manifestFor(provider: 'embedded' | 'consul'): string {
  return [
    'cluster: bench',
    'logLevel: warn',
    'placement:',
    `  provider: ${provider}`,
    ...(provider === 'consul' ? ['  consul:', '    start: true'] : []),
    'hosts:',
    '  - name: host',
    '    replicas: 2',
    `    plugins: [${JSON.stringify(PLUGIN)}]`,
  ].join('\n');
}

async function measure(provider: 'embedded' | 'consul', seconds: number): Promise<{ activations: number; calls: number }> {
  const cluster = await startRealCluster(manifestFor(provider));
  try {
    const ping = (i: number) => cluster.client.getProxy(IBench, i).ping(i);
    await pipelined(2000, IN_FLIGHT, (i) => ping(1_000_000 + i)); // warm-up: JIT, connections
    // New identities each round: every call is an activation.
    const activationCount = Math.max(2000, Math.round(seconds * 4000));
    const activations = await pipelined(activationCount, IN_FLIGHT, ping);
    // The same identities again: steady state, positions cached everywhere.
    const callCount = Math.max(20_000, Math.round(seconds * 60_000));
    const calls = await pipelined(callCount, IN_FLIGHT, (i) => ping(i % activationCount));
    return { activations, calls };
  } finally {
    await cluster.stop();
  }
}

export async function run(seconds: number): Promise<Record<string, number>> {
  const embedded = await measure('embedded', seconds);
  const consul = await measure('consul', seconds);
  return {
    embeddedActivationsPerSec: embedded.activations,
    consulActivationsPerSec: consul.activations,
    embeddedCallsPerSec: embedded.calls,
    consulCallsPerSec: consul.calls,
    steadyStateRatio: Math.round((consul.calls / embedded.calls) * 1000) / 1000,
  };
}
