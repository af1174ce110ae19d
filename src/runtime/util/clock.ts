// Clock readings shared by many calls. A frame of a thousand calls is handled in one synchronous
// pass, and a turn that fans out makes a thousand calls in one task; reading the system clock once
// for them, instead of once or more per call, is a measurable part of a call's cost (~60 ns a
// reading on the reference machine, a call being ~1 µs).
//
// A shared reading (`lastReading`) is earlier than the time now by however long the task has run
// since it was taken. So it serves only where that is accounted for: a lease check (far below the
// fencing margin), the arrival time of a frame's calls (their budgets count from it, the wire
// reading one when a frame comes in), activity stamps, and decisions that it can only make more
// lenient (a deadline that a caller's comes before: Host), or early by a negligible part (a budget
// of seconds: Host's LONG_BUDGET_MS). A shorter budget of a call's own is counted from a fresh
// reading (`clockNow`).

/**
 * No reading in this task. Not 0: a reading (`Date.now()`, ~1.7e12) is never a small integer, and
 * a sentinel that is one made V8 first compile `taskNow === NONE` for small integers, then throw
 * that code away ("not a Smi") in every function it was inlined into once a reading came along.
 */
const NONE = -0.5;
let taskNow = NONE;
const forgetTaskTime = (): void => {
  taskNow = NONE;
};

/**
 * Reads the clock; the reading also serves `lastReading` until the microtasks queued so far have
 * run (a microtask forgets it: it never outlives the task that took it). Of the callers a frame's
 * answers resume, the first takes a reading and the others, resumed by microtasks queued before
 * the one that forgets it, share it: a fan-out of a thousand calls reads the clock a few times.
 */
export function clockNow(): number {
  if (taskNow === NONE) queueMicrotask(forgetTaskTime);
  return (taskNow = Date.now());
}

/**
 * The latest reading taken in this task (one is taken if there is none): never later than the
 * time now, and earlier by at most the time the task has run since.
 */
export function lastReading(): number {
  return taskNow === NONE ? clockNow() : taskNow;
}
