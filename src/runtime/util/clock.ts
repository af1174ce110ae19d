// The time at which the current batch of work arrived. A frame of a thousand calls is handled in
// one synchronous pass; reading the system clock once for it, instead of several times per call,
// is a measurable part of a call's cost. Whoever starts such a pass (the wire, for a frame) sets
// the time; outside a pass, `batchTime()` is the time now.

let current = 0;

/** The batch's arrival time, or now when no batch is being handled. */
export function batchTime(): number {
  return current || Date.now();
}

/** Runs `fn` as one batch that arrived now; batches may nest (the outer time is restored). */
export function inBatch<A>(fn: (arg: A) => void, arg: A): void {
  const outer = current;
  current = Date.now();
  try {
    fn(arg);
  } finally {
    current = outer;
  }
}
