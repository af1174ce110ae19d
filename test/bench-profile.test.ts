// `bench/profile.ts --hops`: the stamps every process writes, and the table that splits round trips
// into hops inside and between processes.
import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hopTable } from '../bench/lib/hops.ts';

const profile = fileURLToPath(new URL('../bench/profile.ts', import.meta.url));

/** The p50 and "slowest 1 %" columns of the table's row for `label`. */
function row(table: string, label: string): { p50: number; slowest: number } {
  const line = table.split('\n').find((l) => l.trimEnd().endsWith(`  ${label}`));
  if (line === undefined) throw new Error(`no row "${label}" in:\n${table}`);
  const [p50, , , slowest] = line.trim().split(/\s+/).map(Number);
  return { p50: p50!, slowest: slowest! };
}

test('the hop table splits each round trip into time inside and between processes, and shows the slowest calls', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'koala-hops-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const calls = 100;
  // Per call (µs after its start): client sends 0, relay receives 10 and sends 13, server receives
  // 30 and sends 32, relay receives 50 and sends 52, client receives 70. Call 42's answer takes
  // 500 µs from the server to the relay instead of 18.
  const client: [number, number, number][] = [];
  const relay: [number, number, number][] = [];
  const server: [number, number, number][] = [];
  for (let j = 0; j < calls; j++) {
    const at = j * 1000;
    const late = j === 42 ? 482 : 0;
    client.push([at, 1, 1], [at + 70 + late, 1, 0]);
    relay.push([at + 10, 1, 0], [at + 13, 2, 1], [at + 50 + late, 2, 0], [at + 52 + late, 1, 1]);
    server.push([at + 30, 1, 0], [at + 32, 1, 1]);
  }
  // A connection with a few messages (placement, say) is not on the path.
  relay.push([500, 3, 0], [501, 3, 1]);
  const baseNs = 5_000_000_000n;
  const write = (pid: number, events: [number, number, number][]) =>
    writeFile(join(dir, `${pid}.hops.json`), JSON.stringify({ pid, baseNs: String(baseNs), events }));
  await Promise.all([write(1, client), write(2, relay), write(3, server)]);
  const names = new Map([
    ['1', 'client'],
    ['2', 'relay'],
    ['3', 'server'],
  ]);
  const from = Number(baseNs / 1000n);
  const table = hopTable(dir, from, from + calls * 1000, calls, 1000, names);

  t.deepEqual(row(table, 'client → relay'), { p50: 10, slowest: 10 });
  t.deepEqual(row(table, 'inside relay'), { p50: 3, slowest: 3 });
  t.deepEqual(row(table, 'relay → server'), { p50: 17, slowest: 17 });
  t.deepEqual(row(table, 'inside server'), { p50: 2, slowest: 2 });
  t.deepEqual(row(table, 'server → relay'), { p50: 18, slowest: 500 });
  t.deepEqual(row(table, 'relay → client'), { p50: 18, slowest: 18 });
  t.deepEqual(row(table, 'first frame sent → last message received'), { p50: 70, slowest: 552 });
  t.regex(table, /hops of 100 calls/);
  // 1000 µs from call to call, 74.8 of it on the path on average: the rest is the caller's.
  t.regex(table, /mean 1000 µs from one call to the next: 925 µs of it on the caller's side/);
});

test('profile.ts --hops stamps every process of a real path at one call in flight', async (t) => {
  const r = await execa(process.execPath, [profile, 'ceiling', '0.3', '1', '--hops'], { timeout: 90_000 });
  const out = String(r.stdout);
  const dir = /profiles in (\S+)/.exec(out)?.[1];
  if (dir !== undefined) t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const label of ['client (this process) → relay', 'inside relay', 'relay → server', 'inside server', 'server → relay', 'relay → client (this process)']) {
    const { p50 } = row(out, label);
    t.true(p50 > 0 && p50 < 100_000, `${label}: ${p50}`);
  }
  const total = row(out, 'first frame sent → last message received').p50;
  t.true(total > 0, `round trip ${total}`);
});

test('profile.ts --perf refuses a KOALA_PERF_TOP that is not a number of symbols, in one line, before starting anything', async (t) => {
  const r = await execa(process.execPath, [profile, 'ceiling-1', '0.3', '--perf'], { env: { KOALA_PERF_TOP: 'lots' }, reject: false, timeout: 30_000 });
  t.is(r.exitCode, 1);
  t.is(r.stderr.trim(), 'KOALA_PERF_TOP must be a whole number of symbols (1 or more), got "lots"');
  t.is(r.stdout, '');
});
