// The actor model across real processes: turns, reentrancy, deadlocks, deadlines, errors,
// lifecycle, timers and stateless workers. One two-host cluster serves every test; each test uses
// identities of its own.
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { KoalaError } from '../src/runtime/errors/errors.ts';
import { FIXTURE_PLUGINS, waitFor } from './helpers/cluster.ts';
import { startCluster, type TestCluster } from './helpers/cluster-api.ts';
import { IChain, IJournal, ILife, IMailbox, ISlow, IStrict, ITicker, IWorker } from './fixtures/plugins/semantics.ts';

let cluster: TestCluster;

test.before(async () => {
  cluster = await startCluster(undefined, { plugins: [join(FIXTURE_PLUGINS, 'semantics.ts')], replicas: 2, timeoutMs: 10_000 });
});
test.after.always(async () => {
  await cluster?.stop();
});

const journal = () => cluster.client.getProxy(IJournal, 'main');

test('turns: one at a time, FIFO per caller, and an error fails only its call', async (t) => {
  const box = cluster.client.getProxy(IMailbox, 'fifo');
  // Sent back to back without waiting: they must run in order, never overlapping.
  const calls = ['a', 'b', 'c', 'd', 'e'].map((tag, i) => box.append(tag, 40 - i * 8));
  const err = await t.throwsAsync(box.boom('bad input'));
  t.like(err, { name: 'RangeError', message: 'bad input', code: 'ACTOR_ERROR', actor: 'IMailbox/fifo' });
  t.deepEqual(await Promise.all(calls), [1, 2, 3, 4, 5]);
  t.deepEqual(await box.order(), ['a', 'b', 'c', 'd', 'e']);
  t.is(await box.append('f', 0), 6, 'the activation survived the error');
});

test('interleave: a read-only method runs while an exclusive turn holds the mailbox', async (t) => {
  const box = cluster.client.getProxy(IMailbox, 'interleave');
  const holding = box.append('x', 300);
  await sleep(100);
  t.is(await box.peek(), 1, 'peek ran inside the running turn');
  await holding;
});

test('reentrancy: A → B → A runs along one chain, across hosts', async (t) => {
  const a = cluster.client.getProxy(IChain, 'a');
  t.deepEqual(await a.bounce('b', 4), ['IChain/a', 'IChain/b', 'IChain/a', 'IChain/b', 'IChain/a']);
});

test('reentrancy: another chain still waits for the turn in progress', async (t) => {
  const a = cluster.client.getProxy(IChain, 'solo');
  const started = Date.now();
  const [first, second] = await Promise.all([a.hold(300), a.hold(10)]);
  t.deepEqual([first, second], ['IChain/solo', 'IChain/solo']);
  t.true(Date.now() - started >= 300, 'the second chain waited for the first');
});

test('deadlock: a cycle through a non-reentrant interface fails at once with DeadlockError naming the cycle', async (t) => {
  const a = cluster.client.getProxy(IStrict, 'a', { timeoutMs: 20_000 });
  const started = Date.now();
  const err = await t.throwsAsync<KoalaError>(a.bounce('b', 2));
  t.is(err?.name, 'DeadlockError');
  t.is(err?.code, 'DEADLOCK');
  t.regex(err?.message ?? '', /deadlock: IStrict\/a → IStrict\/b → IStrict\/a; IStrict is not reentrant/);
  t.true(Date.now() - started < 5000, 'reported at once, not after the 20 s deadline');
  // Both actors are fine afterwards.
  t.deepEqual(await a.bounce('b', 1), ['IStrict/a', 'IStrict/b']);
});

test('deadlock: a chain that reaches a non-reentrant actor through reentrant ones names the cycle from that actor on', async (t) => {
  // Placed on either host: some of these hops cross processes, which carry the path only from
  // IStrict/m on (calls of a chain through reentrant actors alone carry none).
  const route = ['IChain/m2', 'IStrict/m', 'IChain/m3', 'IChain/m4', 'IStrict/m'];
  const err = await t.throwsAsync<KoalaError>(cluster.client.getProxy(IChain, 'm1').visit(route));
  t.like(err, { name: 'DeadlockError', code: 'DEADLOCK', actor: 'IStrict/m' });
  t.regex(err?.message ?? '', /^deadlock: IStrict\/m → IChain\/m3 → IChain\/m4 → IStrict\/m; IStrict is not reentrant/);
  // Without the cycle, the same actors answer.
  t.deepEqual(await cluster.client.getProxy(IChain, 'm1').visit(route.slice(0, 4)), ['IChain/m1', ...route.slice(0, 4)]);
});

test('deadlines: expiry gives TimeoutError at the caller; a per-method timeout applies', async (t) => {
  const slow = cluster.client.getProxy(ISlow, 'd1', { timeoutMs: 300 });
  const err = await t.throwsAsync<KoalaError>(slow.sleep(2000));
  t.is(err?.name, 'TimeoutError');
  t.is(err?.code, 'TIMEOUT');
  const limited = await t.throwsAsync<KoalaError>(cluster.client.getProxy(ISlow, 'd2').limited(1000));
  t.is(limited?.code, 'TIMEOUT', 'methodTimeoutsMs.limited = 200 ms');
  // d2 is still busy with the abandoned turn; another actor shows short calls pass under the limit.
  // It is activated first (without the limit), so that only the call itself must fit in 200 ms,
  // not the activation too, on a machine that may be busy.
  t.is(await cluster.client.getProxy(ISlow, 'd2b').sleep(0), 'slept 0');
  t.is(await cluster.client.getProxy(ISlow, 'd2b').limited(10), 'slept 10');
});

test('deadlines: the remaining budget travels down the chain', async (t) => {
  // The client allows 400 ms for d3.relay, whose call to d4 must inherit what is left of it, not
  // a fresh 10 s. If it did not, d3's turn would sit waiting for d4 for 8 s and hold d3's mailbox.
  const relay = cluster.client.getProxy(ISlow, 'd3', { timeoutMs: 400 });
  const err = await t.throwsAsync<KoalaError>(relay.relay('d4', 8000));
  t.is(err?.code, 'TIMEOUT');
  const freedAt = Date.now();
  t.is(await cluster.client.getProxy(ISlow, 'd3').sleep(1), 'slept 1');
  t.true(Date.now() - freedAt < 4000, `d3 was held ${Date.now() - freedAt} ms after its caller gave up`);
});

test('deadlines: an actor can give one call a shorter deadline', async (t) => {
  const slow = cluster.client.getProxy(ISlow, 'd5', { timeoutMs: 10_000 });
  const started = Date.now();
  const err = await t.throwsAsync<KoalaError>(slow.relayWithin('d6', 3000, 200));
  t.is(err?.code, 'TIMEOUT');
  t.true(Date.now() - started < 2500, 'the 200 ms proxy deadline applied, not the caller\'s 10 s');
});

test('lifecycle: a failing onActivate gives ActivationError, and the next call activates again', async (t) => {
  const flaky = cluster.client.getProxy(ILife, 'flaky-1');
  const err = await t.throwsAsync<KoalaError>(flaky.hello());
  t.like(err, { name: 'ActivationError', code: 'ACTIVATION_FAILED', actor: 'ILife/flaky-1' });
  t.regex(err?.message ?? '', /not today \(attempt 1\)/);
  t.is(await flaky.hello(), 1);
});

test('lifecycle: idle deactivation runs onDeactivate; the next call gets a fresh activation', async (t) => {
  const life = cluster.client.getProxy(ILife, 'idle-1');
  t.is(await life.hello(), 1);
  t.is(await life.hello(), 2);
  await waitFor('idle deactivation', async () => (await journal().entries('deactivate ILife/idle-1')).length === 1, 5000);
  t.is(await life.hello(), 1, 'state of the old activation is gone');
  t.deepEqual(await journal().entries('activate ILife/idle-1'), ['activate ILife/idle-1', 'activate ILife/idle-1']);
});

test('lifecycle: deactivateOnIdle() deactivates after the current turn', async (t) => {
  const life = cluster.client.getProxy(ILife, 'quitter');
  t.is(await life.hello(), 1);
  await life.quit();
  await waitFor('deactivation on request', async () => (await journal().entries('deactivate ILife/quitter')).length === 1, 2000);
  t.is(await life.hello(), 1);
});

test('timers: ticks are turns, drift-compensated over 50 ticks, and do not keep the actor alive', async (t) => {
  const ticker = cluster.client.getProxy(ITicker, 'tock');
  const period = 40;
  // Each tick burns 15 ms: without compensation the 50th tick would be 50 × 15 ms = 750 ms late.
  await ticker.start(period, 50, 15);
  // 2 s on an idle machine; a starved host skips ticks (by design), so allow for a busy one.
  await waitFor('50 ticks', async () => (await ticker.lateness()).length >= 50, 30_000);
  const lateness = await ticker.lateness();
  t.is(lateness.length, 50);
  // Drift is what accumulates: the late ticks and the typical tick stay within one period. (A single
  // tick may be late on a busy machine; that is jitter, and the next tick is on time again.)
  const median = (xs: number[]) => xs.map(Math.abs).sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  t.true(median(lateness.slice(40)) < period, `ticks 41–50 off by ${median(lateness.slice(40)).toFixed(1)} ms (median)`);
  t.true(median(lateness) < period / 2, `median schedule error ${median(lateness).toFixed(1)} ms`);
  // Calls stopped; the idle timeout (300 ms) applies even though a timer had been running.
  await waitFor('idle deactivation', async () => (await journal().entries('deactivate ITicker/tock')).length === 1, 5000);
});

test('timers stop on deactivation', async (t) => {
  const ticker = cluster.client.getProxy(ITicker, 'forever');
  await ticker.start(50, 1_000_000, 0);
  await waitFor('deactivation', async () => (await journal().entries('deactivate ITicker/forever')).length === 1, 5000);
  const [entry] = await journal().entries('deactivate ITicker/forever');
  const ticks = Number(/after (\d+) ticks/.exec(entry!)![1]);
  t.true(ticks >= 1);
  await sleep(300);
  // A fresh activation has no ticks: the old timer did not survive into it or revive the actor.
  t.deepEqual(await ticker.lateness(), []);
});

test('stateless workers: several local activations serve one id concurrently', async (t) => {
  const worker = cluster.client.getProxy(IWorker, 'pool');
  const results = await Promise.all(Array.from({ length: 6 }, () => worker.work(200)));
  const instances = new Set(results);
  t.true(instances.size >= 2, `used ${instances.size} activations`);
  t.true(instances.size <= 3 * 2, 'at most maxLocal per host');
});

test('identity: numeric and string ids are one actor', async (t) => {
  t.is(await cluster.client.getProxy(ILife, 7).hello(), 1);
  t.is(await cluster.client.getProxy(ILife, '7').hello(), 2);
});

test('typed errors carry name, code, message, actor and remote stack', async (t) => {
  const err = await t.throwsAsync<KoalaError>(cluster.client.getProxy(IMailbox, 'err').boom('nope'));
  t.true(err instanceof KoalaError);
  t.like(err, { name: 'RangeError', code: 'ACTOR_ERROR', message: 'nope', actor: 'IMailbox/err' });
  t.regex(err?.remoteStack ?? '', /RangeError: nope\n\s+at Mailbox\.boom/);
});

test('one-way messages are fire-and-forget and still delivered', async (t) => {
  const j = cluster.client.getProxy(IJournal, 'oneway');
  t.is(await j.post('first'), undefined);
  await j.post('second');
  await waitFor('one-way delivery', async () => (await j.entries('')).length === 2, 5000);
  t.deepEqual(await j.entries(''), ['first', 'second']);
});
