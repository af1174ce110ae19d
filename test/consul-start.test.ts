// `placement.consul.start`: Koala runs a Consul dev agent on ports it picks. A port can be taken
// between the pick and Consul's bind; an agent that exits during start-up is started again on
// other ports. Here the first start fails as such a race does (a wrapper around the real binary).
import test from 'ava';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consulBinary } from './helpers/consul.ts';
import { koala, makeProject, manifest, PLAYER_PLUGIN } from './helpers/cluster.ts';

test('an agent that exits during start-up is started again, and the cluster comes up', async (t) => {
  const real = consulBinary();
  const dir = await mkdtemp(join(tmpdir(), 'koala-consul-wrapper-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const starts = join(dir, 'starts');
  const wrapper = join(dir, 'consul');
  await writeFile(
    wrapper,
    [
      '#!/bin/sh',
      `echo start >> ${JSON.stringify(starts)}`,
      `if [ "$(wc -l < ${JSON.stringify(starts)})" -eq 1 ]; then echo 'bind: address already in use' >&2; exit 1; fi`,
      `exec ${JSON.stringify(real)} "$@"`,
      '',
    ].join('\n'),
  );
  await chmod(wrapper, 0o755);
  const project = await makeProject(t, manifest({ plugins: [PLAYER_PLUGIN], replicas: 1, extra: 'placement:\n  provider: consul\n  consul:\n    start: true' }));
  const env = { KOALA_CONSUL_BIN: wrapper };
  const up = await koala(project, ['up', '--detach'], env);
  t.is(up.exitCode, 0, up.stderr);
  t.is((await readFile(starts, 'utf8')).trim().split('\n').length, 2, 'started twice');
  const call = await koala(project, ['call', 'IPlayer/1', 'echo', 'hi'], env);
  t.is(call.exitCode, 0, call.stderr);
  t.regex(call.stdout, /hi/);
  t.is((await koala(project, ['down'], env)).exitCode, 0);
});
