// Gateway limits for client sessions: each exceeded gives that client a clean, typed error (or
// closes only its connection) while other clients carry on.
import test from 'ava';
import { join } from 'node:path';
import { KoalaSession, signFirstPacket } from '../src/client/index.ts';
import type { KoalaError } from '../src/runtime/errors/errors.ts';
import { FIXTURE_PLUGINS, waitFor } from './helpers/cluster.ts';
import { startCluster, type TestCluster } from './helpers/cluster-api.ts';
import { IRoom } from './fixtures/plugins/room.ts';

const SECRET = 'client-secret-for-limits-01234567';
let cluster: TestCluster;

test.before(async () => {
  cluster = await startCluster(undefined, {
    plugins: [join(FIXTURE_PLUGINS, 'room.ts')],
    replicas: 1,
    gateway: [
      `  clientSecret: ${SECRET}`,
      '  limits:',
      '    maxFrameBytes: 4096',
      '    ratePerSecond: 50',
      '    maxInFlight: 2',
      '    idleTimeout: 1500ms',
      '    maxSessions: 4',
    ].join('\n'),
  });
});
test.after.always(() => cluster?.stop());

async function session(user: string, t: import('ava').ExecutionContext): Promise<KoalaSession> {
  const s = await KoalaSession.connect({ url: cluster.state.gateway, reconnect: false, maxFrameBytes: 4096, firstPacket: () => signFirstPacket(SECRET, { claims: { user }, iface: 'IRoom', key: 'limits' }) });
  t.teardown(() => s.close());
  return s;
}

async function closedWith(s: KoalaSession): Promise<KoalaError> {
  return new Promise((resolve) => s.onState((state, err) => state === 'closed' && resolve(err as KoalaError)));
}

test.serial('a frame over maxFrameBytes closes only that connection (1009)', async (t) => {
  const big = await session('big', t);
  const other = await session('other', t);
  const closed = closedWith(big);
  big.send(new Uint8Array(10_000));
  t.like(await closed, { code: 'FRAME_TOO_LARGE' });
  await waitFor('the room to hear that big left', async () => (await other.getProxy(IRoom, 'limits').members()).join() === 'other');
  t.pass();
});

test.serial('more than ratePerSecond requests: the excess fails with RATE_LIMITED, the rest is served', async (t) => {
  const fast = await session('fast', t);
  const other = await session('calm', t);
  // One at a time (so that maxInFlight is not what stops them), far faster than 50 per second.
  const results: PromiseSettledResult<number>[] = [];
  for (let i = 0; i < 200; i++) results.push((await Promise.allSettled([fast.getProxy(IRoom, 'rate').slow(0)]))[0]!);
  const limited = results.filter((r) => r.status === 'rejected' && (r.reason as KoalaError).code === 'RATE_LIMITED').length;
  const served = results.filter((r) => r.status === 'fulfilled').length;
  const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as KoalaError).code));
  t.true(limited > 0, `${limited} rate limited: ${[...new Set(codes)].join(', ')}`);
  t.true(served >= 50, `${served} served: the first second's worth passes`);
  t.is(limited + served, 200);
  t.is(await other.getProxy(IRoom, 'rate').slow(1), 1);
});

test.serial('more than maxInFlight calls at once: the excess fails with TOO_BUSY', async (t) => {
  const busy = await session('busy', t);
  const results = await Promise.allSettled([0, 1, 2, 3].map(() => busy.getProxy(IRoom, 'inflight').slow(300)));
  t.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as KoalaError).code)).sort(),
    ['TOO_BUSY', 'TOO_BUSY', 'ok', 'ok'],
  );
  // Once answered, calls are accepted again.
  t.is(await busy.getProxy(IRoom, 'inflight').slow(1), 1);
});

test.serial('a client silent for idleTimeout is closed (4008); active ones stay', async (t) => {
  const idle = await session('idle', t);
  const active = await session('active', t);
  const closed = closedWith(idle);
  let alive = true;
  const keepBusy = (async () => {
    while (alive) {
      await active.getProxy(IRoom, 'idle').slow(0);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  t.like(await closed, { code: 'IDLE_TIMEOUT' });
  alive = false;
  await keepBusy;
  t.is(await active.getProxy(IRoom, 'idle').slow(2), 2);
});

test.serial('beyond maxSessions a new session is refused with SESSION_LIMIT', async (t) => {
  const open: KoalaSession[] = [];
  for (let i = 0; i < 4; i++) open.push(await session(`s${i}`, t));
  await waitFor('the gateway to hold four sessions', async () => (await open[0]!.getProxy(IRoom, 'limits').members()).length === 4);
  const err = await t.throwsAsync<KoalaError>(session('one-too-many', t));
  t.is(err?.code, 'SESSION_LIMIT');
  t.regex(err?.message ?? '', /maximum of 4 sessions/);
  open[3]!.close();
  await waitFor('a place to free up', async () => (await open[0]!.getProxy(IRoom, 'limits').members()).length === 3);
  const late = await session('late', t);
  t.truthy(late.id);
});
