// Placement strategies across real processes, with embedded placement (a real cluster) and with
// Consul placement (a real agent):
// - `prefer-local`: an actor first called by another actor is activated on the caller's host,
//   while first calls from the gateway are spread (load-aware);
// - a custom strategy module (`placement.strategy: ./by-key.ts`) places every new activation, and
//   one that does not load stops `koala up` with one line.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KoalaError } from '../src/runtime/errors/errors.ts';
import { connectPlacement, openPlacement, type PlacementTarget } from '../src/runtime/placement/connect.ts';
import { ConsulPlacement } from '../src/runtime/placement/consul/consul-placement.ts';
import { STRATEGIES } from '../src/runtime/placement/strategies.ts';
import { readRunState } from '../src/runtime/supervisor/run-state.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { FIXTURE_PLUGINS, PLAYER_PLUGIN, REPO, koala, makeProject, manifest } from './helpers/cluster.ts';
import { consulHostInfo as hostInfo, startConsul } from './helpers/consul.ts';
import { IChain } from './fixtures/plugins/semantics.ts';
import { IPlayer } from '../plugins/player/index.ts';

const BY_KEY = join(REPO, 'test', 'fixtures', 'strategies', 'by-key.ts');

// Sixteen first calls from the gateway: with two equal hosts, all on one host has odds of 2^-15.
const STARTS = Array.from({ length: 16 }, (_, i) => `start-${i}`);

test('embedded: the actors an actor calls first live on its host; the gateway’s first calls spread over both hosts', async (t) => {
  const cluster = await startCluster(t, { plugins: [join(FIXTURE_PLUGINS, 'semantics.ts')], replicas: 2, extra: 'placement:\n  strategy: prefer-local' });
  for (const k of STARTS) {
    const visited = await cluster.client.getProxy(IChain, k).visit([`IChain/${k}-next`, `IChain/${k}-last`]);
    t.deepEqual(visited, [`IChain/${k}`, `IChain/${k}-next`, `IChain/${k}-last`]);
  }
  const hostOf = new Map((await cluster.client.actors('IChain')).map((a) => [a.key, a.host]));
  t.is(new Set(STARTS.map((k) => hostOf.get(k))).size, 2, 'the gateway’s first calls went to both hosts');
  for (const k of STARTS) {
    t.is(hostOf.get(`${k}-next`), hostOf.get(k), `${k}-next was placed on the host of ${k}, its caller`);
    t.is(hostOf.get(`${k}-last`), hostOf.get(k), `${k}-last was placed on the host of ${k}-next, its caller`);
  }
});

test('consul: locate suggests the calling host when it serves the interface, else a load-aware choice', async (t) => {
  const consul = await startConsul(t);
  const open = () => new ConsulPlacement({ address: consul.address, cluster: 'pl1', strategy: STRATEGIES['prefer-local'], leaseTtlMs: 10_000, lockDelayMs: 1000 });
  const [a, b, other, caller] = [open(), open(), open(), open()];
  t.teardown(() => Promise.all([a, b, other, caller].map((p) => p.close())));
  await a.register(hostInfo('host-a', 1001, 'ILocal'));
  await b.register(hostInfo('host-b', 1002, 'ILocal'));
  await other.register(hostInfo('host-c', 1003, 'IOther'));
  for (const k of STARTS) {
    t.is((await caller.locate('ILocal', k, 'host-a')).host, 'host-a');
    t.is((await caller.locate('ILocal', k, 'host-b')).host, 'host-b');
  }
  const fromGateway = new Set(await Promise.all(STARTS.map(async (k) => (await caller.locate('ILocal', `g-${k}`, '')).host)));
  t.deepEqual([...fromGateway].sort(), ['host-a', 'host-b'], 'from a gateway: both hosts');
  const fromOther = new Set(await Promise.all(STARTS.map(async (k) => (await caller.locate('ILocal', `o-${k}`, 'host-c')).host)));
  t.deepEqual([...fromOther].sort(), ['host-a', 'host-b'], 'from a host that does not serve ILocal: both hosts');
});

// ---- custom strategy modules ----------------------------------------------------------------------

test('embedded: a strategy module places every new activation', async (t) => {
  const cluster = await startCluster(t, { plugins: [PLAYER_PLUGIN], replicas: 2, extra: `placement:\n  strategy: ${JSON.stringify(BY_KEY)}` });
  const keys = ['low-1', 'low-2', 'low-3', 'high-1', 'high-2', 'high-3'];
  for (const k of keys) t.is(await cluster.client.getProxy(IPlayer, k).echo(k), k);
  const hostOf = new Map((await cluster.client.actors('IPlayer')).map((a) => [a.key, a.host]));
  const hosts = [...new Set(hostOf.values())].sort();
  t.is(hosts.length, 2, `both hosts used: ${[...hostOf].join(' ')}`);
  for (const k of keys) t.is(hostOf.get(k), k.startsWith('low-') ? hosts[0] : hosts[1], k);
});

test('consul: every caller loads the strategy module; placement opened without a strategy places nothing', async (t) => {
  const consul = await startConsul(t);
  const target: PlacementTarget = { provider: 'consul', address: consul.address, strategy: BY_KEY, leaseTtlMs: 10_000, lockDelayMs: 1000 };
  const identity = (node: string) => ({ cluster: 'cs1', secret: 'unused-with-consul', node, role: 'host' });
  const [a, b] = [openPlacement(target, identity('a')), openPlacement(target, identity('b'))];
  const caller = await connectPlacement(target, identity('caller'), REPO);
  t.teardown(() => Promise.all([a, b, caller].map((p) => p.close())));
  await a.register(hostInfo('host-a', 1001, 'IKeyed'));
  await b.register(hostInfo('host-b', 1002, 'IKeyed'));
  for (let i = 0; i < 5; i++) {
    t.is((await caller.locate('IKeyed', `low-${i}`)).host, 'host-a');
    t.is((await caller.locate('IKeyed', `high-${i}`)).host, 'host-b');
  }
  const refused = await t.throwsAsync(a.locate('IKeyed', 'low-1'));
  t.true(refused instanceof KoalaError && refused.code === 'INTERNAL');
  t.regex(refused!.message, /opened Consul placement without a strategy/);
});

test.serial('a strategy module that does not load fails `up` with one line and leaves no process behind', async (t) => {
  for (const [file, source, expected] of [
    ['missing.ts', undefined, /placement\.strategy \.\/missing\.ts not found \(looked for .*missing\.ts\); fix placement\.strategy in the manifest/],
    ['plain.mjs', 'export default (hosts) => hosts[0];\n', /placement\.strategy plain\.mjs must `export default defineStrategy\(\(hosts, call\) => host\)`/],
  ] as const) {
    const dir = await makeProject(t, manifest({ plugins: [PLAYER_PLUGIN], replicas: 1, extra: `placement:\n  strategy: ./${file}` }));
    if (source !== undefined) await writeFile(join(dir, file), source);
    const up = await koala(dir, ['up', '--detach']);
    t.is(up.exitCode, 1, up.stderr);
    t.regex(up.stderr, expected);
    t.is(readRunState(dir), undefined);
  }
});
