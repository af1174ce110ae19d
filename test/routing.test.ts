// The router's short path (position cached, connection open) when its cached position has gone
// stale: three real hosts in this process, talking over real sockets, sharing the real embedded
// placement service, whose strategy the test steers so that every placement is deterministic.
import test from 'ava';
import { WebSocket } from 'ws';
import { Actor, defineInterface, definePlugin } from '../src/index.ts';
import type { KoalaError } from '../src/runtime/errors/errors.ts';
import type { ActorPlugin } from '../src/runtime/actor/plugin.ts';
import { ClusterClient } from '../src/runtime/client/cluster-client.ts';
import { validateManifest } from '../src/runtime/config/manifest.ts';
import { Gateway } from '../src/runtime/gateway/gateway.ts';
import { Host } from '../src/runtime/host/host.ts';
import { InProcessPlacement } from '../src/runtime/placement/embedded/in-process.ts';
import { EmbeddedPlacementService } from '../src/runtime/placement/embedded/service.ts';
import type { Placement } from '../src/runtime/placement/protocol.ts';
import type { Strategy } from '../src/runtime/placement/strategies.ts';
import { connect, PeerPool } from '../src/runtime/wire/connect.ts';
import { NO_HEADERS, readFrame } from '../src/runtime/wire/frame.ts';
import { encodeArgs, methodOf } from '../src/runtime/wire/rpc.ts';
import { positionType } from '../src/runtime/wire/schemas.ts';
import { createLogger } from '../src/runtime/util/log.ts';
import { newChainId } from '../src/runtime/actor/call-context.ts';
import { ActorRouter } from '../src/runtime/routing/router.ts';

const ITarget = defineInterface({
  protocol: 'ITarget',
  messages: { where: { request: [], response: 'string' }, leave: { request: [], response: 'null' } },
});
const callerMessages = {
  ask: { request: [{ name: 'id', type: 'string' }], response: 'string' },
  /** Waits `ms`, then calls ITarget/`id`; what became of that call goes to `lateCalls`. */
  askLate: { request: [{ name: 'id', type: 'string' }, { name: 'ms', type: 'int' }], response: 'null' },
} as const;
const lateCalls: string[] = [];
const ICaller = defineInterface({ protocol: 'ICaller', messages: callerMessages });

/** The same interface on every host, each answering with its own name: where a call ran is visible. */
function targetOn(name: string): ActorPlugin {
  class Target extends Actor {
    where(): string {
      return name;
    }
    leave(): null {
      this.deactivateOnIdle();
      return null;
    }
  }
  return definePlugin({ interface: ITarget, implementation: Target });
}

class Caller extends Actor {
  ask(id: string): Promise<string> {
    return this.getProxy(ITarget, id).where();
  }
  async askLate(id: string, ms: number): Promise<null> {
    await new Promise((r) => setTimeout(r, ms));
    try {
      await this.getProxy(ITarget, id).where();
      lateCalls.push('answered');
    } catch (err) {
      lateCalls.push(`${(err as Error).name}: ${(err as Error).message}`);
    }
    return null;
  }
}
/** The same caller, of a non-reentrant interface. */
const IStrictCaller = defineInterface({ protocol: 'IStrictCaller', messages: callerMessages }, { reentrant: false });

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const SECRET = 'routing-secret-routing-secret';

/** Three hosts (a also serves ICaller) sharing one embedded placement whose choices `steer` makes. */
async function startHosts(
  t: import('ava').ExecutionContext,
  steer: Strategy,
  placementFor: (service: EmbeddedPlacementService) => Placement = (service) => new InProcessPlacement(service),
): Promise<{ service: EmbeddedPlacementService; hosts: Record<'a' | 'b' | 'c', Host> }> {
  const service = new EmbeddedPlacementService({ leaseTtlMs: 60_000, strategy: steer });
  const hosts: Record<string, Host> = {};
  for (const name of ['a', 'b', 'c']) {
    const callers = [definePlugin({ interface: ICaller, implementation: Caller }), definePlugin({ interface: IStrictCaller, implementation: Caller })];
    const plugins = name === 'a' ? [targetOn(name), ...callers] : [targetOn(name)];
    hosts[name] = new Host({
      name,
      group: name,
      cluster: 'routing',
      secret: SECRET,
      listenHost: '127.0.0.1',
      plugins,
      placement: placementFor(service),
      callTimeoutMs: 5000,
      idleTimeoutMs: 600_000,
      storage: { provider: 'memory', file: '', interfaces: {} },
      root: process.cwd(),
      log: createLogger('error'),
    });
  }
  t.teardown(async () => {
    for (const host of Object.values(hosts)) await host.stop();
  });
  for (const host of Object.values(hosts)) await host.start();
  return { service, hosts: hosts as Record<'a' | 'b' | 'c', Host> };
}

test('a call on the short path to a stale position is redirected to the actor’s new host and answered there', async (t) => {
  // New actors go to the host whose name the test chose last.
  let next = 'b';
  const { hosts } = await startHosts(t, (candidates) => candidates.find((c) => c.info.id.startsWith(`${next}-`)) ?? candidates[0]!);
  const { a, b, c } = hosts;

  // The caller lives on a (only a serves ICaller); its first call places ITarget/t on b.
  const caller = a.proxy(ICaller, 'x');
  t.is(await caller.ask('t'), 'b');
  // a's router now has the position cached and a connection to b: the short path.
  t.is(await caller.ask('t'), 'b');

  // The actor leaves b, then comes back on c (activated by a call made on c itself).
  await a.proxy(ITarget, 't').leave();
  await until('ITarget/t to leave b', () => b.activationCount === 0);
  next = 'c';
  t.is(await c.proxy(ITarget, 't').where(), 'c');

  // a still believes b: its call goes to b, which finds placement naming c and redirects; the
  // caller never sees it, and b does not activate the actor a second time.
  t.is(await caller.ask('t'), 'c');
  t.is(b.activationCount, 0);
  // The redirect corrected a's cache: the next call goes to c directly.
  t.is(await caller.ask('t'), 'c');
  t.is(b.activationCount, 0);
});

async function startGateway(t: import('ava').ExecutionContext, service: EmbeddedPlacementService): Promise<ClusterClient> {  const manifest = validateManifest({ cluster: 'routing', secret: SECRET, gateway: { host: '127.0.0.1', port: 0 } }, 'routing.test.ts');
  const gateway = new Gateway({
    identity: { cluster: 'routing', secret: SECRET, node: 'gateway', role: 'gateway' },
    placement: new InProcessPlacement(service),
    settings: manifest.gateway,
    root: process.cwd(),
    log: createLogger('error'),
  });
  await gateway.start();
  t.teardown(() => gateway.stop());
  const client = await ClusterClient.connect({ url: gateway.url, cluster: 'routing', secret: SECRET, timeoutMs: 5000 });
  t.teardown(() => client.close());
  return client;
}

test('the gateway forwards a call to a stale position by copying it; the host redirects and the client gets the answer', async (t) => {
  let next = 'b';
  const { service, hosts } = await startHosts(t, (candidates) => candidates.find((c) => c.info.id.startsWith(`${next}-`)) ?? candidates[0]!);
  const { b, c } = hosts;
  const client = await startGateway(t, service);

  const target = client.getProxy(ITarget, 'g');
  t.is(await target.where(), 'b');
  t.is(await target.where(), 'b', 'the gateway’s short path: position cached, connection open');
  await target.leave();
  await until('ITarget/g to leave b', () => b.activationCount === 0);
  next = 'c';
  t.is(await c.proxy(ITarget, 'g').where(), 'c');
  t.is(await target.where(), 'c', 'redirected by b, answered by c');
  t.is(b.activationCount, 0);
  t.is(await target.where(), 'c');
});

/** The real in-process placement, counting the claims each host makes. */
class CountingPlacement extends InProcessPlacement {
  claims = 0;
  override claim(iface: string, key: string, hostId: string) {
    this.claims++;
    return super.claim(iface, key, hostId);
  }
}

test('a first call through the gateway brings the grant: the chosen host activates without claiming, and a released grant is claimed again', async (t) => {
  let next = 'b';
  const placements: CountingPlacement[] = [];
  const { service, hosts } = await startHosts(
    t,
    (candidates) => candidates.find((c) => c.info.id.startsWith(`${next}-`)) ?? candidates[0]!,
    (svc) => {
      const p = new CountingPlacement(svc);
      placements.push(p);
      return p;
    },
  );
  const { b, c } = hosts;
  const claimsOfB = () => placements[1]!.claims;
  const client = await startGateway(t, service);
  // The hosts learn placement's newest epoch right after registering.
  await new Promise((r) => setTimeout(r, 100));

  // The gateway's first call to b dials it, on the general path (which sends no grant).
  t.is(await client.getProxy(ITarget, 'dial').where(), 'b');
  const dialled = claimsOfB();
  for (let i = 0; i < 19; i++) t.is(await client.getProxy(ITarget, `first-${i}`).where(), 'b');
  t.is(claimsOfB(), dialled, 'b took each grant from the call instead of claiming');
  t.is((await service.actors('ITarget')).filter((p) => p.host === b.id).length, 20, 'placement names b for all of them');

  // g leaves b (b releases it), and comes back on c. A call still carrying b's old grant must
  // not activate it on b a second time: b claims, learns that c owns it, and redirects.
  t.is(await client.getProxy(ITarget, 'g').where(), 'b');
  const granted = service.locate('ITarget', 'g');
  t.is(granted.host, b.id);
  await client.getProxy(ITarget, 'g').leave();
  await until('ITarget/g to leave b', () => b.activationCount === 20);
  next = 'c';
  t.is(await c.proxy(ITarget, 'g').where(), 'c');

  const peer = await connect(b.url, { identity: { cluster: 'routing', secret: SECRET, node: 'stale-gateway', role: 'gateway' } });
  t.teardown(() => peer.close());
  const before = claimsOfB();
  const answer = await peer.request({ iface: 'ITarget', key: 'g', method: 'where', chain: '', deadline: Date.now() + 5000, epoch: granted.epoch, headers: NO_HEADERS, payload: encodeArgs(ITarget, ITarget.service.message('where')!, []) });
  t.is(answer.kind, 'REDIRECT');
  t.is(positionType.fromBuffer(answer.payload).host, c.id);
  t.is(claimsOfB(), before + 1, 'b claimed instead of trusting the released grant');
  t.is(b.activationCount, 20, 'and did not activate g');
});

test('calls between hosts carry the chain’s path only from its first non-reentrant actor on', async (t) => {
  const { hosts } = await startHosts(t, (candidates) => candidates.find((c) => c.info.id.startsWith('b-')) ?? candidates[0]!);
  // What the hosts send to ITarget/path-*, read back from the frames as they go to the socket.
  const sent = new Map<string, Record<string, string>[]>();
  const send = WebSocket.prototype.send;
  t.teardown(() => {
    WebSocket.prototype.send = send;
  });
  WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
    if (Buffer.isBuffer(data)) {
      try {
        readFrame(data, (env) => {
          if (env.kind === 'REQUEST' && env.iface === 'ITarget' && env.key.startsWith('path-')) sent.set(env.key, [...(sent.get(env.key) ?? []), { ...env.headers }]);
        });
      } catch {
        // not a frame of envelopes (the handshake)
      }
    }
    return (send as (...a: unknown[]) => void).call(this, data, ...rest);
  } as typeof send;

  // Twice each: the first call is placed, the second takes the short path.
  for (let i = 0; i < 2; i++) {
    t.is(await hosts.a.proxy(ICaller, 'x').ask('path-reentrant'), 'b');
    t.is(await hosts.a.proxy(IStrictCaller, 'y').ask('path-strict'), 'b');
  }
  t.deepEqual(sent.get('path-reentrant'), [{}, {}], 'a chain of reentrant actors carries no path');
  t.deepEqual(sent.get('path-strict'), [{ 'koala-path': 'IStrictCaller/y' }, { 'koala-path': 'IStrictCaller/y' }]);
});

test('a call an actor makes after its chain’s deadline fails at once, before it is sent', async (t) => {
  const { hosts } = await startHosts(t, (candidates) => candidates.find((c) => c.info.id.startsWith('b-')) ?? candidates[0]!);
  t.is(await hosts.a.proxy(ICaller, 'late').ask('late-target'), 'b'); // placed and cached: the short path
  // The chain has 300 ms; the actor calls after 500.
  const err = await t.throwsAsync<KoalaError>(hosts.a.proxy(ICaller, 'late', { timeoutMs: 300 }).askLate('late-target', 500));
  t.is(err?.code, 'TIMEOUT');
  await until('the late call to end', () => lateCalls.length > 0);
  // Refused before sending (a sent call would time out in the sweep: "did not answer before its deadline").
  t.regex(lateCalls[0]!, /^TimeoutError: no time left in the call chain to call ITarget\/late-target\.where/);
});

test('a router keeps at most its bound of positions, dropping the oldest; a dropped actor is located again on its next call', async (t) => {
  const { service } = await startHosts(t, (candidates) => candidates[0]!);
  const pool = new PeerPool({ identity: { cluster: 'routing', secret: SECRET, node: 'bounded', role: 'gateway' }, log: () => {} });
  t.teardown(() => pool.close());
  let located = 0;
  class CountingPlacement extends InProcessPlacement {
    override async locate(iface: string, key: string) {
      located++;
      return super.locate(iface, key);
    }
  }
  const router = new ActorRouter({ placement: new CountingPlacement(service), pool, maxCachedPositions: 100 });
  const where = methodOf(ITarget, 'where');
  const call = (key: string) => router.call(ITarget, where, [], { key, chain: newChainId(), deadline: Date.now() + 5000, headers: NO_HEADERS });

  for (let i = 0; i < 100; i++) await call(`k${i}`);
  t.is(router.cachedPositions, 100);
  // The 101st goes over the bound: the oldest hundredth (k0) goes.
  await call('k100');
  t.is(router.cachedPositions, 100);
  located = 0;
  await call('k50'); // still cached: placement is not asked
  t.is(located, 0);
  t.is(await call('k0'), 'a'); // dropped: asked again, and answered by the host that has it
  t.is(located, 1);
  for (let i = 101; i < 350; i++) await call(`k${i}`);
  t.true(router.cachedPositions <= 100, `${router.cachedPositions} positions cached`);
});
