// `npm run bench`: every case, each run RUNS times in a fresh process, medians reported side by side.
// Writes bench/results.json and bench/results.md and refreshes the table in README.md.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CASES, type Figure } from './cases.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function format(value: number, unit: string): string {
  if (unit === '×') return `${value.toFixed(3)}×`;
  if (unit === '/s') return value >= 1e6 ? `${(value / 1e6).toFixed(2)} M/s` : value >= 1e3 ? `${(value / 1e3).toFixed(1)} k/s` : `${value}/s`;
  return `${value.toLocaleString('en-US')} ${unit}`;
}

function verdict(f: Figure, v: number): string {
  if (f.min !== undefined) return `${v >= f.min ? '✅' : '❌'} ≥ ${format(f.min, f.unit)} (${(v / f.min).toFixed(2)}×)`;
  if (f.max !== undefined) return `${v <= f.max ? '✅' : '❌'} ≤ ${format(f.max, f.unit)} (${(v / f.max).toFixed(2)}×)`;
  return '—';
}

const results: Record<string, { runs: Record<string, number>[]; median: Record<string, number> }> = {};
for (const c of CASES) {
  const runs: Record<string, number>[] = [];
  for (let i = 0; i < RUNS; i++) {
    process.stderr.write(`bench ${c.name} run ${i + 1}/${RUNS}… `);
    const out = execFileSync(process.execPath, [...c.nodeArgs, here('./one.ts'), c.name, String(SECONDS)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    runs.push(JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>);
    process.stderr.write(`${JSON.stringify(runs.at(-1))}\n`);
  }
  const keys = Object.keys(runs[0]!);
  results[c.name] = { runs, median: Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]!))])) };
}

const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`;
const date = new Date().toISOString().slice(0, 10);
writeFileSync(here('./results.json'), `${JSON.stringify({ date, machine, runs: RUNS, seconds: SECONDS, results }, null, 2)}\n`);

const rows = CASES.flatMap((c) => c.figures.map((f) => `| ${c.title} | ${f.label} | ${format(results[c.name]!.median[f.key]!, f.unit)} | ${verdict(f, results[c.name]!.median[f.key]!)} |`));
const table = [
  `Measured ${date} on ${machine}; median of ${RUNS} runs, each in a fresh process (\`npm run bench\`).`,
  '',
  '| case | figure | median | target |',
  '|---|---|---|---|',
  ...rows,
].join('\n');
writeFileSync(here('./results.md'), `${table}\n`);

const readmePath = here('../README.md');
const readme = readFileSync(readmePath, 'utf8');
const start = '<!-- bench:start -->';
const end = '<!-- bench:end -->';
if (readme.includes(start) && readme.includes(end)) {
  writeFileSync(readmePath, `${readme.slice(0, readme.indexOf(start) + start.length)}\n${table}\n${readme.slice(readme.indexOf(end))}`);
}
process.stdout.write(`${table}\n`);
