// Measuring helpers shared by the cases: latency at one call in flight, throughput at N in flight,
// and interleaved rounds so that two systems measured "side by side" see the same machine load.

export type Call = () => Promise<unknown>;

export interface Latency {
  p50: number;
  p99: number;
  samples: number;
}

/** Percentile (0…1) of an ascending-sorted array, nearest rank. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Round-trip times (µs) of sequential calls for `ms` milliseconds, appended to `into`. */
export async function sampleLatency(call: Call, ms: number, into: number[]): Promise<void> {
  const until = performance.now() + ms;
  for (;;) {
    const t0 = performance.now();
    if (t0 >= until) return;
    await call();
    into.push((performance.now() - t0) * 1000);
  }
}

export function summarise(samplesUs: number[]): Latency {
  const sorted = Float64Array.from(samplesUs).sort();
  return { p50: Math.round(percentile(sorted, 0.5)), p99: Math.round(percentile(sorted, 0.99)), samples: sorted.length };
}

export interface Throughput {
  calls: number;
  ms: number;
}

/**
 * Keeps `inFlight` calls outstanding for `ms` milliseconds and counts the calls that completed
 * inside that window (the ramp-up is included, the drain after the window is not). The window is
 * closed by a timer, not by reading the clock after each call: a reading costs ~60 ns on the
 * reference machine, and two per call had cost a one-hop ceiling's client ~30 % of its rate (the
 * host-to-host driver actor, compared with it, reads no clock per call).
 */
export async function sampleThroughput(call: Call, inFlight: number, ms: number): Promise<Throughput> {
  const started = performance.now();
  let done = 0;
  let counted = -1;
  let end = started;
  const window = setTimeout(() => {
    counted = done;
    end = performance.now();
  }, ms);
  const lane = async () => {
    while (counted < 0) {
      await call();
      done++;
    }
  };
  try {
    await Promise.all(Array.from({ length: inFlight }, lane));
  } finally {
    clearTimeout(window);
  }
  return { calls: counted, ms: end - started };
}

export function perSecond(parts: readonly Throughput[]): number {
  const calls = parts.reduce((a, p) => a + p.calls, 0);
  const ms = parts.reduce((a, p) => a + p.ms, 0);
  return ms > 0 ? Math.round((calls / ms) * 1000) : 0;
}

/**
 * How long each side of a throughput comparison runs at full load before its measured slices (in
 * host to host: each of its turns, see HOST_TO_HOST_WARM_ROUNDS). After a warm-up by count both
 * Koala and the bare `ws` ceiling kept speeding up for 2–3 s, most in the first second (on the
 * gateway path their first half-second windows were 20–50 % below the later ones).
 */
export const FULL_LOAD_WARM_MS = 1000;

/**
 * Host to host: how many alternating seconds of full load each side gets before its measured
 * slices. A calling host driven without pause kept getting cheaper for 5–9 s (its CPU per call fell
 * from ~1.9 to 0.6–1.3 µs: V8 deoptimising and recompiling its socket and wire code, seen with
 * `--trace-deopt`, and its young generation growing), while a `ws` client is
 * steady after ~2 s; so one second measured the host still warming up. Alternating, as the slices
 * do: a side left idle for seconds while the other warms is cold again (the ceiling fell to
 * 0.6–0.8 M/s after 8 s idle).
 */
export const HOST_TO_HOST_WARM_ROUNDS = 5;

/**
 * How long each subject of a latency comparison runs at one call in flight before its measured
 * slices. After the warm-up by count (which ends at full load), one call in flight kept getting
 * faster for seconds, in every process of a subject and for that subject only: `--trace-opt`
 * showed Turbofan recompiling the message path (the `ws` receiver, stream writes, Koala's frame
 * and envelope readers) for 7 s of one-in-flight load, after deoptimisations when the load
 * changed. Warming Koala alone moved Koala's p99 and not the ceiling's; warming the TCP floor
 * alone, or idling, moved neither. 3 s left Koala's p99 at 453–1 689 µs, 6 s at 374–540 µs, about
 * the ceiling's (alternating runs; session 14 in bench/README.md).
 */
export const LATENCY_WARM_MS = 6000;
/** A latency warm-up's turns: short, so that no subject sits idle (and cools) for long meanwhile. */
const LATENCY_WARM_TURN_MS = 500;

/** Runs each subject one call at a time for `ms` in all, in alternating turns (see LATENCY_WARM_MS). */
export async function warmLatency<K extends string>(subjects: Record<K, Call>, ms: number): Promise<void> {
  const rounds = Math.max(1, Math.round(ms / LATENCY_WARM_TURN_MS));
  const turns = {} as Record<K, () => Promise<void>>;
  for (const name of Object.keys(subjects) as K[]) turns[name] = () => sampleLatency(subjects[name], ms / rounds, []);
  await interleaved(rounds, turns);
}

/** Warm-up: JIT, connections, activations. Runs `count` calls `inFlight` at a time. */
export async function warm(call: Call, count: number, inFlight = 1): Promise<void> {
  let left = count;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (left-- > 0) await call();
    }),
  );
}

/**
 * Side by side: each named subject is measured in `rounds` short slices, taking turns, so that a
 * machine whose load changes during the run weighs on all of them alike.
 */
export async function interleaved<K extends string>(rounds: number, subjects: Record<K, (round: number) => Promise<void>>): Promise<void> {
  const names = Object.keys(subjects) as K[];
  for (let r = 0; r < rounds; r++) {
    // Alternate the order too, so that nobody always goes first after a pause.
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const name of order) await subjects[name](r);
  }
}

/**
 * Two subjects measured in interleaved slices (`interleaved`): the median of each pair of slices'
 * ratio of rates. A burst of other work on the machine spoils the pair it lands in, not the figure
 * (a ratio of the sums would carry it).
 */
export function pairedRatio(a: readonly Throughput[], b: readonly Throughput[]): number {
  const rate = (t: Throughput) => t.calls / t.ms;
  return ratio(median(a.map((t, i) => rate(t) / rate(b[i]!))), 1);
}

export function ratio(a: number, b: number): number {
  return Math.round((a / b) * 1000) / 1000;
}
