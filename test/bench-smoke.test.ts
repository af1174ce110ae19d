// Every benchmark case runs for a moment in `npm test`, so that `npm run bench` never rots.
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { CASES } from '../bench/cases.ts';

const one = fileURLToPath(new URL('../bench/one.ts', import.meta.url));

// A case measured in another's runs (`measuredIn`) is checked in that case's output.
for (const c of CASES.filter((c) => c.measuredIn === undefined)) {
  const shown = [c, ...CASES.filter((v) => v.measuredIn === c.name)].flatMap((v) => v.figures);
  test(`bench case ${c.name} runs and reports its figures`, async (t) => {
    const r = await execa(process.execPath, [...c.nodeArgs, one, c.name, '0.3'], { timeout: 60_000 });
    const figures = JSON.parse(String(r.stdout).trim()) as Record<string, number>;
    for (const f of shown) t.true(Number.isFinite(figures[f.key]) && figures[f.key]! > 0, `${f.key} = ${figures[f.key]}`);
  });
}

test('every case measured in another names a case that runs', (t) => {
  for (const v of CASES.filter((c) => c.measuredIn !== undefined)) {
    t.true(CASES.some((c) => c.name === v.measuredIn && c.measuredIn === undefined), `${v.name} is measured in ${v.measuredIn}`);
  }
});
