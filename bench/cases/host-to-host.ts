// Host to host: an actor on host A calls actors on host B, pipelined (1 000 in flight inside one
// turn of the driver actor), in a real cluster (embedded placement, two hosts). Side by side with
// the one-hop ceiling: a bare `ws` client → server (two processes, Koala's batching, no Koala code),
// 1 000 in flight, measured in interleaved slices.
import { fileURLToPath } from 'node:url';
import { IBench } from '../fixtures-empty.ts';
import { IDriver } from '../fixtures-driver.ts';
import { FULL_LOAD_WARM_MS, HOST_TO_HOST_WARM_ROUNDS, interleaved, pairedRatio, perSecond, sampleThroughput, warm, type Throughput } from '../lib/measure.ts';
import { closeAll, startTogether } from '../lib/together.ts';
import { startCeiling } from '../lib/ws-ceiling.ts';
import { benchManifest, startRealCluster } from './real-cluster.ts';

const PLUGINS = ['../fixtures-empty.ts', '../fixtures-driver.ts'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
const IN_FLIGHT = 1000;
/** How many target actors on the other host the driver spreads its calls over. */
const TARGETS = 32;

const MANIFEST = benchManifest({ plugins: PLUGINS, replicas: 2 });

async function startCluster() {
  const cluster = await startRealCluster(MANIFEST);
  return { ...cluster, close: cluster.stop };
}

export interface HostToHost {
  cluster: Awaited<ReturnType<typeof startCluster>>;
  /** The driver actor (on host A) and the ids of its targets (all on host B). */
  driver: ReturnType<typeof driverProxy>;
  targets: string[];
  close(): Promise<void>;
}

function driverProxy(cluster: Awaited<ReturnType<typeof startCluster>>) {
  return cluster.client.getProxy(IDriver, 'driver');
}

/** A two-host cluster with the driver activated on one host and TARGETS bench actors on the other. */
export async function startHostToHost(): Promise<HostToHost> {
  const cluster = await startCluster();
  try {
    const { client } = cluster;
    const driver = driverProxy(cluster);
    await driver.drive(0, 1, ['none']); // activates the driver somewhere
    const driverHost = (await client.actors('IDriver')).find((a) => a.key === 'driver')?.host;
    if (driverHost === undefined) throw new Error('the driver actor is not placed');
    // Activate candidates until enough of them were placed on the other host.
    const targets: string[] = [];
    for (let batch = 0; targets.length < TARGETS; batch++) {
      if (batch >= 20) throw new Error(`placement put only ${targets.length} of ${batch * TARGETS} actors on the other host`);
      const ids = Array.from({ length: TARGETS }, (_, i) => `t${batch * TARGETS + i}`);
      await Promise.all(ids.map((id) => client.getProxy(IBench, id).ping(0)));
      const placed = new Map((await client.actors('IBench')).map((a) => [a.key, a.host]));
      for (const id of ids) if (placed.get(id) !== driverHost && placed.get(id) !== undefined && targets.length < TARGETS) targets.push(id);
    }
    return { cluster, driver, targets, close: cluster.close };
  } catch (err) {
    await cluster.close();
    throw err;
  }
}

export async function run(seconds: number): Promise<Record<string, number>> {
  const [h2h, ceiling] = await startTogether([startHostToHost, () => startCeiling(1)] as const);
  try {
    const { driver, targets } = h2h;
    let n = 0;
    const bare = () => ceiling.call(n++);
    await warm(bare, 2000);
    await warm(bare, 20_000, IN_FLIGHT);
    // Warm-up, and a first estimate of the rate to size each round's calls to its duration.
    await driver.drive(20_000, IN_FLIGHT, targets);
    let estimate = 20_000 / (await driver.drive(20_000, IN_FLIGHT, targets));
    /** One round of the driver sized to last about `ms` (from the last round's rate). */
    const driveFor = async (ms: number): Promise<Throughput> => {
      const calls = Math.max(IN_FLIGHT * 2, Math.round(estimate * ms));
      const took = await driver.drive(calls, IN_FLIGHT, targets);
      estimate = calls / took;
      return { calls, ms: took };
    };
    if (seconds >= 1) {
      // Seconds of each at full load first, taking turns: neither is compared while still warming
      // up (see HOST_TO_HOST_WARM_ROUNDS).
      await interleaved(HOST_TO_HOST_WARM_ROUNDS, {
        koala: async () => void (await driveFor(FULL_LOAD_WARM_MS)),
        ceiling: async () => void (await sampleThroughput(bare, IN_FLIGHT, FULL_LOAD_WARM_MS)),
      });
    }

    // Six pairs of short slices: the ratio is the median of the pairs' ratios (`pairedRatio`).
    const rounds = seconds >= 1 ? 6 : 1;
    const slice = Math.max(250, (seconds * 1000) / 2 / rounds);
    const rate = { koala: [] as Throughput[], ceiling: [] as Throughput[] };
    await interleaved(rounds, {
      koala: async () => void rate.koala.push(await driveFor(slice)),
      ceiling: async () => void rate.ceiling.push(await sampleThroughput(bare, IN_FLIGHT, slice)),
    });
    const callsPerSec = perSecond(rate.koala);
    const oneHopCeilingMsgsPerSec = perSecond(rate.ceiling);
    return { callsPerSec, oneHopCeilingMsgsPerSec, vsOneHopCeiling: pairedRatio(rate.koala, rate.ceiling) };
  } finally {
    await closeAll([h2h, ceiling]);
  }
}
