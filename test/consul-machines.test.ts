// Two `koala up` runs from two working directories (two "machines") join one cluster through the
// same Consul: one runs the gateway and a host, the other two hosts.
import test from 'ava';
import { join } from 'node:path';
import { readRunState } from '../src/runtime/supervisor/run-state.ts';
import { FIXTURE_PLUGINS, koala, makeProject, manifest } from './helpers/cluster.ts';
import { startConsul } from './helpers/consul.ts';
import { IVerified } from './fixtures/plugins/verifier.ts';

const VERIFIER = join(FIXTURE_PLUGINS, 'verifier.ts');
const SECRET = 'shared-by-both-machines-0123456789';

test('two machines, one cluster: calls through the first one’s gateway reach hosts of the second', async (t) => {
  const consul = await startConsul(t);
  const common = (roles: string) =>
    [`secret: ${SECRET}`, `roles: [${roles}]`, 'placement:', '  provider: consul', '  leaseTtl: 3s', '  consul:', `    address: "${consul.address}"`].join('\n');
  const a = await makeProject(t, manifest({ cluster: 'duo', plugins: [VERIFIER], replicas: 1, extra: common('gateway, hosts') }));
  const b = await makeProject(t, manifest({ cluster: 'duo', plugins: [VERIFIER], replicas: 2, extra: common('hosts') }));
  const upA = await koala(a, ['up', '--detach']);
  t.is(upA.exitCode, 0, upA.stderr);
  const upB = await koala(b, ['up', '--detach']);
  t.is(upB.exitCode, 0, upB.stderr);
  t.is(upB.stdout, '', 'machine B runs no gateway');

  const stateB = readRunState(b)!;
  const hostsB = new Set(stateB.processes.filter((p) => p.role === 'host').map((p) => p.pid));
  t.is(hostsB.size, 2);
  t.false(stateB.processes.some((p) => p.role === 'gateway'));

  // Through A's gateway, some actors land on B's hosts.
  const { ClusterClient } = await import('../src/runtime/client/cluster-client.ts');
  const stateA = readRunState(a)!;
  const client = await ClusterClient.connect({ url: stateA.gateway, cluster: 'duo', secret: SECRET });
  t.teardown(() => client.close());
  const pids = new Set<number>();
  for (let i = 0; i < 30; i++) pids.add((await client.getProxy(IVerified, i).touch()).pid);
  t.true([...pids].some((pid) => hostsB.has(pid)), 'actors placed on the second machine’s hosts');
  t.is(pids.size, 3, 'and on the first machine’s host');

  // Either machine's status shows every member with its health; B finds A's gateway through Consul.
  for (const dir of [a, b]) {
    const status = await koala(dir, ['status', '--json']);
    t.is(status.exitCode, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { gateway: string; hosts: { role: string; health: string }[] };
    t.is(report.gateway, stateA.gateway);
    t.deepEqual(report.hosts.map((h) => `${h.role}:${h.health}`).sort(), ['gateway:passing', 'host:passing', 'host:passing', 'host:passing']);
  }
  const call = await koala(b, ['call', 'IVerified/0', 'touch', '--json']);
  t.is(call.exitCode, 0, call.stderr);
  t.is((JSON.parse(call.stdout) as { n: number }).n, 2, 'the same activation, called again from machine B');
});
