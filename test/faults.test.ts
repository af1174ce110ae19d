// Faults around placement: a host that cannot reach placement stops its actors before its lease
// could expire (self-fencing), and a crashed placement comes back where hosts can find it.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from '../src/runtime/supervisor/run-state.ts';
import { FIXTURE_PLUGINS, waitFor } from './helpers/cluster.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { ILongLife } from './fixtures/plugins/semantics.ts';

const SEMANTICS = join(FIXTURE_PLUGINS, 'semantics.ts');

async function journalFile(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'koala-journal-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'journal.txt');
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []);

test.serial('a host cut off from placement deactivates its actors before its lease can expire', async (t) => {
  const file = await journalFile(t);
  process.env.KOALA_TEST_JOURNAL = file;
  const ttlMs = 3000;
  const cluster = await startCluster(t, { plugins: [SEMANTICS], replicas: 1, extra: `    idleTimeout: 1h\nplacement:\n  leaseTtl: ${ttlMs}ms` });
  delete process.env.KOALA_TEST_JOURNAL;
  const placement = cluster.state.processes.find((p) => p.role === 'placement')!;
  for (let i = 0; i < 5; i++) t.is(await cluster.client.getProxy(ILongLife, `fenced-${i}`).hello(), 1);

  // Freeze placement: renewals stop being answered (the socket stays open, so a renewal neither
  // succeeds nor fails until its 5 s call timeout). Placement's lease runs until the last accepted
  // renewal + ttl, later than the last *sent* renewal + ttl; the host must fence a margin (ttl/5)
  // before that, so at most ttl − ttl/5 after the freeze, never waiting for the renewal to fail.
  const frozenAt = Date.now();
  process.kill(placement.pid, 'SIGSTOP');
  t.teardown(() => {
    if (isAlive(placement.pid)) process.kill(placement.pid, 'SIGCONT');
  });
  await waitFor('the host to fence', () => lines(file).length === 5, ttlMs * 2);
  const fencedAfter = Date.now() - frozenAt;
  t.true(fencedAfter <= ttlMs - ttlMs / 5 + 300, `fenced ${fencedAfter} ms after placement froze (lease ${ttlMs} ms)`);
  t.deepEqual(lines(file).sort(), Array.from({ length: 5 }, (_, i) => `deactivate ILongLife/fenced-${i}`));

  // Placement back: the host finds its lease gone, registers again, and actors come back fresh.
  process.kill(placement.pid, 'SIGCONT');
  await waitFor('calls to work again', async () => (await cluster.client.getProxy(ILongLife, 'fenced-0').hello().catch(() => 0)) === 1, 15_000);
});

test.serial('a crashed placement is restarted on its address and the cluster serves again', async (t) => {
  const cluster = await startCluster(t, { plugins: [SEMANTICS], replicas: 2, extra: 'placement:\n  leaseTtl: 2s' });
  const placement = cluster.state.processes.find((p) => p.role === 'placement')!;
  t.is(await cluster.client.getProxy(ILongLife, 'p-1').hello(), 1);
  process.kill(placement.pid, 'SIGKILL');
  // Hosts learn that placement forgot them, fence, register again; new activations work.
  await waitFor('new activations to work', async () => (await cluster.client.getProxy(ILongLife, 'p-2').hello().catch(() => 0)) === 1, 20_000);
  // Each host registers again at its next renewal.
  await waitFor('both hosts to register with the new placement', async () => (await cluster.client.members()).length === 2, 10_000);
  t.pass();
});
