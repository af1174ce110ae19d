// Clock readings shared by many calls. A frame of a thousand calls is handled in one synchronous
// pass, and a turn that fans out makes a thousand calls in one task; reading the
// system clock once for them, instead of once or more per call, is a measurable part of a call's
// cost (~50 ns a reading on the reference machine, a call being ~1 µs).
//
// A shared reading is earlier than the time now by however long the work since it was taken has
// run. So it serves only where that is accounted for: a lease check (stale by at most a frame's
// handling, far below the fencing margin), the arrival time of a frame's calls (their budgets
// count from it), and `lastReading`'s uses (they can only come out more lenient, by at most the
// time the task has run). A call's own budget is always counted from a fresh reading.

let current = 0;
let loopNow = 0;
const forgetLoopTime = (): void => {
  loopNow = 0;
};

/**
 * Reads the clock; the reading also serves `lastReading` until the microtasks queued so far have
 * run (a microtask forgets it: it never outlives the task that took it). A frame's answers resume
 * their callers in microtasks queued before that one, so a fan-out of a thousand calls reads the
 * clock a few times, not a thousand.
 */
export function clockNow(): number {
  if (loopNow === 0) queueMicrotask(forgetLoopTime);
  return (loopNow = Date.now());
}

/**
 * The latest reading taken in this task (one is taken if there is none): never later than the
 * time now, and earlier by at most the time the task has run since.
 */
export function lastReading(): number {
  return loopNow === 0 ? clockNow() : loopNow;
}

/** The batch's arrival time, or now when no batch is being handled. */
export function batchTime(): number {
  return current || clockNow();
}

/** Runs `fn` as one batch that arrived now; batches may nest (the outer time is restored). */
export function inBatch<A>(fn: (arg: A) => void, arg: A): void {
  const outer = current;
  current = clockNow();
  try {
    fn(arg);
  } finally {
    current = outer;
  }
}
