// Placement, side by side: new activations per second and steady-state calls per second through
// two real clusters (client → gateway → two hosts), one with embedded placement and one with Consul
// placement (a real Consul dev agent that `koala up` starts). Both clusters are up at once and their
// steady-state calls are measured in interleaved slices, so that a change in machine load weighs
// on both alike. Steady-state calls never touch placement, so the two should match.
import { fileURLToPath } from 'node:url';
import { IBench } from '../fixtures-empty.ts';
import { interleaved, pairedRatio, perSecond, ratio, sampleThroughput, type Throughput } from '../lib/measure.ts';
import { cpuTimes } from '../lib/proc-cpu.ts';
import { closeAll, startTogether } from '../lib/together.ts';
import { readRunState } from '../../src/runtime/supervisor/run-state.ts';
import { benchManifest, pipelined, startRealCluster, type BenchCluster } from './real-cluster.ts';

const PLUGIN = fileURLToPath(new URL('../fixtures-empty.ts', import.meta.url));
const IN_FLIGHT = 256;

function manifestFor(provider: 'embedded' | 'consul'): string {
  return benchManifest({ plugins: [PLUGIN], replicas: 2, provider });
}

const start = (provider: 'embedded' | 'consul') => async () => {
  const cluster = await startRealCluster(manifestFor(provider));
  return { ...cluster, close: cluster.stop };
};

const round2 = (x: number) => Math.round(x * 100) / 100;
const callsIn = (parts: readonly Throughput[]) => parts.reduce((n, p) => n + p.calls, 0);

/** CPU ms used so far by the cluster's processes (Consul's agent included) and, unless told not to, by this process (its client). */
function clusterCpuMs(cluster: BenchCluster, withClient = true): number {
  let ms = 0;
  for (const p of readRunState(cluster.dir)?.processes ?? []) {
    const t = cpuTimes(p.pid);
    ms += t.userMs + t.systemMs;
  }
  if (!withClient) return ms;
  const self = process.cpuUsage();
  return ms + (self.user + self.system) / 1000;
}

/** Waits (at most `maxMs`) until the cluster's processes together use under 5 % of a core. */
async function quiet(cluster: BenchCluster, maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  await new Promise((r) => setTimeout(r, 200));
  while (Date.now() < until) {
    const before = clusterCpuMs(cluster, false);
    await new Promise((r) => setTimeout(r, 200));
    if (clusterCpuMs(cluster, false) - before < 10) return;
  }
}

/** Share of the activations on the busiest host (0.5 = an even split over the two hosts). */
async function busiestShare(cluster: BenchCluster): Promise<number> {
  const perHost = new Map<string, number>();
  const placed = await cluster.client.actors(IBench.name);
  for (const a of placed) perHost.set(a.host, (perHost.get(a.host) ?? 0) + 1);
  return ratio(Math.max(0, ...perHost.values()), placed.length);
}

export async function run(seconds: number): Promise<Record<string, number>> {
  const subjects = await startTogether([start('embedded'), start('consul')] as const);
  const [embedded, consul] = subjects;
  try {
    const ping = (cluster: BenchCluster) => (i: number) => cluster.client.getProxy(IBench, i).ping(i);
    // Warm-up: JIT and connections, and the activation path itself (its first ten thousand
    // activations run ~30 % slower than the next while the processes compile it and grow their
    // tables), so that the figure is the rate a running cluster sustains.
    const warmUp = seconds >= 1 ? 10_000 : 2000;
    // New identities: every call is an activation. One cluster at a time, each right after its own
    // warm-up (a Consul agent still busy with the writes of its warm-up would take CPU from the
    // other cluster's measurement).
    const activationCount = Math.max(2000, Math.round(seconds * 4000));
    const activationsOf = async (cluster: BenchCluster) => {
      await pipelined(warmUp, IN_FLIGHT, (i) => ping(cluster)(1_000_000 + i));
      return pipelined(activationCount, IN_FLIGHT, ping(cluster));
    };
    const embeddedActivations = await activationsOf(embedded);
    const consulActivations = await activationsOf(consul);
    // The same identities again: steady state, positions cached everywhere.
    const steady = (cluster: BenchCluster) => {
      let n = 0;
      return () => ping(cluster)(n++ % activationCount);
    };
    const calls = { embedded: steady(embedded), consul: steady(consul) };
    // Let the activation burst settle: a Consul agent keeps working for a while after many writes
    // (log compaction, snapshots), and steady state means none of that is left.
    if (seconds >= 1) for (const cluster of subjects) await quiet(cluster, 5000);
    for (const call of Object.values(calls)) await sampleThroughput(call, IN_FLIGHT, seconds >= 1 ? 1000 : 300);
    // Many short paired slices: the machine's load changes within seconds, so the ratio is the
    // median of each pair's ratio (a burst of other work spoils one pair, not the figure).
    // Short slices, so that the two of a pair run close together in time (the machine's load
    // changes within a second); 125 ms is still ~25 000 calls.
    const rounds = seconds >= 1 ? 24 : 1;
    const slice = Math.max(125, (seconds * 1000) / 2 / rounds);
    const rate = { embedded: [] as Throughput[], consul: [] as Throughput[] };
    // Beside throughput, the CPU each cluster's processes (and this client) spend per call: the
    // cost itself, which the machine's other load does not change the way it changes throughput.
    const cpu = { embedded: 0, consul: 0 };
    const measured = async (name: 'embedded' | 'consul', cluster: BenchCluster) => {
      const before = clusterCpuMs(cluster);
      const t = await sampleThroughput(calls[name], IN_FLIGHT, slice);
      cpu[name] += clusterCpuMs(cluster) - before;
      rate[name].push(t);
    };
    await interleaved(rounds, { embedded: () => measured('embedded', embedded), consul: () => measured('consul', consul) });
    const embeddedCalls = perSecond(rate.embedded);
    const consulCalls = perSecond(rate.consul);
    return {
      embeddedActivationsPerSec: embeddedActivations,
      consulActivationsPerSec: consulActivations,
      embeddedCallsPerSec: embeddedCalls,
      consulCallsPerSec: consulCalls,
      steadyStateRatio: pairedRatio(rate.consul, rate.embedded),
      embeddedCpuUsPerCall: round2((cpu.embedded * 1000) / callsIn(rate.embedded)),
      consulCpuUsPerCall: round2((cpu.consul * 1000) / callsIn(rate.consul)),
      embeddedBusiestHostShare: await busiestShare(embedded),
      consulBusiestHostShare: await busiestShare(consul),
    };
  } finally {
    await closeAll(subjects);
  }
}
