// `bench/micro.ts`: the lane-driven subjects take their number of lanes from `--lanes=N`, and a
// value that is not a number of lanes is refused in one line before anything is measured.
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const micro = fileURLToPath(new URL('../bench/micro.ts', import.meta.url));

test('micro.ts --lanes refuses a value that is not a number of lanes, in one line, before measuring', async (t) => {
  for (const bad of ['0', 'many', '2.5']) {
    const r = await execa(process.execPath, [micro, 'caller', `--lanes=${bad}`], { reject: false, timeout: 30_000 });
    t.is(r.exitCode, 2, bad);
    t.is(r.stderr.trim(), `--lanes must be a whole number of lanes (1 or more), got "--lanes=${bad}"`);
    t.is(r.stdout, '');
  }
});

test('micro.ts ceiling-client --lanes=300 drives 300 lanes to the end of every round and prints µs per call', async (t) => {
  const r = await execa(process.execPath, [micro, 'ceiling-client', '--lanes=300'], { timeout: 60_000 });
  const figures = /per call .*; 300 lanes\): min ([\d.]+) med ([\d.]+) µs$/.exec(r.stdout.trim());
  t.truthy(figures, r.stdout);
  const [min, med] = [Number(figures![1]), Number(figures![2])];
  t.true(min > 0 && min <= med, `min ${min}, med ${med}`);
});
