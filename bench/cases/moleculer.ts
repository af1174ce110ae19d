// The peer: Moleculer with its TCP transporter, request/response echo between two processes,
// 1 in flight (calls/s and latency) and 100 in flight (calls/s).
import { type Latency, perSecond, sampleLatency, sampleThroughput, summarise, warm } from '../lib/measure.ts';
import { startMoleculer, type MoleculerPeer } from '../lib/moleculer-peer.ts';

export const IN_FLIGHT = 100;

export async function measureMoleculer(peer: MoleculerPeer, seconds: number): Promise<{ latency: Latency; oneInFlightPerSec: number; perSec: number }> {
  let n = 0;
  const call = () => peer.call(n++);
  await warm(call, 2000);
  await warm(call, 10_000, IN_FLIGHT);
  const samples: number[] = [];
  const started = performance.now();
  await sampleLatency(call, (seconds * 1000) / 2, samples);
  const oneInFlightPerSec = Math.round((samples.length / (performance.now() - started)) * 1000);
  const perSec = perSecond([await sampleThroughput(call, IN_FLIGHT, (seconds * 1000) / 2)]);
  return { latency: summarise(samples), oneInFlightPerSec, perSec };
}

export async function run(seconds: number): Promise<Record<string, number>> {
  const peer = await startMoleculer();
  try {
    const m = await measureMoleculer(peer, seconds);
    return { oneInFlightPerSec: m.oneInFlightPerSec, p50Us: m.latency.p50, p99Us: m.latency.p99, callsPerSec: m.perSec };
  } finally {
    await peer.close();
  }
}
