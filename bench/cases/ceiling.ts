// The ceiling: a bare `ws` relay (client → relay → server and back, three processes, no Koala
// code) with Koala's batching; 1 in flight (latency) and 1 000 in flight (messages/s).
import { LATENCY_WARM_MS, type Latency, perSecond, sampleLatency, sampleThroughput, summarise, warm, warmLatency, type Throughput } from '../lib/measure.ts';
import { startCeiling, type Ceiling } from '../lib/ws-ceiling.ts';

export const IN_FLIGHT = 1000;

/** The ceiling's figures: `seconds/2` of latency sampling at 1 in flight, then `seconds/2` at 1 000 in flight. */
export async function measureCeiling(ceiling: Ceiling, seconds: number): Promise<{ latency: Latency; perSec: number }> {
  let n = 0;
  const call = () => ceiling.call(n++);
  await warm(call, 2000);
  await warm(call, 20_000, IN_FLIGHT);
  // As in the gateway case, so that the two cases' ceiling figures are alike (see LATENCY_WARM_MS).
  await warmLatency({ ceiling: call }, seconds >= 1 ? LATENCY_WARM_MS : 100);
  const samples: number[] = [];
  await sampleLatency(call, (seconds * 1000) / 2, samples);
  const parts: Throughput[] = [await sampleThroughput(call, IN_FLIGHT, (seconds * 1000) / 2)];
  return { latency: summarise(samples), perSec: perSecond(parts) };
}

export async function run(seconds: number): Promise<Record<string, number>> {
  const ceiling = await startCeiling(2);
  try {
    const { latency, perSec } = await measureCeiling(ceiling, seconds);
    return { p50Us: latency.p50, p99Us: latency.p99, msgsPerSec: perSec };
  } finally {
    await ceiling.close();
  }
}
