// Instructions per call of a component microbenchmark (bench/micro.ts), counted by valgrind:
//
//   node bench/instructions.ts <client|gateway|host|caller|turn|decode> [checkout] [--runs=N]
//
// CPU time on the shared reference machine moves by ±40 % between runs, which hides a change of a
// few percent; an instruction count does not depend on what else the machine is doing. Each run
// counts two executions of the subject (the same warm-up, then 50 and then 250 rounds of 1 000
// calls): their difference is what 200 000 calls cost, start-up and warm-up cancelling out. It
// counts the micro's stubs too (the fake remote's side), which a before/after comparison of one
// subject has on both sides. Instructions are not time (a cache miss or a branch mispredicted is
// one instruction), so confirm a change with the CPU figures as well.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const runs = Number(args.find((a) => a.startsWith('--runs='))?.slice('--runs='.length) ?? 1);
const micro = fileURLToPath(new URL('./micro.ts', import.meta.url));
const FEW = 50;
const MANY = 250;
const CALLS_PER_ROUND = 1000;

function instructions(rounds: number): number {
  const run = spawnSync('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', '--callgrind-out-file=/dev/null', process.execPath, '--single-threaded', micro, ...positional, `--rounds=${rounds}`], { encoding: 'utf8' });
  if (run.error !== undefined) throw new Error(`valgrind did not start (${run.error.message}); install it: apt-get install valgrind`);
  const collected = /Collected : (\d+)/.exec(run.stderr);
  if (run.status !== 0 || collected === null) throw new Error(`the counted run failed (exit ${run.status}):\n${run.stderr.slice(-2000)}`);
  return Number(collected[1]);
}

for (let i = 0; i < runs; i++) {
  const perCall = (instructions(MANY) - instructions(FEW)) / ((MANY - FEW) * CALLS_PER_ROUND);
  console.log(`${positional.join(' ')}: ${perCall.toFixed(0)} instructions per call`);
}
