// Shared clock readings: one reading serves the rest of the task that took it, and is forgotten
// once the microtasks queued so far have run.
import test from 'ava';
import { clockNow, lastReading } from '../src/runtime/util/clock.ts';

/** Spins until the wall clock has moved on by at least `ms`. */
function spin(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // waiting for the clock, on purpose
  }
}

test('a task with no reading yet takes a fresh one', async (t) => {
  await Promise.resolve(); // no reading left over from an earlier task
  const before = Date.now();
  const reading = lastReading();
  t.true(reading >= before && reading <= Date.now(), `${reading} is the time now, not a placeholder`);
});

test('the rest of the task shares the reading; the next task reads the clock again', async (t) => {
  await Promise.resolve();
  const first = clockNow();
  spin(3);
  t.is(lastReading(), first, 'shared within the task, though the clock has moved on');
  await new Promise((resolve) => setImmediate(resolve));
  const next = lastReading();
  t.true(next >= first + 3, `a new task reads the clock again: ${next} after ${first}`);
  t.is(lastReading(), next);
});
