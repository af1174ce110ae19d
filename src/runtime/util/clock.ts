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

let taskNow = 0;
const forgetTaskTime = (): void => {
  taskNow = 0;
};

/**
 * Reads the clock; the reading also serves `lastReading` until the microtasks queued so far have
 * run (a microtask forgets it: it never outlives the task that took it). Of the callers a frame's
 * answers resume, the first takes a reading and the others, resumed by microtasks queued before
 * the one that forgets it, share it: a fan-out of a thousand calls reads the clock a few times.
 */
export function clockNow(): number {
  if (taskNow === 0) queueMicrotask(forgetTaskTime);
  return (taskNow = Date.now());
}

/**
 * The latest reading taken in this task (one is taken if there is none): never later than the
 * time now, and earlier by at most the time the task has run since.
 */
export function lastReading(): number {
  return taskNow === 0 ? clockNow() : taskNow;
}
