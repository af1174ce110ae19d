// The supervisor's process discipline: Ctrl-C stops everything quickly and cleanly, children die
// with a killed supervisor, a crashed host is restarted, and children start from Node's compile cache.
import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IPlayer } from '../plugins/player/index.ts';
import { isAlive, readRunState } from '../src/runtime/supervisor/run-state.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { BIN, koala, makeProject, manifest, pidsOf, portIsClosed, waitFor, upDetached } from './helpers/cluster.ts';

test.serial('foreground `koala up`: logs with prefixes, Ctrl-C stops every child within 5 s and exits 0', async (t) => {
  const dir = await makeProject(t, manifest());
  const up = execa(process.execPath, [BIN, 'up'], { cwd: dir, env: { NO_COLOR: '1' }, reject: false, all: true, buffer: { all: true } });
  t.teardown(() => up.kill('SIGKILL'));
  let output = '';
  up.all!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor('the cluster to be up', () => /cluster "test" is up/.test(output), 20_000);
  t.regex(output, /^placement\s+\| embedded placement listening on ws:\/\//m);
  t.regex(output, /^host-1\s+\| host host-1-\w+ serving IPlayer/m);
  t.regex(output, /✓ gateway\s+ready in \d+ ms/);

  t.is((await koala(dir, ['call', 'IPlayer/9', 'echo', 'foreground'])).stdout, 'foreground');
  const state = readRunState(dir)!;
  t.is(state.pid, up.pid!);

  const sentAt = Date.now();
  up.kill('SIGINT');
  const result = await up;
  const took = Date.now() - sentAt;
  t.is(result.exitCode, 0, result.all);
  t.true(took < 5000, `stopped in ${took} ms`);
  for (const pid of pidsOf(state)) t.false(isAlive(pid), `pid ${pid} survived Ctrl-C`);
  for (const p of state.processes) t.true(await portIsClosed(p.url), `${p.name} still holds ${p.url}`);
  t.is(readRunState(dir), undefined, 'run state removed');
});

test.serial('children exit when the supervisor is killed with SIGKILL (no orphans)', async (t) => {
  const dir = await makeProject(t, manifest());
  await upDetached(t, dir);
  const state = readRunState(dir)!;
  process.kill(state.pid, 'SIGKILL');
  await waitFor('every child to exit', () => state.processes.every((p) => !isAlive(p.pid)), 10_000);
  for (const p of state.processes) t.true(await portIsClosed(p.url), `${p.name} still holds ${p.url}`);
  // The stale run state does not count as a running cluster.
  const call = await koala(dir, ['call', 'IPlayer/1', 'echo', 'hi']);
  t.is(call.exitCode, 1);
  t.regex(call.stderr, /no running Koala cluster/);
  const up = await koala(dir, ['up', '--detach']);
  t.is(up.exitCode, 0, `a stale lock is taken over: ${up.stderr}`);
});

test.serial('a crashed host is restarted and the cluster keeps serving', async (t) => {
  // A lease far longer than the wait below: recovery must not come from lease expiry.
  const dir = await makeProject(t, manifest({ replicas: 1, extra: 'placement:\n  leaseTtl: 120s' }));
  await upDetached(t, dir);
  const before = readRunState(dir)!;
  const host = before.processes.find((p) => p.role === 'host')!;
  t.is((await koala(dir, ['call', 'IPlayer/1', 'count'])).stdout, '1');
  process.kill(host.pid, 'SIGKILL');
  await waitFor('the host to be restarted', () => {
    const now = readRunState(dir)?.processes.find((p) => p.name === host.name);
    return now !== undefined && now.pid !== host.pid && isAlive(now.pid);
  }, 15_000);
  // The supervisor saw the host die and freed its positions at once (not after the 120 s lease);
  // the gateway's cached position fails to dial, it asks placement again, and the very first call
  // after the restart reaches a fresh activation.
  const back = await koala(dir, ['call', 'IPlayer/1', 'echo', 'back']);
  t.is(back.stdout, 'back', back.stderr);
  t.is((await koala(dir, ['call', 'IPlayer/1', 'count'])).stdout, '1');
});

test.serial('children keep Node’s compile cache, in its default directory when the supervisor has none', async (t) => {
  // This process has no compile cache of its own: whatever the directory holds, the children wrote.
  const saved = { TMPDIR: process.env.TMPDIR, NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE };
  const scratch = await mkdtemp(join(tmpdir(), 'koala-cache-'));
  process.env.TMPDIR = scratch;
  delete process.env.NODE_COMPILE_CACHE;
  t.teardown(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(scratch, { recursive: true, force: true });
  });
  t.is(module.getCompileCacheDir?.(), undefined);
  const cluster = await startCluster(t, { replicas: 1 });
  const entries = await readdir(join(scratch, 'node-compile-cache'), { recursive: true });
  t.true(entries.length > 0, 'the children wrote compiled code to the cache');
  // The cluster works as ever.
  t.is(await cluster.client.getProxy(IPlayer, 'cache').echo('hi'), 'hi');
});
