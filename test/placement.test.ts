// Unit tests of the embedded placement service (with an injected clock) and the strategies, and
// component tests of the placement client against the service over real sockets, in-process and
// as the real child process (embedded/main.ts).
import test from 'ava';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KoalaError } from '../src/runtime/errors/errors.ts';
import { EmbeddedPlacementClient } from '../src/runtime/placement/embedded/client.ts';
import type { PlacementChildConfig } from '../src/runtime/placement/embedded/main.ts';
import { EmbeddedPlacementService } from '../src/runtime/placement/embedded/service.ts';
import { InProcessPlacement } from '../src/runtime/placement/embedded/in-process.ts';
import { HostLease } from '../src/runtime/host/lease.ts';
import { createLogger } from '../src/runtime/util/log.ts';
import { PlacementInterface, type HostInfo } from '../src/runtime/placement/protocol.ts';
import { STRATEGIES, WARM_UP_MS, type Candidate, type Strategy } from '../src/runtime/placement/strategies.ts';
import { adaptStrategy, defineStrategy, resolveStrategy, type StrategyCall, type StrategyHost } from '../src/runtime/placement/strategy-plugin.ts';
import { PluginError } from '../src/runtime/host/plugins.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHILD_CONFIG_ENV } from '../src/runtime/process/child.ts';
import { ServiceTable } from '../src/runtime/wire/services.ts';
import type { Position } from '../src/runtime/wire/schemas.ts';
import { CLUSTER, SECRET, delay, identity, listen, rejection } from './helpers/unit-wire.ts';

const TTL = 1000;

function host(id: string, interfaces: string[], load = 0, stateless: string[] = []): HostInfo {
  return {
    id,
    group: 'host',
    address: `ws://127.0.0.1:${1000 + id.length}/${id}`,
    pid: 1,
    startedAt: 0,
    load,
    role: 'host',
    health: 'passing',
    interfaces: interfaces.map((name) => ({
      name,
      fingerprint: `fp-${name}`,
      protocol: JSON.stringify({ protocol: name, messages: {} }),
      stateless: stateless.includes(name),
    })),
  };
}

/** Always the first candidate, in registration order: makes "which host" deterministic. */
const first: Strategy = (candidates) => candidates[0]!;

function service(strategy: Strategy = first) {
  const clock = { now: 1_000_000 };
  const logs: string[] = [];
  const svc = new EmbeddedPlacementService({ leaseTtlMs: TTL, strategy, now: () => clock.now, log: (l) => logs.push(l) });
  return { svc, clock, logs };
}

function thrown(fn: () => unknown): KoalaError {
  try {
    fn();
  } catch (err) {
    if (err instanceof KoalaError) return err;
    throw err;
  }
  throw new Error('expected a KoalaError');
}

// ---- the service -------------------------------------------------------------------------------

test('register returns the lease TTL; members lists the hosts', (t) => {
  const { svc, logs } = service();
  t.is(svc.register(host('a', ['IPlayer'])), TTL);
  t.is(svc.register(host('b', [])), TTL);
  t.deepEqual(
    svc.members().map((h) => h.id),
    ['a', 'b'],
  );
  t.true(logs.some((l) => l.includes('host a joined') && l.includes('IPlayer')));
  t.true(logs.some((l) => l.includes('host b joined') && l.includes('serves nothing')));
});

test('locate assigns a live host serving the interface and returns the same position on repeat', (t) => {
  const { svc } = service(STRATEGIES.random);
  svc.register(host('rooms', ['IRoom']));
  svc.register(host('players-1', ['IPlayer']));
  svc.register(host('players-2', ['IPlayer', 'IRoom']));
  for (let i = 0; i < 50; i++) {
    const pos = svc.locate('IPlayer', String(i));
    t.true(pos.host === 'players-1' || pos.host === 'players-2');
    t.is(pos.address, host(pos.host, []).address);
    t.deepEqual(svc.locate('IPlayer', String(i)), pos, 'same host and epoch on repeat');
  }
  t.is(svc.positionCount, 50);
  // The identity includes the interface: IRoom/1 is not IPlayer/1.
  const room = svc.locate('IRoom', '1');
  t.not(room.epoch, svc.locate('IPlayer', '1').epoch);
  t.is(svc.positionCount, 51);
});

test('epochs strictly increase, also across re-activations and service restarts', async (t) => {
  const { svc } = service(STRATEGIES.random);
  svc.register(host('a', ['IPlayer']));
  svc.register(host('b', ['IPlayer']));
  let last = 0;
  const granted = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const pos = svc.locate('IPlayer', String(i % 10));
    if (!granted.has(pos.epoch)) {
      // A newly granted position: above every epoch granted before it.
      t.true(pos.epoch > last);
      last = pos.epoch;
      granted.add(pos.epoch);
    }
    if (i % 3 === 0) svc.release('IPlayer', String(i % 10), pos.host, pos.epoch);
    t.true(Number.isSafeInteger(pos.epoch));
  }
  t.true(granted.size > 10, 'released identities got new positions');
  // A new placement process (restart, which takes more than a few ms) starts above the old one's
  // epochs: they are seeded from the clock at 1000 per ms.
  await delay(5);
  const restarted = service(STRATEGIES.random).svc;
  restarted.register(host('a', ['IPlayer']));
  t.true(restarted.locate('IPlayer', 'x').epoch > last);
});

test('claim: the first host to claim owns the actor; later claims get that owner', (t) => {
  const { svc, clock } = service();
  svc.register(host('a', ['IPlayer']));
  svc.register(host('b', ['IPlayer']));
  const mine = svc.claim('IPlayer', '1', 'b');
  t.is(mine.host, 'b');
  t.deepEqual(svc.claim('IPlayer', '1', 'a'), mine, 'a claim never takes a live position away');
  t.deepEqual(svc.locate('IPlayer', '1'), mine);
  t.is(thrown(() => svc.claim('IPlayer', '2', 'ghost')).code, 'LEASE_LOST');
  t.is(thrown(() => svc.claim('IChat', '2', 'a')).code, 'UNKNOWN_INTERFACE');
  // Once b's lease runs out, a can claim it, under a newer epoch.
  clock.now += TTL - 1;
  t.true(svc.renew('a', 0));
  clock.now += 1;
  const taken = svc.claim('IPlayer', '1', 'a');
  t.is(taken.host, 'a');
  t.true(taken.epoch > mine.epoch);
});

test('release takes effect only with the matching host and epoch', (t) => {
  const { svc } = service();
  svc.register(host('a', ['IPlayer']));
  svc.register(host('b', ['IPlayer']));
  const pos = svc.locate('IPlayer', '1');
  t.is(svc.release('IPlayer', '1', 'b', pos.epoch), null);
  t.deepEqual(svc.locate('IPlayer', '1'), pos, 'other host: ignored');
  svc.release('IPlayer', '1', pos.host, pos.epoch - 1);
  t.deepEqual(svc.locate('IPlayer', '1'), pos, 'stale epoch: ignored');
  svc.release('IPlayer', '2', pos.host, pos.epoch);
  t.deepEqual(svc.locate('IPlayer', '1'), pos, 'other key: ignored');
  svc.release('IPlayer', '1', pos.host, pos.epoch);
  t.is(svc.positionCount, 0);
  const next = svc.locate('IPlayer', '1');
  t.true(next.epoch > pos.epoch);
  // The old activation's late release cannot remove the new position.
  svc.release('IPlayer', '1', pos.host, pos.epoch);
  t.deepEqual(svc.locate('IPlayer', '1'), next);
});

test('expire() after the TTL drops the host and its positions; the next locate goes elsewhere', (t) => {
  const { svc, clock, logs } = service();
  svc.register(host('a', ['IPlayer']));
  svc.register(host('b', ['IPlayer']));
  const onA = svc.locate('IPlayer', '1');
  svc.locate('IPlayer', '2');
  t.is(onA.host, 'a');

  clock.now += TTL - 1;
  t.true(svc.renew('b', 3));
  svc.expire();
  t.is(svc.members().length, 2, 'not yet: the lease runs for the whole TTL');
  t.deepEqual(svc.locate('IPlayer', '1'), onA);

  clock.now += 1;
  svc.expire();
  t.deepEqual(
    svc.members().map((h) => h.id),
    ['b'],
  );
  t.is(svc.positionCount, 0);
  t.true(logs.some((l) => l === 'host a lease expired; released 2 positions'));
  const moved = svc.locate('IPlayer', '1');
  t.is(moved.host, 'b');
  t.true(moved.epoch > onA.epoch);
  t.false(svc.renew('a', 0), 'a forgotten host must register again');
});

test('a position whose host lease ran out is not handed out, even before the sweep', (t) => {
  const { svc, clock } = service();
  svc.register(host('a', ['IPlayer']));
  const onA = svc.locate('IPlayer', '1');
  clock.now += TTL / 2;
  svc.register(host('b', ['IPlayer']));
  clock.now += TTL / 2; // a's lease is over, b's is not; no expire() yet
  const pos = svc.locate('IPlayer', '1');
  t.is(pos.host, 'b');
  t.true(pos.epoch > onA.epoch);
});

test('renew: unknown host → false; known host → true, extends the lease and records the load', (t) => {
  const { svc, clock } = service();
  t.false(svc.renew('ghost', 1));
  svc.register(host('a', ['IPlayer']));
  for (let i = 0; i < 5; i++) {
    clock.now += TTL - 10;
    t.true(svc.renew('a', 40 + i));
    svc.expire();
  }
  t.is(svc.members()[0]!.load, 44);
  t.is(svc.locate('IPlayer', '1').host, 'a');
});

test('load-aware balances a burst on the positions placement holds, not on load reports that lag behind', (t) => {
  const { svc } = service(STRATEGIES['load-aware']);
  svc.register(host('a', ['IPlayer']));
  svc.register(host('b', ['IPlayer']));
  const count = (from: number, to: number) => {
    const per: Record<string, number> = { a: 0, b: 0 };
    for (let i = from; i < to; i++) per[svc.locate('IPlayer', String(i)).host]!++;
    return per;
  };
  const first = count(0, 2000);
  t.true(Math.abs(first.a! - first.b!) < 300, `first burst split ${first.a}/${first.b}`);
  // Reports sent a while ago: a reported all it holds, b only a third (its renewal came earlier).
  svc.renew('a', first.a!);
  svc.renew('b', Math.round(first.b! / 3));
  t.deepEqual(
    svc.members().map((m) => m.load),
    [first.a, first.b],
    'the load is what placement holds when reports lag',
  );
  const second = count(2000, 5000);
  // On the reports alone, b would look ~650 lighter and take most of the burst.
  t.true(Math.abs(first.a! + second.a! - (first.b! + second.b!)) < 400, `after both bursts ${first.a! + second.a!}/${first.b! + second.b!}`);
  // A release lowers the count again.
  const held = svc.locate('IPlayer', '0');
  svc.release('IPlayer', '0', held.host, held.epoch);
  t.is(svc.members().find((m) => m.id === held.host)!.load, (held.host === 'a' ? first.a! + second.a! : first.b! + second.b!) - 1);
});

test('renew after the lease ran out is refused, even before the sweep, and drops the positions', (t) => {
  // Otherwise: a's lease lapses, IPlayer/1 is granted to b, then a's late renewal revives a's
  // lease and a keeps its activation of IPlayer/1 — two live activations of one identity.
  const { svc, clock } = service();
  svc.register(host('a', ['IPlayer']));
  const onA = svc.locate('IPlayer', '1');
  svc.locate('IPlayer', '2');
  clock.now += TTL / 2;
  svc.register(host('b', ['IPlayer']));
  clock.now += TTL / 2;
  const onB = svc.locate('IPlayer', '1');
  t.is(onB.host, 'b');
  t.false(svc.renew('a', 0), 'an expired lease cannot be renewed');
  t.false(svc.members().some((h) => h.id === 'a'));
  // a's other position went with its lease; b's stays.
  t.deepEqual(svc.locate('IPlayer', '1'), onB);
  t.is(svc.locate('IPlayer', '2').host, 'b');
  t.true(onA.epoch < onB.epoch);
});

test('NO_HOST when hosts serving the interface are known but all expired', (t) => {
  const { svc, clock } = service();
  svc.register(host('a', ['IPlayer']));
  svc.register(host('b', ['IPlayer']));
  clock.now += TTL;
  const e = thrown(() => svc.locate('IPlayer', '1'));
  t.is(e.code, 'NO_HOST');
  t.is(e.message, 'no live host serves IPlayer right now; retry when a host is up');
});

test('UNKNOWN_INTERFACE when nobody serves it, listing what is served', (t) => {
  const { svc } = service();
  const empty = thrown(() => svc.locate('IPlayer', '1'));
  t.is(empty.code, 'UNKNOWN_INTERFACE');
  t.is(empty.message, 'no host serves interface IPlayer (no hosts are registered)');
  svc.register(host('a', ['IRoom', 'IPlayer']));
  svc.register(host('b', ['IChat', 'IRoom']));
  const e = thrown(() => svc.locate('IGhost', '1'));
  t.is(e.code, 'UNKNOWN_INTERFACE');
  t.is(e.message, 'no host serves interface IGhost (served: IChat, IPlayer, IRoom)');
  t.is(svc.positionCount, 0);
});

test('describe returns the protocol JSON of a served interface, or UNKNOWN_INTERFACE', (t) => {
  const { svc } = service();
  svc.register(host('a', ['IPlayer']));
  t.deepEqual(JSON.parse(svc.describe('IPlayer')), { protocol: 'IPlayer', messages: {} });
  const e = thrown(() => svc.describe('IRoom'));
  t.is(e.code, 'UNKNOWN_INTERFACE');
  t.regex(e.message, /served: IPlayer/);
});

test('unregister drops the host with its positions; unknown hosts are ignored', (t) => {
  const { svc, logs } = service();
  svc.register(host('a', ['IPlayer']));
  svc.register(host('b', ['IPlayer']));
  svc.locate('IPlayer', '1');
  t.is(svc.unregister('a'), null);
  t.is(svc.positionCount, 0);
  t.true(logs.includes('host a left; released 1 position'));
  t.is(svc.unregister('nobody'), null);
  t.is(svc.locate('IPlayer', '1').host, 'b');
});

test('stateless workers: any serving host, epoch 0, nothing recorded', (t) => {
  const { svc } = service(STRATEGIES.random);
  svc.register(host('a', ['IWorker', 'IPlayer'], 0, ['IWorker']));
  svc.register(host('b', ['IWorker'], 0, ['IWorker']));
  const hosts = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const pos = svc.locate('IWorker', '1');
    t.is(pos.epoch, 0);
    hosts.add(pos.host);
  }
  t.deepEqual([...hosts].sort(), ['a', 'b'], 'the same id may be served anywhere');
  t.is(svc.positionCount, 0);
  t.true(svc.locate('IPlayer', '1').epoch > 0, 'other interfaces of the host keep single activation');
});

test('the strategy sees only live hosts serving the interface, with the identity, the clock and the caller', (t) => {
  const calls: { ids: string[]; iface: string; key: string; now: number; from: string }[] = [];
  const spy: Strategy = (candidates, iface, key, now, from) => {
    calls.push({ ids: candidates.map((c) => c.info.id), iface, key, now, from });
    return candidates[candidates.length - 1]!;
  };
  const { svc, clock } = service(spy);
  svc.register(host('old', ['IPlayer']));
  clock.now += TTL / 2;
  svc.register(host('other', ['IRoom']));
  svc.register(host('new', ['IPlayer']));
  clock.now += TTL / 2; // `old` has just expired
  t.is(svc.locate('IPlayer', 'k').host, 'new');
  t.is(svc.locate('IPlayer', 'j', 'other').host, 'new');
  t.deepEqual(calls, [
    { ids: ['new'], iface: 'IPlayer', key: 'k', now: clock.now, from: '' },
    { ids: ['new'], iface: 'IPlayer', key: 'j', now: clock.now, from: 'other' },
  ]);
});

// ---- strategies --------------------------------------------------------------------------------

const NOW = 10_000_000;

function candidate(id: string, load = 0, since = NOW - 10 * WARM_UP_MS): Candidate {
  return { info: host(id, ['I'], load), since };
}

/** Each host's share of `picks` new activations; `from`: the calling host's id ('' for a gateway). */
function shares(strategy: Strategy, candidates: Candidate[], picks = 2000, from = ''): Map<string, number> {
  const counts = new Map<string, number>(candidates.map((c) => [c.info.id, 0]));
  for (let i = 0; i < picks; i++) {
    const id = strategy(candidates, 'I', String(i), NOW, from).info.id;
    counts.set(id, counts.get(id)! + 1);
  }
  return new Map([...counts].map(([id, n]) => [id, n / picks]));
}

test('every configurable strategy exists', (t) => {
  t.deepEqual(Object.keys(STRATEGIES).sort(), ['hash', 'load-aware', 'prefer-local', 'random']);
  for (const s of Object.values(STRATEGIES)) t.is(s([candidate('only')], 'I', '1', NOW, '').info.id, 'only');
});

test('hash: stable per identity, independent of candidate order', (t) => {
  const hosts = ['h1', 'h2', 'h3', 'h4'].map((id) => candidate(id));
  const reversed = [...hosts].reverse();
  for (let i = 0; i < 200; i++) {
    const a = STRATEGIES.hash(hosts, 'IPlayer', String(i), NOW, '').info.id;
    t.is(STRATEGIES.hash(hosts, 'IPlayer', String(i), NOW + 12345, '').info.id, a);
    t.is(STRATEGIES.hash(reversed, 'IPlayer', String(i), NOW, '').info.id, a);
  }
});

test('hash: spreads identities over the hosts and moves only the keys of a host that leaves', (t) => {
  const hosts = ['h1', 'h2', 'h3'].map((id) => candidate(id));
  const share = shares(STRATEGIES.hash, hosts, 3000);
  for (const [id, s] of share) t.true(s > 0.25 && s < 0.42, `${id} got ${(s * 100).toFixed(1)}%`);
  const without = hosts.filter((c) => c.info.id !== 'h2');
  let moved = 0;
  for (let i = 0; i < 1000; i++) {
    const before = STRATEGIES.hash(hosts, 'I', String(i), NOW, '').info.id;
    const after = STRATEGIES.hash(without, 'I', String(i), NOW, '').info.id;
    if (before !== 'h2') t.is(after, before);
    else moved++;
  }
  t.true(moved > 0);
  // Interface is part of the identity.
  const differs = Array.from({ length: 100 }, (_, i) => STRATEGIES.hash(hosts, 'IA', String(i), NOW, '').info.id !== STRATEGIES.hash(hosts, 'IB', String(i), NOW, '').info.id);
  t.true(differs.some(Boolean));
});

test('load-aware prefers the less loaded host (0 vs 100 over 2000 picks)', (t) => {
  const share = shares(STRATEGIES['load-aware'], [candidate('idle', 0), candidate('busy', 100)]);
  // Weights 110 vs 10: about 92% vs 8%.
  t.true(share.get('idle')! > 0.85, `idle got ${share.get('idle')}`);
  t.true(share.get('busy')! > 0.02, 'a busy host still gets some work');
});

test('load-aware spreads evenly over equally loaded hosts', (t) => {
  const share = shares(STRATEGIES['load-aware'], [candidate('a', 5), candidate('b', 5)]);
  t.true(share.get('a')! > 0.4 && share.get('a')! < 0.6, `a got ${share.get('a')}`);
  // Loads beyond every host's ceiling still leave each host a (tiny) chance, never a negative weight.
  const heavy = shares(STRATEGIES['load-aware'], [candidate('x', 1000), candidate('y', 1000)]);
  t.true(heavy.get('x')! > 0.4 && heavy.get('x')! < 0.6);
});

test('load-aware: warm-up lowers a new host’s share, unless every host is new', (t) => {
  const warm = candidate('warm');
  const fresh = shares(STRATEGIES['load-aware'], [warm, candidate('new', 0, NOW)]);
  t.true(fresh.get('new')! < 0.2, `a brand-new host got ${fresh.get('new')}`); // ~9%
  const half = shares(STRATEGIES['load-aware'], [warm, candidate('half', 0, NOW - WARM_UP_MS / 2)]);
  t.true(half.get('half')! > fresh.get('new')!, 'the share grows with age');
  t.true(half.get('half')! > 0.2 && half.get('half')! < 0.45, `a half-warm host got ${half.get('half')}`); // ~33%
  const grown = shares(STRATEGIES['load-aware'], [warm, candidate('grown', 0, NOW - WARM_UP_MS)]);
  t.true(grown.get('grown')! > 0.4 && grown.get('grown')! < 0.6);
  const allNew = shares(STRATEGIES['load-aware'], [candidate('n1', 0, NOW), candidate('n2', 0, NOW - 100)]);
  t.true(allNew.get('n1')! > 0.4 && allNew.get('n1')! < 0.6, 'a cluster that just started spreads evenly');
});

test('prefer-local: the calling host when it serves the interface, else load-aware', (t) => {
  const hosts = [candidate('a', 50), candidate('b', 0), candidate('c', 0, NOW)];
  // Local even when it is the busiest or the newest host: the call then stays in its process.
  t.is(shares(STRATEGIES['prefer-local'], hosts, 500, 'a').get('a'), 1);
  t.is(shares(STRATEGIES['prefer-local'], hosts, 500, 'c').get('c'), 1);
  // From a gateway (''), or from a host that does not serve the interface: load-aware's shares.
  for (const from of ['', 'elsewhere']) {
    const share = shares(STRATEGIES['prefer-local'], hosts, 2000, from);
    t.true(share.get('b')! > 0.7, `from "${from}": the idle, warm host got ${share.get('b')}`);
    t.true(share.get('a')! > 0.01 && share.get('a')! < 0.2, `from "${from}": the busy host got ${share.get('a')}`);
  }
});

test('random uses every host about equally', (t) => {
  const share = shares(STRATEGIES.random, ['a', 'b', 'c', 'd'].map((id) => candidate(id)), 4000);
  for (const [id, s] of share) t.true(s > 0.18 && s < 0.32, `${id} got ${s}`);
});

// ---- custom strategies (defineStrategy modules) --------------------------------------------------

test('a custom strategy sees each host and the call, and may answer with the host or its id', (t) => {
  const seen: { hosts: readonly StrategyHost[]; call: StrategyCall }[] = [];
  const strategy = adaptStrategy(
    defineStrategy((hosts, call) => {
      seen.push({ hosts, call });
      return call.key === 'by-id' ? 'b' : hosts[0]!;
    }),
    'mine.ts',
  );
  const candidates = [candidate('a', 3, NOW - 100), candidate('b', 7)];
  t.is(strategy(candidates, 'I', 'by-host', NOW, 'a'), candidates[0]!);
  t.is(strategy(candidates, 'I', 'by-id', NOW, ''), candidates[1]!);
  t.deepEqual(seen[0], {
    hosts: [
      { id: 'a', group: 'host', address: host('a', []).address, load: 3, joinedAt: NOW - 100 },
      { id: 'b', group: 'host', address: host('b', []).address, load: 7, joinedAt: NOW - 10 * WARM_UP_MS },
    ],
    call: { iface: 'I', key: 'by-host', from: 'a', now: NOW },
  });
});

test('a custom strategy that throws, answers a host it was not given or a Promise fails that placement with INTERNAL', (t) => {
  const candidates = [candidate('a'), candidate('b')];
  const failing = (choose: Parameters<typeof defineStrategy>[0]) => {
    try {
      adaptStrategy(defineStrategy(choose), 'zones.ts')(candidates, 'IPlayer', '7', NOW, '');
    } catch (err) {
      t.true(err instanceof KoalaError && err.code === 'INTERNAL', String(err));
      return (err as Error).message;
    }
    return t.fail('expected the placement to fail');
  };
  t.is(
    failing(() => {
      throw new Error('no zone');
    }),
    'placement strategy zones.ts threw while placing IPlayer/7: no zone',
  );
  t.is(failing(() => 'ghost'), 'placement strategy zones.ts returned "ghost" for IPlayer/7, not one of the hosts it was given (a, b)');
  t.is(failing(() => ({ id: 'c', group: 'host', address: '', load: 0, joinedAt: 0 })), 'placement strategy zones.ts returned "c" for IPlayer/7, not one of the hosts it was given (a, b)');
  t.regex(failing((() => Promise.resolve('a')) as unknown as Parameters<typeof defineStrategy>[0]), /returned a Promise \(a strategy must answer synchronously\)/);
});

test('resolveStrategy: a built-in name, or a module that default-exports defineStrategy; a clear error otherwise', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'koala-strategy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.is(await resolveStrategy(dir, 'hash'), STRATEGIES.hash);
  const byKey = await resolveStrategy(dir, fileURLToPath(new URL('./fixtures/strategies/by-key.ts', import.meta.url)));
  t.is(byKey([candidate('b'), candidate('a')], 'I', 'low-1', NOW, '').info.id, 'a');
  t.is(byKey([candidate('b'), candidate('a')], 'I', 'high-1', NOW, '').info.id, 'b');
  await writeFile(join(dir, 'plain.mjs'), 'export default (hosts) => hosts[0];\n');
  await writeFile(join(dir, 'broken.mjs'), 'export default defineStrategy((hosts) => hosts[0]\n');
  const refused = async (setting: string) => (await t.throwsAsync(resolveStrategy(dir, setting), { instanceOf: PluginError }))!.message;
  t.is(await refused('./plain.mjs'), 'placement.strategy plain.mjs must `export default defineStrategy((hosts, call) => host)`');
  t.regex(await refused('./broken.mjs'), /^placement\.strategy broken\.mjs failed to load: \S/);
  t.is(await refused('./nope.ts'), `placement.strategy ./nope.ts not found (looked for ${join(dir, 'nope.ts')}); fix placement.strategy in the manifest`);
});

// ---- the client, over real sockets --------------------------------------------------------------

async function placementOverWire(t: import('ava').ExecutionContext) {
  const clock = { now: Date.now() };
  // The caller's host if it names one (to see `from` cross the wire), else the first candidate.
  const callerOrFirst: Strategy = (candidates, iface, key, now, from) => candidates.find((c) => c.info.id === from) ?? first(candidates, iface, key, now, from);
  const svc = new EmbeddedPlacementService({ leaseTtlMs: TTL, strategy: callerOrFirst, now: () => clock.now });
  const services = new ServiceTable().add(PlacementInterface, svc);
  const server = await listen(t, { onRequest: (env, peer) => services.dispatch(env, peer) });
  const client = new EmbeddedPlacementClient(server.url, identity('host-1', { role: 'host' }));
  t.teardown(() => client.close());
  return { svc, clock, server, client };
}

test('EmbeddedPlacementClient: the whole placement API over the wire', async (t) => {
  const { client, clock, server } = await placementOverWire(t);
  t.is(await client.register(host('a', ['IPlayer'], 3)), TTL);
  await client.register(host('b', ['IPlayer', 'IRoom']));
  const members = await client.members();
  t.deepEqual(
    members.map((m) => [m.id, m.load, m.interfaces.map((i) => i.name)]),
    [
      ['a', 3, ['IPlayer']],
      ['b', 0, ['IPlayer', 'IRoom']],
    ],
  );
  const pos: Position = await client.locate('IPlayer', '1');
  t.like(pos, { host: 'a', address: host('a', []).address });
  t.deepEqual(await client.locate('IPlayer', '1'), pos);
  t.is((await client.locate('IPlayer', '2', 'b')).host, 'b', 'the calling host reaches the strategy');
  t.true(await client.renew('a', 9));
  t.false(await client.renew('ghost', 9));
  t.is((await client.members())[0]!.load, 9);
  t.deepEqual(JSON.parse(await client.describe('IRoom')), { protocol: 'IRoom', messages: {} });
  await client.release('IPlayer', '1', 'a', pos.epoch);
  const again = await client.locate('IPlayer', '1');
  t.true(again.epoch > pos.epoch);
  await client.unregister('a');
  t.is((await client.locate('IPlayer', '1')).host, 'b');
  clock.now += TTL;
  t.false(await client.renew('b', 0));
  t.is(server.peers.size, 1, 'one reused connection for all calls');
});

test('EmbeddedPlacementClient: placement errors arrive typed', async (t) => {
  const { client, clock } = await placementOverWire(t);
  const unknown = await rejection(client.locate('IPlayer', '1'));
  t.is(unknown.code, 'UNKNOWN_INTERFACE');
  t.is(unknown.message, 'no host serves interface IPlayer (no hosts are registered)');
  await client.register(host('a', ['IPlayer']));
  clock.now += TTL;
  const noHost = await rejection(client.locate('IPlayer', '1'));
  t.is(noHost.code, 'NO_HOST');
  t.is((await rejection(client.describe('IRoom'))).code, 'UNKNOWN_INTERFACE');
});

test('EmbeddedPlacementClient: a placement that is not running is UNREACHABLE', async (t) => {
  const { server } = await placementOverWire(t);
  const url = server.url;
  await server.close();
  const client = new EmbeddedPlacementClient(url, identity('host-1'));
  t.teardown(() => client.close());
  t.is((await rejection(client.members())).code, 'UNREACHABLE');
});

// ---- the placement child process ---------------------------------------------------------------

test('embedded/main.ts: runs as a child, serves placement, expires leases, stops on SIGTERM', async (t) => {
  const config: PlacementChildConfig = {
    name: 'placement',
    cluster: CLUSTER,
    secret: SECRET,
    logLevel: 'warn',
    root: process.cwd(),
    host: '127.0.0.1',
    leaseTtlMs: 300,
    strategy: 'hash',
  };
  const entry = fileURLToPath(new URL('../src/runtime/placement/embedded/main.ts', import.meta.url));
  const child = fork(entry, [], { env: { ...process.env, [CHILD_CONFIG_ENV]: JSON.stringify(config) }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  child.stderr!.on('data', (d: Buffer) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => void child.kill('SIGKILL'));

  const url = await new Promise<string>((resolve, reject) => {
    child.on('message', (m: { type: string; url?: string; message?: string }) => (m.type === 'ready' ? resolve(m.url!) : reject(new Error(m.message))));
    child.once('exit', (code) => reject(new Error(`placement exited (${code}): ${output}`)));
  });
  t.regex(url, /^ws:\/\/127\.0\.0\.1:\d+$/);

  const client = new EmbeddedPlacementClient(url, identity('host-1', { role: 'host' }));
  t.teardown(() => client.close());
  t.is(await client.register(host('a', ['IPlayer'])), 300);
  const pos = await client.locate('IPlayer', '7');
  t.is(pos.host, 'a');
  // Without renewals the child's sweeper drops the host within TTL + TTL/10 or so.
  await delay(600);
  t.deepEqual(await client.members(), []);
  t.is((await rejection(client.locate('IPlayer', '7'))).code, 'UNKNOWN_INTERFACE');

  // A client with the wrong secret is refused.
  const intruder = new EmbeddedPlacementClient(url, identity('x', { secret: 'wrong' }));
  t.teardown(() => intruder.close());
  t.is((await rejection(intruder.members())).code, 'AUTH_FAILED');

  child.kill('SIGTERM');
  t.is(await exited, 0);
});

test('embedded/main.ts: exits when its supervisor goes away (IPC disconnect)', async (t) => {
  const config: PlacementChildConfig = { name: 'placement', cluster: CLUSTER, secret: SECRET, logLevel: 'warn', root: process.cwd(), host: '127.0.0.1', leaseTtlMs: 1000, strategy: 'load-aware' };
  const entry = fileURLToPath(new URL('../src/runtime/placement/embedded/main.ts', import.meta.url));
  const child = fork(entry, [], { env: { ...process.env, [CHILD_CONFIG_ENV]: JSON.stringify(config) }, stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  t.teardown(() => void child.kill('SIGKILL'));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => child.once('message', () => resolve()));
  child.disconnect();
  t.is(await exited, 0);
});

test('a host takes a grant from a call only if it was made to its current registration and not given back since', async (t) => {
  // The real service and the real lease, on real timers: renewals every 100 ms.
  const svc = new EmbeddedPlacementService({ leaseTtlMs: 300, strategy: first });
  const info = host('h-grant', ['I']);
  let fenced = 0;
  const lease = new HostLease({ placement: new InProcessPlacement(svc), info: () => info, load: () => 0, fence: async () => void fenced++, log: createLogger('error') });
  t.teardown(() => lease.stop());
  await lease.start();
  await delay(20); // the floor: placement's newest epoch once registered

  const x = svc.locate('I', 'x');
  t.true(lease.acceptsGrant(x.epoch), 'granted to this registration');
  t.false(lease.acceptsGrant(x.epoch - 1), 'older than the registration');
  lease.releasing(x.epoch);
  t.false(lease.acceptsGrant(x.epoch), 'given back');

  const y = svc.locate('I', 'y');
  t.true(lease.acceptsGrant(y.epoch));
  // Placement forgets the host: its next renewal fails, it fences and registers again. Grants made
  // to the former registration are void (placement dropped them; they may be granted elsewhere).
  svc.unregister(info.id);
  const deadline = Date.now() + 3000;
  while ((fenced === 0 || !svc.members().some((m) => m.id === info.id)) && Date.now() < deadline) await delay(10);
  t.is(fenced, 1);
  await delay(20);
  t.false(lease.acceptsGrant(y.epoch), 'granted to the former registration');
  const z = svc.locate('I', 'z');
  t.true(lease.acceptsGrant(z.epoch), 'granted to the new one');
  t.true(svc.epochNow() >= z.epoch);
});
