// End to end through the real CLI: `koala up --detach`, `call`, `status`, `logs`, `down`, on free ports in
// a temp project, with the cluster always stopped at the end.
import test from 'ava';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { isAlive, readRunState } from '../src/runtime/supervisor/run-state.ts';
import { BIN, FIXTURE_PLUGINS, koala, makeProject, manifest, pidsOf, portIsClosed, waitFor, upDetached } from './helpers/cluster.ts';

const CALC = join(FIXTURE_PLUGINS, 'calc.ts');

test.serial('up --detach, call, status, down: the CI smoke path', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: [join(FIXTURE_PLUGINS, '..', '..', '..', 'plugins', 'player'), CALC] }));

  const up = await koala(dir, ['up', '--detach']);
  t.is(up.exitCode, 0, up.stderr);
  const gateway = up.stdout.trim();
  t.regex(gateway, /^ws:\/\/127\.0\.0\.1:\d+$/);
  t.regex(up.stderr, /placement\s+ready/);
  t.regex(up.stderr, /host-2\s+ready/);

  const echo = await koala(dir, ['call', 'IPlayer/1', 'echo', 'hi']);
  t.deepEqual([echo.exitCode, echo.stdout, echo.stderr], [0, 'hi', '']);

  // One activation per identity, reached again by separate CLI processes.
  const counts: string[] = [];
  for (let i = 0; i < 3; i++) counts.push((await koala(dir, ['call', 'IPlayer/1', 'count'])).stdout.trim());
  t.deepEqual(counts, ['1', '2', '3']);
  t.is((await koala(dir, ['call', 'IPlayer/2', 'count'])).stdout.trim(), '1');

  // Arguments are parsed by their Avro types.
  t.is((await koala(dir, ['call', 'ICalc/x', 'add', '2', '40'])).stdout.trim(), '42');
  t.is((await koala(dir, ['call', 'ICalc/x', 'norm1', '{"x":-3,"y":4}'])).stdout.trim(), '7');
  t.is((await koala(dir, ['call', 'ICalc/x', 'sum', '[1.5,2.5]', '--json'])).stdout.trim(), '4');
  t.is((await koala(dir, ['call', 'IPlayer/1', 'echo', 'hi', '--json'])).stdout.trim(), '"hi"');

  // From a subdirectory, status finds the running cluster.
  const status = await koala(join(dir, 'sub', 'deeper'), ['status', '--json']);
  t.is(status.exitCode, 0, status.stderr);
  const report = JSON.parse(status.stdout) as {
    cluster: string;
    gateway: string;
    processes: { name: string; role: string; alive: boolean }[];
    hosts: { id: string; interfaces: string[] }[];
  };
  t.is(report.cluster, 'test');
  t.is(report.gateway, gateway);
  t.deepEqual(report.processes.map((p) => [p.name, p.role, p.alive]).sort(), [
    ['gateway', 'gateway', true],
    ['host-1', 'host', true],
    ['host-2', 'host', true],
    ['placement', 'placement', true],
  ]);
  t.is(report.hosts.length, 2);
  for (const h of report.hosts) t.deepEqual(h.interfaces.sort(), ['ICalc', 'IPlayer']);
  const text = await koala(dir, ['status']);
  t.regex(text.stdout, /host-1-\w+\s+host\s+host\s+\d+\s+passing\s+\d+\s+ICalc, IPlayer/);

  // `koala actors` lists the live positions, filtered by interface on request.
  const actors = JSON.parse((await koala(dir, ['actors', '--json'])).stdout) as { actors: { identity: string; host: string }[] };
  t.deepEqual(actors.actors.map((a) => a.identity), ['ICalc/x', 'IPlayer/1', 'IPlayer/2']);
  const hostIds = report.hosts.map((h) => h.id);
  for (const a of actors.actors) t.true(hostIds.includes(a.host), `${a.identity} on a live host`);
  const players = await koala(dir, ['actors', '--interface', 'IPlayer']);
  t.regex(players.stdout, /^IDENTITY\s+HOST\s+SINCE\nIPlayer\/1\s+host-\d-\w+\s+\d{4}-\d\d-\d\dT/);
  t.notRegex(players.stdout, /ICalc/);

  // A second `up` in the same project is refused and leaves the running one alone.
  const again = await koala(join(dir, 'sub'), ['up', '--detach']);
  t.is(again.exitCode, 1);
  t.regex(again.stderr, /already running in .* \(gateway ws:\/\/127\.0\.0\.1:\d+, supervisor pid \d+\)/);
  t.is((await koala(dir, ['call', 'IPlayer/1', 'count'])).stdout.trim(), '4');

  const state = readRunState(dir)!;
  const down = await koala(dir, ['down']);
  t.is(down.exitCode, 0, down.stderr);
  for (const pid of pidsOf(state)) t.false(isAlive(pid), `pid ${pid} still alive after down`);
  for (const p of state.processes) t.true(await portIsClosed(p.url), `${p.name} still holds ${p.url}`);
  t.is(readRunState(dir), undefined);
});

test.serial('bad calls get one clear line and a non-zero exit; the cluster is unaffected', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: [CALC], replicas: 1 }));
  await upDetached(t, dir);

  const cases: [string[], number, RegExp][] = [
    [['call', 'INope/1', 'add', '1', '2'], 2, /^error no host serves interface INope \(served: ICalc\)$/m],
    [['call', 'ICalc/1', 'mul', '1', '2'], 2, /^error ICalc has no method "mul" \(it has: add, norm1, sum, fail, where\)$/m],
    [['call', 'ICalc/1', 'add', '1'], 2, /^error ICalc\.add\(a: int, b: int\) takes 2 arguments, got 1$/m],
    [['call', 'ICalc/1', 'add', 'one', '2'], 2, /^error argument "a" must be int: not an integer \(got "one"\)$/m],
    [['call', 'ICalc/1', 'add', '1', '99999999999'], 2, /^error argument "b" must be int: out of range/m],
    [['call', 'ICalc/1', 'norm1', '{"x":1}'], 2, /^error argument "p" must be record: JSON does not match the schema/m],
    [['call', 'ICalc', 'add', '1', '2'], 2, /^error target "ICalc" is not an actor identity$/m],
    [['call', 'ICalc/1', 'fail', 'over quota'], 1, /^error over quota$/m],
  ];
  for (const [args, code, message] of cases) {
    const r = await koala(dir, args);
    t.is(r.exitCode, code, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
    t.notRegex(r.stderr, /\n\s+at /, `no stack trace for ${args.join(' ')}`);
    t.is(r.stdout, '');
  }
  // The cluster still serves, and the failing actor's activation survived its error.
  t.is((await koala(dir, ['call', 'ICalc/1', 'add', '1', '2'])).stdout.trim(), '3');
});

test.serial('a typed actor error reaches the caller with its name through ClusterClient', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: [CALC], replicas: 1 }));
  await upDetached(t, dir);
  const state = readRunState(dir)!;
  const { ClusterClient } = await import('../src/runtime/client/cluster-client.ts');
  const { ICalc } = await import('./fixtures/plugins/calc.ts');
  const client = await ClusterClient.connect({ url: state.gateway, cluster: state.cluster, secret: state.secret });
  t.teardown(() => client.close());
  const calc = client.getProxy(ICalc, 'typed');
  t.is(await calc.add(20, 22), 42);
  const err = await t.throwsAsync(calc.fail('no more'));
  t.like(err, { name: 'QuotaExceeded', code: 'ACTOR_ERROR', message: 'no more', actor: 'ICalc/typed' });
  t.regex((err as { remoteStack?: string }).remoteStack ?? '', /at Calc\.fail/);
  t.is(await calc.add(1, 1), 2);
});

test.serial('actors spread over both hosts; one identity always reaches the same activation', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: [CALC], replicas: 2 }));
  await upDetached(t, dir);
  const state = readRunState(dir)!;
  const hostPids = new Set(state.processes.filter((p) => p.role === 'host').map((p) => p.pid));
  const { ClusterClient } = await import('../src/runtime/client/cluster-client.ts');
  const { ICalc } = await import('./fixtures/plugins/calc.ts');
  const client = await ClusterClient.connect({ url: state.gateway, cluster: state.cluster, secret: state.secret });
  t.teardown(() => client.close());
  const seen = new Map<number, number>();
  for (let i = 0; i < 40; i++) {
    const pid = await client.getProxy(ICalc, i).where();
    t.true(hostPids.has(pid));
    seen.set(i, pid);
  }
  t.is(new Set(seen.values()).size, 2, 'load-aware placement used both hosts');
  for (const [i, pid] of seen) t.is(await client.getProxy(ICalc, i).where(), pid);
});

test.serial('logs: the detached cluster’s log, filtered by process, level and count, as JSON, and followed until the cluster stops', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: [CALC], replicas: 2 }));
  const none = await koala(dir, ['logs']);
  t.is(none.exitCode, 1);
  t.regex(none.stderr, /no cluster log found in \.koala\/koala\.log here or in any directory above/);
  await upDetached(t, dir);
  const all = await koala(join(dir, 'sub'), ['logs']);
  t.is(all.exitCode, 0, all.stderr);
  t.regex(all.stdout, /^\S+Z placement \| embedded placement listening on ws:/m);
  t.regex(all.stdout, /^\S+Z host-2    \| host host-2-\w+ serving ICalc on ws:/m);
  const hosts = (await koala(dir, ['logs', '--process', 'host'])).stdout.trim().split('\n');
  t.true(hosts.length >= 2 && hosts.every((l) => / host-[12] +\| /.test(l)), hosts.join('\n'));
  const last = JSON.parse((await koala(dir, ['logs', '-n', '2', '--json'])).stdout) as { entries: { time: string; process: string; level: string; message: string }[] };
  t.is(last.entries.length, 2);
  t.true(last.entries.every((e) => !Number.isNaN(Date.parse(e.time)) && e.process !== '' && e.level === 'info' && e.message !== ''));
  t.is((await koala(dir, ['logs', '--level', 'warn'])).stdout, '', 'a healthy start logs no warnings');
  const both = await koala(dir, ['logs', '-f', '--json']);
  t.is(both.exitCode, 2);
  t.regex(both.stderr, /--follow and --json do not go together/);
  // Following ends by itself once the cluster has stopped, with the lines of its stopping.
  const follow = execa(process.execPath, [BIN, 'logs', '--follow', '--lines', '0'], { cwd: dir, env: { NO_COLOR: '1' }, reject: false, timeout: 30_000 });
  // Ready once it has read what was there: it holds the log open from its first read on.
  const log = join(dir, '.koala', 'koala.log');
  // (An fd may close between listing and reading it: the process is still starting.)
  const target = (fd: string) => {
    try {
      return readlinkSync(`/proc/${follow.pid}/fd/${fd}`, { encoding: 'utf8' });
    } catch {
      return '';
    }
  };
  await waitFor('logs --follow to open the log', () => readdirSync(`/proc/${follow.pid}/fd`).some((fd) => target(fd) === log));
  await new Promise((r) => setTimeout(r, 100)); // its first read, done right after opening
  t.is((await koala(dir, ['down'])).exitCode, 0);
  const followed = await follow;
  t.is(followed.exitCode, 0, String(followed.stderr));
  t.regex(String(followed.stdout), /placement \| host host-1-\w+ left; released \d+ positions/);
  t.notRegex(String(followed.stdout), /serving ICalc/, '--lines 0: none of the old lines');
});

test.serial('no cluster running: call and status say so and exit 1; down has nothing to do', async (t) => {
  const dir = await makeProject(t, manifest());
  const call = await koala(dir, ['call', 'IPlayer/1', 'echo', 'hi']);
  t.is(call.exitCode, 1);
  t.regex(call.stderr, /^error no running Koala cluster found from .* upwards$/m);
  t.regex(call.stderr, /^hint/m);
  t.is((await koala(dir, ['status'])).exitCode, 1);
  const down = await koala(dir, ['down']);
  t.is(down.exitCode, 0);
  t.regex(down.stderr, /nothing to stop/);
});

test.serial('a plugin that does not load fails `up` with one line and leaves no process behind', async (t) => {
  const dir = await makeProject(t, manifest({ plugins: ['./plugins/missing.ts'] }));
  const up = await koala(dir, ['up', '--detach']);
  t.is(up.exitCode, 1);
  t.regex(up.stderr, /plugin \.\/plugins\/missing\.ts not found/);
  await waitFor('supervisor lock released', () => readRunState(dir) === undefined);
  const retry = await koala(dir, ['up', '--detach']);
  t.regex(retry.stderr, /not found/, 'a failed start leaves no stale lock');
});

test.serial('an invalid manifest: one line per problem, exit 2, nothing started', async (t) => {
  const dir = await makeProject(t, 'cluster: bad name\ngatway:\n  port: 80\nhosts:\n  - name: h\n    replicas: 0\n    plugins: []\n');
  for (const cmd of [['validate'], ['up', '--detach']]) {
    const r = await koala(dir, cmd);
    t.is(r.exitCode, 2, cmd.join(' '));
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('error '));
    t.true(lines.length >= 4, r.stderr);
    t.true(lines.every((l) => l.startsWith('error koala.config.yaml: ')), r.stderr);
    t.regex(r.stderr, /gatway: unknown property; did you mean "gateway"\?/);
    t.regex(r.stderr, /hosts\[0\]\.replicas: must be an integer from 1 to 64/);
  }
  t.is(readRunState(dir), undefined);
});
