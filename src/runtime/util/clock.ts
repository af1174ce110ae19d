// The time at which the current batch of work arrived. A frame of a thousand calls is handled in
// one synchronous pass; reading the system clock once for it, instead of several times per call,
// is a measurable part of a call's cost. Whoever starts such a pass (the wire, for a frame) sets
// the time; outside a pass, `batchTime()` is the time now.

let current = 0;

/** The batch's arrival time, or now when no batch is being handled. */
export function batchTime(): number {
  return current || Date.now();
}

let loopNow = 0;
const forgetLoopTime = (): void => {
  loopNow = 0;
};

/**
 * The clock as first read in this event-loop iteration (until its check phase), for the deadlines
 * of calls this process makes: a turn that fans out makes a thousand calls in one iteration, and
 * a clock read per call was 5–7 % of a call's cost. The reading is late by at most the time the
 * iteration has run, which only makes a deadline earlier (stricter), never later; so it must not
 * be used where an early reading is unsafe (leases: `batchTime`).
 */
export function loopTime(): number {
  if (loopNow === 0) {
    loopNow = Date.now();
    setImmediate(forgetLoopTime);
  }
  return loopNow;
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
