// docs/actors.md and its examples: (1) every ```ts block of the guide is a verbatim excerpt of the
// example file its first line names, so the guide and examples/actor-model/ cannot drift apart;
// (2) one real two-host cluster runs every example, and each test checks what the guide says about
// it. Each test uses identities of its own.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KoalaError } from 'koala';
import { koala, REPO, waitFor } from './helpers/cluster.ts';
import { startCluster, type TestCluster } from './helpers/cluster-api.ts';
import { IAccount, InsufficientFunds, IStrictAccount } from '../examples/actor-model/bank.ts';
import { IShelf, IShopper } from '../examples/actor-model/branches.ts';
import { IInbox } from '../examples/actor-model/calls.ts';
import { IBackend } from '../examples/actor-model/deadlines.ts';
import { fileOf, ICounter } from '../examples/actor-model/lifecycle.ts';
import { IRate, PERIOD_MS } from '../examples/actor-model/timers.ts';
import { IHasher, IUploader } from '../examples/actor-model/workers.ts';

const EXAMPLES = join(REPO, 'examples', 'actor-model');
const EXAMPLE_FILES = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.ts'))
  .sort();

let cluster: TestCluster | undefined;
let dataDir = '';

test.before(async () => {
  // The counters of lifecycle.ts save themselves here; the hosts inherit the environment.
  dataDir = await mkdtemp(join(tmpdir(), 'koala-actors-doc-'));
  process.env.KOALA_EXAMPLE_DATA = dataDir;
  cluster = await startCluster(undefined, { plugins: EXAMPLE_FILES.map((f) => join(EXAMPLES, f)), replicas: 2 });
});

test.after('a graceful stop deactivates every actor, running onDeactivate', async (t) => {
  const counter = client().getProxy(ICounter, 'at-stop');
  for (let i = 0; i < 3; i++) await counter.visit();
  t.false(existsSync(fileOf('ICounter/at-stop')), 'still active before the stop');
  const stopping = cluster!;
  cluster = undefined;
  await stopping.stop();
  t.deepEqual(await saved('ICounter/at-stop'), { visits: 3, loads: 1 });
});

test.after.always(async () => {
  await cluster?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function client() {
  if (cluster === undefined) throw new Error('the cluster is not running');
  return cluster.client;
}

/** The KoalaError `call` rejects with (the test fails if it does not reject). */
async function failure(t: ExecutionContext, call: Promise<unknown>): Promise<KoalaError> {
  const err = await t.throwsAsync(call);
  if (!(err instanceof KoalaError)) throw new Error(`expected a KoalaError, got ${String(err)}`);
  return err;
}

/** What `fn` resolved or rejected with, and how long it took (ms). */
async function timed(fn: () => Promise<unknown>): Promise<[unknown, number]> {
  const started = Date.now();
  try {
    return [await fn(), Date.now() - started];
  } catch (err) {
    return [err, Date.now() - started];
  }
}

/** Whether the actor's file is there and complete (`writeFile` creates it before it fills it). */
async function savedWhole(identity: string): Promise<boolean> {
  if (!existsSync(fileOf(identity))) return false;
  try {
    await saved(identity);
    return true;
  } catch {
    return false;
  }
}

async function saved(identity: string): Promise<unknown> {
  return JSON.parse(await readFile(fileOf(identity), 'utf8'));
}

// ---- the guide and its examples --------------------------------------------------------------

test('every ts block in docs/actors.md is verbatim in the example file it names', async (t) => {
  const md = await readFile(join(REPO, 'docs', 'actors.md'), 'utf8');
  const blocks = [...md.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  t.true(blocks.length >= EXAMPLE_FILES.length, `${blocks.length} ts blocks`);
  const shown = new Set<string>();
  for (const block of blocks) {
    const [first, ...rest] = block.replace(/\n$/, '').split('\n');
    const named = /^\/\/ (examples\/actor-model\/[\w.-]+\.ts)$/.exec(first ?? '');
    if (named === null) {
      t.fail(`a ts block must start with a comment naming its file (// examples/actor-model/x.ts), not: ${first}`);
      continue;
    }
    const file = named[1]!;
    const excerpt = rest.join('\n');
    t.not(excerpt.trim(), '', `the block from ${file} shows no code`);
    const source = await readFile(join(REPO, file), 'utf8').catch(() => undefined);
    if (source === undefined) {
      t.fail(`${file} does not exist`);
      continue;
    }
    t.true(source.includes(`${excerpt}\n`), `the block from ${file} is not a verbatim excerpt of it:\n${excerpt}`);
    shown.add(file.slice('examples/actor-model/'.length));
  }
  t.deepEqual([...shown].sort(), EXAMPLE_FILES, 'the guide shows every example file');
});

test('types are inferred from the protocol', (t) => {
  // Checked by tsc (`npm test` type-checks the tests); never called.
  const check = () => {
    const account = client().getProxy(IAccount, 1);
    const balance: Promise<number> = account.transfer('2', 10);
    // @ts-expect-error amount is an Avro int: a number
    void account.deposit('10');
    // @ts-expect-error IAccount has no method withdraw
    void account.withdraw(1);
    return balance;
  };
  t.is(typeof check, 'function');
});

// ---- turns, reentrancy, deadlocks (bank.ts, branches.ts) -------------------------------------

test('turns: one at a time in arrival order; an error fails only its call', async (t) => {
  const a = client().getProxy(IAccount, 'turns-a');
  await a.balance();
  // Sent back to back without waiting for answers.
  const calls = [a.deposit(10), a.deposit(20), a.transfer('turns-b', 1000), a.deposit(30)];
  const [d1, d2, failed, d3] = await Promise.allSettled(calls);
  t.deepEqual([d1, d2, d3].map((r) => r?.status === 'fulfilled' && r.value), [10, 30, 60]);
  t.is(failed?.status, 'rejected');
  const err = (failed as PromiseRejectedResult).reason as KoalaError;
  t.true(err instanceof KoalaError);
  t.false((err as unknown) instanceof InsufficientFunds, 'a client gets a KoalaError, not the actor’s class');
  t.like(err, { name: 'InsufficientFunds', code: 'ACTOR_ERROR', actor: 'IAccount/turns-a', message: 'IAccount/turns-a has 30, cannot transfer 1000' });
  t.regex(err.remoteStack ?? '', /InsufficientFunds: IAccount\/turns-a has 30[^\n]*\n\s+at Account\.transfer/);
  t.is(await a.balance(), 60);
});

test('turns: no other caller gets in while a turn awaits', async (t) => {
  const a = client().getProxy(IAccount, 'await-a');
  await a.deposit(100);
  const results = await Promise.allSettled([a.transfer('await-b', 60), a.transfer('await-b', 60)]);
  t.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as KoalaError).name)),
    [40, 'InsufficientFunds'],
  );
  t.is(await a.balance(), 40);
  t.is(await client().getProxy(IAccount, 'await-b').balance(), 60);
});

test('reentrancy: the refund re-enters the sender along the chain (A → B → A)', async (t) => {
  const a = client().getProxy(IAccount, 'refund-a');
  const b = client().getProxy(IAccount, 'refund-b');
  await Promise.all([a.deposit(900), b.deposit(900)]);
  t.is(await a.transfer('refund-b', 300), 800, 'B kept 100 and sent 200 back into A, inside A’s transfer');
  t.is(await b.balance(), 1000);
});

test('an error from a called actor reaches the outer caller with its name, message and stack', async (t) => {
  const a = client().getProxy(IAccount, 'nested-a');
  const err = await failure(t, a.transfer('nested-b', -5));
  t.like(err, { name: 'RangeError', code: 'ACTOR_ERROR', message: 'amount must be positive, got -5' });
  t.regex(err.remoteStack ?? '', /at Account\.receive/);
});

test('deadlock: the same refund on a non-reentrant interface fails at once, naming the cycle', async (t) => {
  const a = client().getProxy(IStrictAccount, 'strict-a', { timeoutMs: 10_000 });
  const b = client().getProxy(IStrictAccount, 'strict-b');
  await Promise.all([a.deposit(900), b.deposit(900)]);
  const [err, ms] = await timed(() => a.transfer('strict-b', 300));
  t.like(err, { name: 'DeadlockError', code: 'DEADLOCK', actor: 'IStrictAccount/strict-a' });
  t.is(
    (err as Error).message,
    'deadlock: IStrictAccount/strict-a → IStrictAccount/strict-b → IStrictAccount/strict-a; IStrictAccount is not reentrant, so IStrictAccount/strict-a cannot take a call from the chain it is waiting on',
  );
  t.true(ms < 5000, `reported after ${ms} ms, not at the 10 s deadline`);
  t.deepEqual([await a.balance(), await b.balance()], [900, 900], 'nothing moved');
  t.is(await a.transfer('strict-b', 50), 850, 'a transfer without a refund is no cycle');
});

test('known limit: parallel branches of one chain both enter one actor', async (t) => {
  const shopper = client().getProxy(IShopper, 'branches');
  t.deepEqual(await shopper.takeTwo('shelf-parallel'), [true, true], 'both branches passed the check');
  t.is(await client().getProxy(IShelf, 'shelf-parallel').left(), -1);
  t.deepEqual(await shopper.takeTwoInTurn('shelf-sequential'), [true, false]);
  t.is(await client().getProxy(IShelf, 'shelf-sequential').left(), 0);
  // Two callers are two chains: their takes are turns, one after the other.
  const shelf = client().getProxy(IShelf, 'shelf-two-callers');
  t.deepEqual((await Promise.all([shelf.take(), shelf.take()])).sort(), [false, true]);
  t.is(await shelf.left(), 0);
});

// ---- deadlines (deadlines.ts) ----------------------------------------------------------------

test('deadlines: per method, per interface, and per proxy', async (t) => {
  const [preview, previewMs] = await timed(() => client().getProxy(IBackend, 'dl-method').preview('k', 1000));
  t.like(preview, { name: 'TimeoutError', code: 'TIMEOUT' });
  t.true(previewMs < 800, `methodTimeoutsMs.preview = 200 ms; failed after ${previewMs} ms`);
  t.is(await client().getProxy(IBackend, 'dl-proxy', { timeoutMs: 3000 }).preview('k', 400), 'value of k', 'the proxy’s timeoutMs wins');
  const [fetch, fetchMs] = await timed(() => client().getProxy(IBackend, 'dl-interface').fetch('k', 2600));
  t.like(fetch, { code: 'TIMEOUT' });
  t.true(fetchMs >= 1900 && fetchMs < 2550, `the interface's timeoutMs = 2 s; failed after ${fetchMs} ms`);
});

test('deadlines: the running turn is not interrupted; interleaved reads still answer', async (t) => {
  const backend = client().getProxy(IBackend, 'dl-late', { timeoutMs: 200 });
  const [err, ms] = await timed(() => backend.fetch('late', 600));
  t.like(err, { code: 'TIMEOUT' });
  t.true(ms < 500, `failed after ${ms} ms`);
  t.deepEqual(await backend.fetched(), [], 'still running (fetched is interleaved, so it does not wait)');
  await waitFor('the abandoned fetch to finish', async () => (await backend.fetched()).length === 1, 3000);
  t.deepEqual(await backend.fetched(), ['late']);
});

test('deadlines: a call whose deadline passes while it waits in the mailbox is not run', async (t) => {
  const id = 'dl-queued';
  const first = client().getProxy(IBackend, id).fetch('first', 600);
  await sleep(50);
  const err = await failure(t, client().getProxy(IBackend, id, { timeoutMs: 200 }).fetch('skipped', 0));
  t.is(err.code, 'TIMEOUT');
  t.is(await first, 'value of first');
  await sleep(100);
  t.deepEqual(await client().getProxy(IBackend, id).fetched(), ['first']);
});

test('deadlines: the remaining budget travels down the chain', async (t) => {
  const [err] = await timed(() => client().getProxy(IBackend, 'dl-via', { timeoutMs: 300 }).via('dl-slow', 'k', 3000));
  t.like(err, { code: 'TIMEOUT' });
  // dl-via's call to dl-slow got what was left of 300 ms, not IBackend's 2 s: its turn ended with a
  // TimeoutError right away, so dl-via takes calls again long before dl-slow's fetch ends.
  const [value, ms] = await timed(() => client().getProxy(IBackend, 'dl-via').fetch('next', 0));
  t.is(value, 'value of next');
  t.true(ms < 1200, `dl-via was busy for another ${ms} ms`);
});

test('deadlock between two chains: not detected, it ends in a TimeoutError', async (t) => {
  const a = client().getProxy(IBackend, 'cycle-a', { timeoutMs: 600 });
  const b = client().getProxy(IBackend, 'cycle-b');
  // cycle-b is busy; its via (chain Y) waits in its mailbox, and cycle-a's via (chain X) arrives
  // after it. Then Y holds cycle-b and calls cycle-a, X holds cycle-a and calls cycle-b.
  const busy = b.fetch('busy', 300);
  const bToA = b.via('cycle-a', 'from-b', 0);
  await sleep(100);
  const [err, ms] = await timed(() => a.via('cycle-b', 'from-a', 0));
  t.like(err, { name: 'TimeoutError', code: 'TIMEOUT' });
  t.true(ms >= 550, `failed after ${ms} ms, at cycle-a's deadline`);
  t.is(await busy, 'value of busy');
  t.is(await bToA, 'value of from-b', 'the TimeoutError freed cycle-a, so chain Y went on');
});

// ---- lifecycle (lifecycle.ts) -----------------------------------------------------------------

test('lifecycle: idle deactivation runs onDeactivate; the next call activates again', async (t) => {
  const counter = client().getProxy(ICounter, 'idle');
  t.is(await counter.visit(), 1);
  t.is(await counter.visit(), 2);
  const lastCall = Date.now();
  await waitFor('idle deactivation', () => savedWhole('ICounter/idle'), 5000);
  t.true(Date.now() - lastCall >= 900, 'not before idleTimeoutMs (1 s)');
  t.deepEqual(await saved('ICounter/idle'), { visits: 2, loads: 1 });
  t.is(await counter.visit(), 3);
  t.is(await counter.loads(), 2);
});

test('lifecycle: a failing onActivate gives ActivationError; the next call tries again', async (t) => {
  const file = fileOf('ICounter/broken');
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, '{"visits": 4');
  const counter = client().getProxy(ICounter, 'broken');
  const err = await failure(t, counter.visit());
  t.like(err, { name: 'ActivationError', code: 'ACTIVATION_FAILED', actor: 'ICounter/broken' });
  t.regex(err.message, /^ICounter\/broken failed to activate: .*JSON/);
  t.regex(err.remoteStack ?? '', /SyntaxError/);
  await writeFile(file, '{"visits": 41, "loads": 0}');
  t.is(await counter.visit(), 42);
  t.is(await counter.loads(), 1);
});

test('lifecycle: deactivateOnIdle() deactivates right after the turn', async (t) => {
  const counter = client().getProxy(ICounter, 'closing');
  t.is(await counter.visit(), 1);
  await counter.close();
  const closed = Date.now();
  await waitFor('deactivation on request', () => savedWhole('ICounter/closing'), 3000);
  t.true(Date.now() - closed < 600, 'well before the 1 s idle timeout');
  t.deepEqual(await saved('ICounter/closing'), { visits: 1, loads: 1 });
});

test('lifecycle: an actor is not idle while a call runs', async (t) => {
  const counter = client().getProxy(ICounter, 'busy');
  t.is(await counter.visit(), 1);
  const holding = counter.hold(1600);
  await sleep(1300);
  t.is(await counter.loads(), 1, 'still the first activation, 1.3 s into a call');
  t.false(existsSync(fileOf('ICounter/busy')));
  await holding;
});

// ---- timers (timers.ts) -----------------------------------------------------------------------

test('timers: ticks are turns, skipped while one waits, and keep their schedule', async (t) => {
  const rate = client().getProxy(IRate, 'schedule');
  // 25 periods of ticks, with a hit now and then (which also keeps the actor from going idle).
  for (let i = 0; i < 5; i++) {
    await rate.hit();
    await sleep(5 * PERIOD_MS);
  }
  // Start a long call half a period after a tick, so that a timer that took its schedule from
  // the end of the call would tick half a period off its grid afterwards.
  const lastTick = (await rate.samples()).at(-1)!.at;
  await sleep((((PERIOD_MS / 2 - (Date.now() - lastTick)) % PERIOD_MS) + PERIOD_MS) % PERIOD_MS);
  const holdStart = Date.now();
  await rate.hold(8 * PERIOD_MS);
  const holdEnd = Date.now();
  await sleep(10 * PERIOD_MS);
  const samples = (await rate.samples()).map((s) => ({ at: s.at, hits: s.hits }));
  t.is(
    samples.reduce((sum, s) => sum + s.hits, 0),
    5,
    'every hit counted once',
  );
  t.deepEqual(
    samples.filter((s) => s.at > holdStart + 20 && s.at < holdEnd - 20),
    [],
    'no tick ran during the long call',
  );
  const burst = samples.filter((s) => s.at >= holdEnd - 20 && s.at < holdEnd + PERIOD_MS);
  t.true(burst.length <= 2, `${burst.length} ticks right after the long call: missed ticks were skipped, not queued`);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  // No drift: before the long call, the n-th tick comes n periods after the first, however late
  // single ticks are; lateness does not add up.
  const origin = samples[0]!.at;
  const before = samples.filter((s) => s.at < holdStart);
  const lateness = before.map((s, n) => s.at - (origin + n * PERIOD_MS));
  t.true(lateness.length >= 20, `${lateness.length} ticks before the long call`);
  const drift = median(lateness.slice(-5)) - median(lateness.slice(0, 5));
  // Uncompensated, each re-armed setTimeout would add 1–2 ms: 30–50 ms over these ticks.
  t.true(Math.abs(drift) < 20, `drifted ${drift} ms over ${lateness.length} ticks`);
  // After the long call, the ticks are back on the grid they kept before it.
  const wrap = (ms: number) => ((((ms + PERIOD_MS / 2) % PERIOD_MS) + PERIOD_MS) % PERIOD_MS) - PERIOD_MS / 2;
  const grid = median(before.map((s) => wrap(s.at - origin)));
  const offGrid = samples.filter((s) => s.at > holdEnd + 20).map((s) => Math.abs(wrap(s.at - origin - grid)));
  t.true(offGrid.length >= 5, `${offGrid.length} ticks after the long call`);
  t.true(median(offGrid) < PERIOD_MS / 4, `after the long call, ticks are ${median(offGrid)} ms off the grid (median)`);
});

test('timers: dispose() stops the timer', async (t) => {
  const rate = client().getProxy(IRate, 'paused');
  await rate.hit();
  // Ticks, however slow the machine is (a fixed wait missed them under load).
  await waitFor('two ticks', async () => (await rate.samples()).length >= 2);
  await rate.pause();
  const count = (await rate.samples()).length;
  await sleep(4 * PERIOD_MS);
  t.is((await rate.samples()).length, count);
});

test('timers: a timer does not keep its actor alive, and stops when it deactivates', async (t) => {
  const rate = client().getProxy(IRate, 'idle');
  await rate.hit();
  await sleep(1800); // idleTimeoutMs = 1 s, plus the host's idle sweep
  t.true((await rate.samples()).length < 5, 'a fresh activation: the old one was deactivated despite its timer');
  t.deepEqual(
    cluster!.logs.filter((l) => l.includes('IRate/idle timer failed')),
    [],
    'the old timer did not tick into its dead activation',
  );
});

// ---- calls (calls.ts) -------------------------------------------------------------------------

test('calls: one-way messages return at once and are delivered', async (t) => {
  const inbox = client().getProxy(IInbox, 'one-way');
  t.is(await inbox.post('a'), undefined);
  await inbox.post('b');
  await waitFor('one-way delivery', async () => (await inbox.read()).length === 2, 3000);
  t.deepEqual(await inbox.read(), ['a', 'b']);
  t.is(await inbox.forward('one-way-copy'), 2);
  const copy = client().getProxy(IInbox, 'one-way-copy');
  await waitFor('forwarded one-way messages', async () => (await copy.read()).length === 2, 3000);
  t.deepEqual((await copy.read()).sort(), ['a', 'b']);
  t.like(await failure(t, inbox.forward('one-way')), { name: 'RangeError', code: 'ACTOR_ERROR' });
});

test('calls: between actors active on one host, values are passed by reference', async (t) => {
  // Two hosts: among three inboxes, two share a host; among sixteen, some do not.
  const pids = new Map<string, number>();
  for (let i = 0; i < 16; i++) pids.set(`ref-${i}`, await client().getProxy(IInbox, `ref-${i}`).pid());
  const ids = [...pids.keys()];
  const same = ids.slice(1).find((id) => pids.get(id) === pids.get(ids[0]!));
  const other = ids.find((id) => pids.get(id) !== pids.get(ids[0]!));
  if (same === undefined || other === undefined) return t.fail(`placement put all inboxes on one host: ${[...pids.values()]}`);
  const inbox = client().getProxy(IInbox, ids[0]!);
  t.true(await inbox.sameArray(same), 'same host: both reads returned the inbox’s own array');
  t.false(await inbox.sameArray(other), 'other host: each read decoded a copy');
});

// ---- stateless workers (workers.ts) -----------------------------------------------------------

test('workers: the idle activation serves one call after another', async (t) => {
  const hasher = client().getProxy(IHasher, 'sequential');
  const names = new Set<string>();
  for (let i = 0; i < 5; i++) names.add(await hasher.whoami(0));
  t.is(names.size, 1);
  t.is(await hasher.sha256('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('workers: calls at once are served by several activations at once', async (t) => {
  const hasher = client().getProxy(IHasher, 'concurrent');
  // A second activation is made only while the first is busy with a call: two names mean the two
  // calls ran at once (no wall-clock bound, which a loaded machine would break).
  const names = await Promise.all([hasher.whoami(300), hasher.whoami(300)]);
  t.is(new Set(names).size, 2);
});

test('workers: an actor’s calls run on its own host', async (t) => {
  for (let i = 0; i < 6; i++) {
    const [pid, worker] = await client().getProxy(IUploader, `up-${i}`).where();
    t.is(worker!.split(':')[0], pid);
  }
  t.is(await client().getProxy(IUploader, 'up-0').upload('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('stateless workers: calls that arrive together spread over up to maxLocal activations', async (t) => {
  const hasher = client().getProxy(IHasher, 'burst');
  await hasher.whoami(0); // one activation, and the gateway now sends this id to its host
  const names = await Promise.all(Array.from({ length: 4 }, () => hasher.whoami(200)));
  t.is(new Set(names.map((n) => n.split(':')[0])).size, 1, 'one host');
  t.is(new Set(names).size, 2, `maxLocal = 2 activations, got ${[...new Set(names)]}`);
});

// ---- identity (bank.ts) -----------------------------------------------------------------------

test('identity: `koala call IAccount/7` and getProxy(IAccount, 7) are the same actor', async (t) => {
  const deposit = await koala(cluster!.dir, ['call', 'IAccount/7', 'deposit', '5']);
  t.is(deposit.exitCode, 0, deposit.stderr);
  t.is(deposit.stdout.trim(), '5');
  t.is(await client().getProxy(IAccount, 7).balance(), 5);
  t.is(await client().getProxy(IAccount, '7').deposit(1), 6);
  t.is((await koala(cluster!.dir, ['call', 'IAccount/7', 'balance'])).stdout.trim(), '6');
  t.throws(() => client().getProxy(IAccount, 1.5), { instanceOf: TypeError });
});
