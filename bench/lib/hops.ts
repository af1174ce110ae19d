// Reads the stamps `procs/hop-times.ts` wrote (one file per process) and splits the round trips of
// a one-call-in-flight window into hops: the time inside each process (message received → frame
// sent) and between processes (frame sent → message received: `ws`, the kernel and the wake-up of
// the receiving process). With one call in flight every connection on the path carries exactly one
// message per call in each direction, so the n-th stamp of each carries call n.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { percentile } from './measure.ts';

interface HopsFile {
  pid: number;
  baseNs: string;
  /** [µs after baseNs, connection number, 1 if sent / 0 if received] */
  events: [number, number, number][];
}

/** The stamps of one direction of one connection in one process. */
interface Stream {
  pid: number;
  times: number[];
}

/**
 * The hop table for the window [fromUs, toUs] (CLOCK_MONOTONIC, µs) in which `calls` calls were
 * made one at a time, `meanCallUs` apart; `names` maps pids to process names.
 */
export function hopTable(dir: string, fromUs: number, toUs: number, calls: number, meanCallUs: number, names: ReadonlyMap<string, string>): string {
  const streams: Stream[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.hops.json'))) {
    const data = JSON.parse(readFileSync(join(dir, file), 'utf8')) as HopsFile;
    const baseUs = Number(BigInt(data.baseNs) / 1000n);
    const bySocket = new Map<string, Stream>();
    for (const [t, socket, sent] of data.events) {
      const abs = baseUs + t;
      if (abs < fromUs || abs > toUs) continue;
      const key = `${socket}/${sent}`;
      let s = bySocket.get(key);
      if (s === undefined) bySocket.set(key, (s = { pid: data.pid, times: [] }));
      s.times.push(abs);
    }
    streams.push(...bySocket.values());
  }
  // The path's connections carry one message per call (and the call finishing after the window's
  // end); others (placement, leases) carry a few.
  const path = streams.filter((s) => s.times.length >= calls && s.times.length <= calls + 2).sort((a, b) => a.times[0]! - b.times[0]!);
  if (path.length < 2) return `hops: found ${path.length} connection(s) with one message per call; is there exactly one call in flight?`;
  const n = Math.min(...path.map((s) => s.times.length));
  const name = (s: Stream) => names.get(String(s.pid)) ?? `pid ${s.pid}`;
  const segments = path.slice(1).map((s, i) => {
    const prev = path[i]!;
    const label = prev.pid === s.pid ? `inside ${name(s)}` : `${name(prev)} → ${name(s)}`;
    return { label, us: Array.from({ length: n }, (_, j) => s.times[j]! - prev.times[j]!) };
  });
  const totals = Array.from({ length: n }, (_, j) => path[path.length - 1]!.times[j]! - path[0]!.times[j]!);
  const slowest = totals.map((t, j) => [t, j] as const).sort((a, b) => b[0] - a[0]).slice(0, Math.max(1, Math.round(n / 100))).map(([, j]) => j);
  const row = (label: string, us: number[]) => {
    const sorted = Float64Array.from(us).sort();
    const slow = slowest.reduce((a, j) => a + us[j]!, 0) / slowest.length;
    const f = (x: number) => x.toFixed(0).padStart(7);
    return `  ${f(percentile(sorted, 0.5))} ${f(percentile(sorted, 0.9))} ${f(percentile(sorted, 0.99))} ${f(slow)}  ${label}`;
  };
  return [
    `hops of ${n} calls, one in flight (µs; "slowest 1 %": the mean of this hop in the 1 % of calls with the longest round trip)`,
    `      p50     p90     p99  slowest 1 %`,
    ...segments.map((s) => row(s.label, s.us)),
    row('first frame sent → last message received', totals),
    `  mean ${meanCallUs.toFixed(0)} µs from one call to the next: ${(meanCallUs - totals.reduce((a, t) => a + t, 0) / n).toFixed(0)} µs of it on the caller's side (making the call and sending it, taking the answer and making the next)`,
  ].join('\n');
}
