// `npm run bench`: every case, each run RUNS times in a fresh process, medians reported side by side.
// Writes bench/results.json and bench/results.md and refreshes the table in README.md.
// `node bench/run.ts --render` only rewrites the tables from bench/results.json (no measuring).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type BenchCase, CASES, type Figure } from './cases.ts';

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

/** Wall time since `started` (a `performance.now()` reading), as "12.3 s". */
function seconds(started: number): string {
  return `${((performance.now() - started) / 1000).toFixed(1)} s`;
}

type Results = Record<string, { runs: Record<string, number>[]; median: Record<string, number> }>;
let results: Results = {};
let machine: string;
let date: string;
let runs = RUNS;
if (process.argv.includes('--render')) {
  const saved = JSON.parse(readFileSync(here('./results.json'), 'utf8')) as { date: string; machine: string; runs: number; results: Results };
  ({ results, machine, date, runs } = saved);
} else {
  const benchStarted = performance.now();
  for (const c of CASES.filter((c) => c.measuredIn === undefined)) {
    const caseRuns: Record<string, number>[] = [];
    for (let i = 0; i < RUNS; i++) {
      process.stderr.write(`bench ${c.name} run ${i + 1}/${RUNS}… `);
      const runStarted = performance.now();
      const out = execFileSync(process.execPath, [...c.nodeArgs, here('./one.ts'), c.name, String(SECONDS)], { encoding: 'utf8', maxBuffer: 1 << 20 });
      caseRuns.push(JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>);
      process.stderr.write(`${JSON.stringify(caseRuns.at(-1))} (${seconds(runStarted)})\n`);
    }
    const keys = Object.keys(caseRuns[0]!);
    results[c.name] = { runs: caseRuns, median: Object.fromEntries(keys.map((k) => [k, median(caseRuns.map((r) => r[k]!))])) };
  }
  // The budget for a full run is 5 minutes: the total shows how close a run came to it.
  process.stderr.write(`bench: all cases in ${seconds(benchStarted)}\n`);
  machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`;
  date = new Date().toISOString().slice(0, 10);
  writeFileSync(here('./results.json'), `${JSON.stringify({ date, machine, runs: RUNS, seconds: SECONDS, results }, null, 2)}\n`);
}

// The case's title on its first row only; cases missing from the results (added since) are skipped.
const resultsOf = (c: BenchCase) => results[c.measuredIn ?? c.name];
const rows = CASES.filter((c) => resultsOf(c) !== undefined).flatMap((c) =>
  c.figures.map((f, i) => {
    const r = resultsOf(c)!;
    const values = r.runs.map((run) => run[f.key]!);
    const spread = `${format(Math.min(...values), f.unit)} – ${format(Math.max(...values), f.unit)}`;
    return `| ${i === 0 ? c.title : ''} | ${f.label} | ${format(r.median[f.key]!, f.unit)} | ${spread} | ${verdict(f, r.median[f.key]!)} |`;
  }),
);
const table = [
  `Measured ${date} on ${machine}; median of ${runs} runs, each in a fresh process (\`npm run bench\`).`,
  '',
  '| case | figure | median | runs (min – max) | target |',
  '|---|---|---|---|---|',
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
