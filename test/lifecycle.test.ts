// A graceful stop deactivates every activation (running onDeactivate) before the host exits.
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_PLUGINS } from './helpers/cluster.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { ILongLife } from './fixtures/plugins/semantics.ts';

test('stopping the cluster runs onDeactivate for every live activation', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'koala-journal-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'journal.txt');
  // Children inherit the environment: the plugin appends its deactivations to this file.
  process.env.KOALA_TEST_JOURNAL = file;
  const cluster = await startCluster(t, { plugins: [join(FIXTURE_PLUGINS, 'semantics.ts')], replicas: 2, extra: '    idleTimeout: 1h' });
  delete process.env.KOALA_TEST_JOURNAL;
  const ids = Array.from({ length: 12 }, (_, i) => `stay-${i}`);
  for (const id of ids) t.is(await cluster.client.getProxy(ILongLife, id).hello(), 1);
  t.false(existsSync(file), 'nothing deactivated before the stop');
  await cluster.stop();
  const lines = (await readFile(file, 'utf8')).trim().split('\n').sort();
  t.deepEqual(lines, ids.map((id) => `deactivate ILongLife/${id}`).sort());
});
