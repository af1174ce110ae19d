// One timer for many deadlines: it fires at the earliest deadline it was told of, sweeps, and arms
// itself again for the earliest one the sweep reports; it never ticks while nothing is due.
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeadlineTimer } from '../src/runtime/util/deadline-timer.ts';

test('fires at the earliest deadline, also one told of after a later one', async (t) => {
  const start = Date.now();
  const due = start + 40;
  let sweeps = 0;
  let sweptAt: number | undefined;
  const timer = new DeadlineTimer((now) => {
    sweeps++;
    if (now < due) return due; // a timer may fire a millisecond early by the wall clock: still ahead
    sweptAt ??= now;
    return Infinity;
  });
  timer.expect(start + 5_000);
  timer.expect(due);
  timer.expect(start + 2_000);
  await sleep(400);
  timer.stop();
  t.not(sweptAt, undefined, 'the 40 ms deadline was swept');
  t.true(sweeps <= 2, `one sweep for it (two if the timer ran early), none for the later ones: ${sweeps}`);
});

test('arms itself again for the earliest deadline the sweep reports', async (t) => {
  const start = Date.now();
  const deadlines = [start + 30, start + 230, start + 430];
  const removedPerSweep: number[] = [];
  const timer = new DeadlineTimer((now) => {
    let removed = 0;
    while (deadlines.length > 0 && deadlines[0]! <= now) {
      deadlines.shift();
      removed++;
    }
    // A timer may fire a millisecond early by the wall clock: such a sweep removes nothing.
    if (removed > 0) removedPerSweep.push(removed);
    return deadlines[0] ?? Infinity;
  });
  timer.expect(deadlines[0]!);
  await sleep(800);
  timer.stop();
  t.deepEqual(removedPerSweep, [1, 1, 1], 'each deadline swept on its own, by the timer armed for it');
});

test('does not tick while the deadlines are far away, and stop() disarms it', async (t) => {
  let sweeps = 0;
  const timer = new DeadlineTimer(() => {
    sweeps++;
    return Infinity;
  });
  timer.expect(Date.now() + 60_000);
  timer.expect(Date.now() + 150);
  timer.expect(0); // no deadline
  await sleep(100);
  t.is(sweeps, 0, 'a periodic sweep would have run by now');
  timer.stop();
  await sleep(150);
  t.is(sweeps, 0, 'stopped before the 150 ms deadline');
});
