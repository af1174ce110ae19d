// Koala's gateway path, client → gateway → host → actor and back (a real cluster: embedded
// placement, one host, one gateway, the client in this process), side by side with the ceiling
// (bare `ws` relay, same hops, same batching: the table's Ceiling rows) and the peer (Moleculer, TCP
// transporter), measured in interleaved slices so that all three see the same machine load. 1 in
// flight: p50/p99 latency; 1 000 in flight: calls/s (Moleculer at 100 in flight, as the issue
// compares it).
import { fileURLToPath } from 'node:url';
import { IBench } from '../fixtures-empty.ts';
import { FULL_LOAD_WARM_MS, interleaved, LATENCY_WARM_MS, pairedRatio, perSecond, ratio, sampleLatency, sampleThroughput, summarise, warm, warmLatency, type Throughput } from '../lib/measure.ts';
import { startMoleculer } from '../lib/moleculer-peer.ts';
import { closeAll, startTogether } from '../lib/together.ts';
import { startTcpFloor } from '../lib/tcp-floor.ts';
import { startCeiling } from '../lib/ws-ceiling.ts';
import { IN_FLIGHT as MOLECULER_IN_FLIGHT } from './moleculer.ts';
import { benchManifest, startRealCluster } from './real-cluster.ts';

const PLUGIN = fileURLToPath(new URL('../fixtures-empty.ts', import.meta.url));
/** Koala's and the ceiling's calls in flight for throughput. */
export const IN_FLIGHT = 1000;
/** The fixed set of actors the calls go to: activated during warm-up, so this is steady state. */
const ACTORS = 64;

export const MANIFEST = benchManifest({ plugins: [PLUGIN], replicas: 1 });

export async function startGatewayCluster() {
  const cluster = await startRealCluster(MANIFEST);
  return { ...cluster, close: cluster.stop };
}

export async function run(seconds: number): Promise<Record<string, number>> {
  const subjects = await startTogether([startGatewayCluster, () => startCeiling(2), startMoleculer, startTcpFloor] as const);
  const [cluster, ceiling, peer, tcp] = subjects;
  try {
    let n = 0;
    const koala = () => {
      const i = n++;
      return cluster.client.getProxy(IBench, i % ACTORS).ping(i);
    };
    const bare = () => ceiling.call(n++);
    const moleculer = () => peer.call(n++);
    // Warm-up: JIT on every side, connections, activations, cached positions.
    for (const [call, inFlight] of [[koala, IN_FLIGHT], [bare, IN_FLIGHT], [moleculer, MOLECULER_IN_FLIGHT]] as const) {
      await warm(call, 2000);
      await warm(call, 10_000, inFlight);
    }
    await warm(tcp.call, 2000);
    // Then Koala and the ceiling at one call in flight for a while: their message paths are still
    // being recompiled after the full load (see LATENCY_WARM_MS). Not the TCP floor: its path is
    // almost no JavaScript, and warming it alone did not move its p99. (A smoke run: a token turn.)
    await warmLatency({ koala, ceiling: bare }, seconds >= 1 ? LATENCY_WARM_MS : 100);

    // Each subject gets seconds/3 of latency sampling and seconds/3 of throughput, in slices.
    // Latency in 9 short slices each: on a shared machine the time a wake-up takes drifts within
    // seconds, and finer turns keep such drifts from landing on one subject only.
    const latencyRounds = seconds >= 1 ? 9 : 1;
    const latencySlice = Math.max(100, (seconds * 1000) / 3 / latencyRounds);
    const rounds = seconds >= 1 ? 3 : 1;
    // At least 250 ms a slice: a smoke run's few calls must still span more than one GC pause.
    const slice = Math.max(250, (seconds * 1000) / 3 / rounds);
    // The TCP floor too: how much of the tail the kernel and the VM's wake-ups make by themselves.
    const latency = { koala: [] as number[], ceiling: [] as number[], tcp: [] as number[] };
    await interleaved(latencyRounds, {
      koala: () => sampleLatency(koala, latencySlice, latency.koala),
      ceiling: () => sampleLatency(bare, latencySlice, latency.ceiling),
      tcp: () => sampleLatency(tcp.call, latencySlice, latency.tcp),
    });
    if (seconds >= 1) {
      // Koala and the ceiling at full load for a while first: both were still speeding up (see
      // FULL_LOAD_WARM_MS). Not Moleculer: its ratio is far from its target either way, and the
      // whole bench must stay within 5 minutes.
      await sampleThroughput(koala, IN_FLIGHT, FULL_LOAD_WARM_MS);
      await sampleThroughput(bare, IN_FLIGHT, FULL_LOAD_WARM_MS);
    }
    const rate = { koala: [] as Throughput[], ceiling: [] as Throughput[], moleculer: [] as Throughput[] };
    await interleaved(rounds, {
      koala: async () => void rate.koala.push(await sampleThroughput(koala, IN_FLIGHT, slice)),
      ceiling: async () => void rate.ceiling.push(await sampleThroughput(bare, IN_FLIGHT, slice)),
      moleculer: async () => void rate.moleculer.push(await sampleThroughput(moleculer, MOLECULER_IN_FLIGHT, slice)),
    });

    const k = summarise(latency.koala);
    const c = summarise(latency.ceiling);
    const floor = summarise(latency.tcp);
    const callsPerSec = perSecond(rate.koala);
    const ceilingPerSec = perSecond(rate.ceiling);
    const moleculerPerSec = perSecond(rate.moleculer);
    return {
      p50Us: k.p50,
      p99Us: k.p99,
      callsPerSec,
      ceilingP50Us: c.p50,
      ceilingP99Us: c.p99,
      tcpP50Us: floor.p50,
      tcpP99Us: floor.p99,
      ceilingMsgsPerSec: ceilingPerSec,
      moleculerCallsPerSec: moleculerPerSec,
      p50VsCeiling: ratio(k.p50, c.p50),
      callsVsCeiling: pairedRatio(rate.koala, rate.ceiling),
      callsVsMoleculer: pairedRatio(rate.koala, rate.moleculer),
    };
  } finally {
    await closeAll([cluster, ceiling, peer, tcp]);
  }
}
