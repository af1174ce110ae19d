// Every benchmark case runs for a moment in `npm test`, so that `npm run bench` never rots.
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { CASES } from '../bench/cases.ts';

const one = fileURLToPath(new URL('../bench/one.ts', import.meta.url));

for (const c of CASES) {
  test(`bench case ${c.name} runs and reports its figures`, async (t) => {
    const r = await execa(process.execPath, [...c.nodeArgs, one, c.name, '0.3'], { timeout: 60_000 });
    const figures = JSON.parse(String(r.stdout).trim()) as Record<string, number>;
    for (const f of c.figures) t.true(Number.isFinite(figures[f.key]) && figures[f.key]! > 0, `${f.key} = ${figures[f.key]}`);
  });
}
