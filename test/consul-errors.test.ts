// Consul that is not there: one clear line with the fix, a non-zero exit, nothing left running.
import test from 'ava';
import { createServer } from 'node:net';
import { readRunState } from '../src/runtime/supervisor/run-state.ts';
import { koala, makeProject, manifest, PLAYER_PLUGIN } from './helpers/cluster.ts';

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('an unreachable Consul agent: `koala up` says so in one line and starts nothing', async (t) => {
  const port = await closedPort();
  const dir = await makeProject(t, manifest({ plugins: [PLAYER_PLUGIN], extra: `placement:\n  provider: consul\n  consul:\n    address: "127.0.0.1:${port}"` }));
  const up = await koala(dir, ['up', '--detach']);
  t.is(up.exitCode, 1);
  const errors = up.stderr.split('\n').filter((l) => l.startsWith('error '));
  t.deepEqual(errors, [`error Consul at 127.0.0.1:${port} did not answer (connection refused); check placement.consul.address and that the agent runs`]);
  t.is(readRunState(dir), undefined);
});

test('no Consul address and no start: the manifest problem is named', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: [PLAYER_PLUGIN], extra: 'placement:\n  provider: consul' }));
  const up = await koala(dir, ['up', '--detach']);
  t.is(up.exitCode, 1);
  t.regex(up.stderr, /^error placement\.provider is consul but placement\.consul has no address; set placement\.consul\.address \(or KOALA_CONSUL_ADDRESS\) to a running agent, or placement\.consul\.start: true$/m);
});

test('consul.start without a consul binary: one line naming the fix', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: [PLAYER_PLUGIN], extra: 'placement:\n  provider: consul\n  consul:\n    start: true' }));
  const up = await koala(dir, ['up', '--detach'], { KOALA_CONSUL_BIN: '/nonexistent/consul' });
  t.is(up.exitCode, 1);
  t.regex(up.stderr, /^error consul: KOALA_CONSUL_BIN=\/nonexistent\/consul is not an executable file; point it at the consul binary$/m);
  t.notRegex(up.stderr, /\n\s+at /);
  t.is(readRunState(dir), undefined);
});
