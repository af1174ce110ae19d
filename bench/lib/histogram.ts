// A latency histogram that child processes can fill and send back over IPC: log-scale buckets
// 0.5 % wide (1 µs to ~100 s), so that percentiles of millions of samples cost a few KB to ship
// and merge, at a resolution far finer than run-to-run noise.

const GROWTH = 1.005;
const LOG_GROWTH = Math.log(GROWTH);
/** log(1e8 µs) / log(1.005) ≈ 3 693: up to 100 s. */
const BUCKETS = 3700;

export class Histogram {
  readonly counts: Uint32Array;
  total = 0;

  constructor(counts?: readonly number[]) {
    this.counts = new Uint32Array(BUCKETS);
    if (counts !== undefined) this.merge(counts);
  }

  /** Records one sample, in µs. */
  record(us: number): void {
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(us) / LOG_GROWTH));
    this.counts[i]!++;
    this.total++;
  }

  merge(counts: ArrayLike<number>): void {
    for (let i = 0; i < BUCKETS; i++) {
      const c = counts[i] ?? 0;
      this.counts[i]! += c;
      this.total += c;
    }
  }

  /** Percentile (0…1), nearest rank, as the geometric middle of its bucket (µs, rounded). */
  percentile(p: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.min(this.total, Math.max(1, Math.ceil(p * this.total)));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.round(i === 0 ? 1 : GROWTH ** (i + 0.5));
    }
    return NaN;
  }

  /** For IPC (structured as JSON): a plain array. */
  toJSON(): number[] {
    return Array.from(this.counts);
  }
}
