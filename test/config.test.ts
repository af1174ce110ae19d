import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  defineConfig,
  loadManifest,
  ManifestError,
  parseDuration,
  validateManifest,
  type Manifest,
} from '../src/runtime/config/manifest.ts';

let tmpRoot = '';
let counter = 0;

test.before(async () => {
  tmpRoot = await mkdtemp(path.join(os.tmpdir(), 'koala-config-'));
});

test.after.always(async () => {
  if (tmpRoot) await rm(tmpRoot, { recursive: true, force: true });
});

/** Creates a fresh project directory (with a package.json, so searches stop there) holding `files`. */
async function project(files: Record<string, string>, packageJson: object = { name: 'app', type: 'module' }): Promise<string> {
  const dir = path.join(tmpRoot, `p${++counter}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'package.json'), JSON.stringify(packageJson));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  return dir;
}

/** Runs `load` and returns the ManifestError it must throw. */
async function manifestError(load: Promise<unknown>): Promise<ManifestError> {
  const error = await load.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ManifestError)) throw new Error(`expected a ManifestError, got ${String(error)}`);
  return error;
}

const DEFAULTS: Manifest = {
  cluster: 'koala',
  logLevel: 'info',
  roles: ['gateway', 'hosts'],
  placement: { provider: 'embedded', strategy: 'load-aware', leaseTtlMs: 10_000, consul: { lockDelayMs: 5000 } },
  gateway: { host: '127.0.0.1', port: 0, requestTimeoutMs: 30_000, plugins: [], bridge: { enabled: true }, session: { timestampWindowMs: 300_000, resumeTtlMs: 3_600_000 }, limits: { maxFrameBytes: 1_048_576, ratePerSecond: 10_000, maxInFlight: 1024, idleTimeoutMs: 300_000, maxSessions: 10_000 } },
  hosts: [{ name: 'host', replicas: 1, plugins: ['plugins/*'], idleTimeoutMs: 900_000 }],
  storage: { provider: 'sqlite', file: '.koala/state.sqlite', interfaces: {} },
};

test('an empty manifest gets every default', async (t) => {
  const dir = await project({ 'koala.config.yaml': '# nothing here\n' });
  const loaded = await loadManifest({ cwd: dir, env: {} });
  t.deepEqual(loaded.manifest, DEFAULTS);
  t.is(loaded.filepath, path.join(dir, 'koala.config.yaml'));
  t.is(loaded.root, dir);
});

test('defaults fill in around given values, durations become milliseconds', async (t) => {
  const manifest = validateManifest(
    {
      cluster: 'orders',
      placement: { strategy: 'hash', leaseTtl: 2500 },
      gateway: { port: 8080, requestTimeout: '1.5m' },
      hosts: [{ name: 'api', plugins: ['plugins/api'], idleTimeout: '2h' }, { name: 'jobs', replicas: 3, plugins: ['jobs/*.ts'] }],
    },
    'x.json',
  );
  t.deepEqual(manifest, {
    cluster: 'orders',
    logLevel: 'info',
    roles: ['gateway', 'hosts'],
    placement: { provider: 'embedded', strategy: 'hash', leaseTtlMs: 2500, consul: { lockDelayMs: 5000 } },
    gateway: { host: '127.0.0.1', port: 8080, requestTimeoutMs: 90_000, plugins: [], bridge: { enabled: true }, session: { timestampWindowMs: 300_000, resumeTtlMs: 3_600_000 }, limits: { maxFrameBytes: 1_048_576, ratePerSecond: 10_000, maxInFlight: 1024, idleTimeoutMs: 300_000, maxSessions: 10_000 } },
    hosts: [
      { name: 'api', replicas: 1, plugins: ['plugins/api'], idleTimeoutMs: 7_200_000 },
      { name: 'jobs', replicas: 3, plugins: ['jobs/*.ts'], idleTimeoutMs: 900_000 },
    ],
    storage: { provider: 'sqlite', file: '.koala/state.sqlite', interfaces: {} },
  });
});

test('validateManifest does not mutate its input', (t) => {
  const raw = { gateway: { port: 1 } };
  validateManifest(raw, 'x.json');
  t.deepEqual(raw, { gateway: { port: 1 } });
});

test('finds koala.config.yaml', async (t) => {
  const dir = await project({ 'koala.config.yaml': 'cluster: from-yaml\nhosts:\n  - name: api\n    replicas: 2\n    plugins: [plugins/api]\n' });
  const { manifest, filepath } = await loadManifest({ cwd: dir, env: {} });
  t.is(manifest.cluster, 'from-yaml');
  t.deepEqual(manifest.hosts, [{ name: 'api', replicas: 2, plugins: ['plugins/api'], idleTimeoutMs: 900_000 }]);
  t.is(filepath, path.join(dir, 'koala.config.yaml'));
});

test('finds koala.config.json', async (t) => {
  const dir = await project({ 'koala.config.json': JSON.stringify({ cluster: 'from-json', logLevel: 'debug' }) });
  const { manifest, filepath } = await loadManifest({ cwd: dir, env: {} });
  t.is(manifest.cluster, 'from-json');
  t.is(manifest.logLevel, 'debug');
  t.is(filepath, path.join(dir, 'koala.config.json'));
});

test('finds koala.config.ts (native type stripping) using defineConfig', async (t) => {
  const manifestModule = pathToFileURL(path.resolve('src/runtime/config/manifest.ts')).href;
  const dir = await project({
    'koala.config.ts': [
      `import { defineConfig, type ManifestInput } from ${JSON.stringify(manifestModule)};`,
      `const gateway: ManifestInput['gateway'] = { port: 4000 };`,
      `export default defineConfig({ cluster: 'from-ts', gateway, placement: { leaseTtl: '3s' } });`,
    ].join('\n'),
  });
  const { manifest, filepath } = await loadManifest({ cwd: dir, env: {} });
  t.is(manifest.cluster, 'from-ts');
  t.is(manifest.gateway.port, 4000);
  t.is(manifest.placement.leaseTtlMs, 3000);
  t.is(filepath, path.join(dir, 'koala.config.ts'));
});

test('a .ts manifest without a default export is an error, not silent defaults', async (t) => {
  const dir = await project({ 'koala.config.ts': `export const config = { cluster: 'x' };\n` });
  const error = await manifestError(loadManifest({ cwd: dir, env: {} }));
  t.is(error.message, 'koala.config.ts: (root): the module has no default export; use `export default defineConfig({ ... })`');
});

test('finds .koalarc (YAML without extension)', async (t) => {
  const dir = await project({ '.koalarc': 'cluster: from-rc\n' });
  const { manifest, filepath } = await loadManifest({ cwd: dir, env: {} });
  t.is(manifest.cluster, 'from-rc');
  t.is(filepath, path.join(dir, '.koalarc'));
});

test('finds the "koala" key of package.json', async (t) => {
  const dir = await project({}, { name: 'app', koala: { cluster: 'from-pkg' } });
  const { manifest, filepath, root } = await loadManifest({ cwd: dir, env: {} });
  t.is(manifest.cluster, 'from-pkg');
  t.is(filepath, path.join(dir, 'package.json'));
  t.is(root, dir);
});

test('searching from a subdirectory finds the manifest in the project root', async (t) => {
  const dir = await project({ 'koala.config.yaml': 'cluster: rooted\n', 'src/deep/er/.keep': '' });
  const { manifest, root } = await loadManifest({ cwd: path.join(dir, 'src/deep/er'), env: {} });
  t.is(manifest.cluster, 'rooted');
  t.is(root, dir);
});

test('the search stops at the project root (nearest package.json)', async (t) => {
  // outer/koala.config.yaml must not be found from outer/inner, which has its own package.json.
  const outer = await project({ 'koala.config.yaml': 'cluster: outer\n', 'inner/package.json': '{"name":"inner"}' });
  const inner = path.join(outer, 'inner');
  const error = await manifestError(loadManifest({ cwd: inner, env: {} }));
  t.deepEqual(error.problems.map((p) => p.file), [inner]);
});

test('no manifest found', async (t) => {
  const dir = await project({});
  const error = await manifestError(loadManifest({ cwd: dir, env: {} }));
  t.is(error.name, 'ManifestError');
  t.is(error.code, 'MANIFEST_INVALID');
  t.is(error.filepath, dir);
  t.deepEqual(error.problems, [
    {
      file: dir,
      path: '(root)',
      message:
        'no Koala manifest found (looked for koala.config.{ts,mjs,js,json,yaml}, .koalarc*, package.json#koala up to the project root); create one with `koala init`',
    },
  ]);
});

test('--config loads the given file relative to cwd, ignoring the search', async (t) => {
  const dir = await project({ 'koala.config.yaml': 'cluster: searched\n', 'deploy/prod.yaml': 'cluster: prod\n' });
  const { manifest, filepath, root } = await loadManifest({ cwd: dir, configPath: 'deploy/prod.yaml', env: {} });
  t.is(manifest.cluster, 'prod');
  t.is(filepath, path.join(dir, 'deploy/prod.yaml'));
  t.is(root, path.join(dir, 'deploy'));
});

test('--config naming a missing file', async (t) => {
  const dir = await project({});
  const error = await manifestError(loadManifest({ cwd: dir, configPath: 'nope.yaml', env: {} }));
  t.is(error.message, 'nope.yaml: (root): file not found');
  t.is(error.filepath, path.join(dir, 'nope.yaml'));
});

test('a YAML syntax error is one problem naming the file, on one line', async (t) => {
  const dir = await project({ 'koala.config.yaml': 'cluster: x\n  gateway: [\n' });
  const error = await manifestError(loadManifest({ cwd: dir, env: {} }));
  t.is(error.problems.length, 1);
  t.is(error.problems[0]?.file, 'koala.config.yaml');
  t.regex(error.message, /^koala\.config\.yaml: \(root\): bad indentation of a mapping entry \(2:10\)$/);
});

test('a JSON syntax error is one problem naming the file, on one line', async (t) => {
  const dir = await project({ 'koala.config.json': '{ "cluster": "x", }' });
  const error = await manifestError(loadManifest({ cwd: dir, env: {} }));
  t.is(error.problems.length, 1);
  t.regex(error.message, /^koala\.config\.json: \(root\): [^\n]*JSON[^\n]*$/);
});

test('a TypeScript syntax error is one problem naming the file, on one line', async (t) => {
  const dir = await project({ 'koala.config.ts': 'const port: number = 1;\nexport default { cluster: "x" }}\n' });
  const error = await manifestError(loadManifest({ cwd: dir, env: {} }));
  t.is(error.problems.length, 1);
  // Node's own wording (e.g. "Expression expected"), plus the line it only puts in the stack.
  t.regex(error.message, /^koala\.config\.ts: \(root\): \S[^\n]* \(line 2\)$/);
});

test('environment variables override the file', async (t) => {
  const dir = await project({ 'koala.config.yaml': 'cluster: file\ngateway:\n  port: 1000\n' });
  const { manifest } = await loadManifest({
    cwd: dir,
    env: {
      KOALA_CLUSTER: 'env-cluster',
      KOALA_SECRET: '0123456789abcdef',
      KOALA_LOG_LEVEL: 'warn',
      KOALA_GATEWAY_PORT: '9000',
      KOALA_GATEWAY_HOST: '0.0.0.0',
      KOALA_PLACEMENT: 'consul',
      KOALA_CONSUL_ADDRESS: '127.0.0.1:8500',
      KOALA_CONSUL_TOKEN: 'tok',
      KOALA_UNRELATED: 'ignored',
      KOALA_LOG_LEVEL_EMPTY: '',
    },
  });
  t.is(manifest.cluster, 'env-cluster');
  t.is(manifest.secret, '0123456789abcdef');
  t.is(manifest.logLevel, 'warn');
  t.like(manifest.gateway, { host: '0.0.0.0', port: 9000, requestTimeoutMs: 30_000 });
  t.deepEqual(manifest.placement, {
    provider: 'consul',
    strategy: 'load-aware',
    leaseTtlMs: 10_000,
    consul: { address: '127.0.0.1:8500', token: 'tok', lockDelayMs: 5000 },
  });
});

test('gateway.bridge: on and open by default; a token from the file or KOALA_BRIDGE_TOKEN, never echoed when too short', async (t) => {
  const dir = await project({ 'koala.config.yaml': 'gateway:\n  bridge:\n    enabled: false\n' });
  t.deepEqual((await loadManifest({ cwd: dir, env: {} })).manifest.gateway.bridge, { enabled: false });
  const open = await project({ 'koala.config.yaml': 'cluster: open\n' });
  t.deepEqual((await loadManifest({ cwd: open, env: { KOALA_BRIDGE_TOKEN: 'a-bridge-token-of-32-characters!' } })).manifest.gateway.bridge, { enabled: true, token: 'a-bridge-token-of-32-characters!' });
  const error = await manifestError(loadManifest({ cwd: open, env: { KOALA_BRIDGE_TOKEN: 'short-token' } }));
  t.is(error.message, 'koala.config.yaml: gateway.bridge.token (from KOALA_BRIDGE_TOKEN): must be a string of at least 16 characters');
});

test('placement.strategy: a built-in name or a module path; anything else is one line', async (t) => {
  const dir = await project({ 'koala.config.yaml': 'placement:\n  strategy: ./placement/by-zone.ts\n' });
  t.is((await loadManifest({ cwd: dir, env: {} })).manifest.placement.strategy, './placement/by-zone.ts');
  for (const [value, got] of [['fastest', '"fastest"'], ['42', '42'], ['./by-zone.py', '"./by-zone.py"']]) {
    const bad = await project({ 'koala.config.yaml': `placement:\n  strategy: ${value}\n` });
    const error = await manifestError(loadManifest({ cwd: bad, env: {} }));
    t.is(error.message, `koala.config.yaml: placement.strategy: must be one of "load-aware", "random", "hash", "prefer-local", or the path of a strategy module ending in .ts, .mts, .js or .mjs (got ${got})`);
  }
});

test('empty environment variables count as unset', async (t) => {
  const dir = await project({ 'koala.config.yaml': 'cluster: file\n' });
  const { manifest } = await loadManifest({ cwd: dir, env: { KOALA_CLUSTER: '', KOALA_GATEWAY_PORT: '' } });
  t.is(manifest.cluster, 'file');
  t.is(manifest.gateway.port, 0);
});

test('bad environment values are reported with the variable that set them', async (t) => {
  const dir = await project({ 'koala.config.yaml': 'cluster: file\n' });
  const error = await manifestError(
    loadManifest({ cwd: dir, env: { KOALA_GATEWAY_PORT: 'eighty', KOALA_LOG_LEVEL: 'loud', KOALA_SECRET: 'short-secret' } }),
  );
  t.deepEqual(error.message.split('\n'), [
    // The secret's value is never echoed.
    'koala.config.yaml: secret (from KOALA_SECRET): must be a string of at least 16 characters',
    'koala.config.yaml: logLevel (from KOALA_LOG_LEVEL): must be one of "debug", "info", "warn", "error" (got "loud")',
    'koala.config.yaml: gateway.port (from KOALA_GATEWAY_PORT): must be an integer from 0 to 65535 (got "eighty")',
  ]);
});

test('every error is its own problem with file, path and what is expected', async (t) => {
  const dir = await project({
    'koala.config.yaml': [
      'gatway:',
      '  port: 80',
      'placement:',
      '  provider: etcd',
      '  leaseTtl: 10 seconds',
      'hosts:',
      '  - name: api',
      '    replicas: two',
      '    plugins: [plugins/api]',
      '  - name: api',
      '    replicas: 65',
      '    plugins: [plugins/other]',
      '',
    ].join('\n'),
  });
  const error = await manifestError(loadManifest({ cwd: dir, env: {} }));
  t.is(error.filepath, path.join(dir, 'koala.config.yaml'));
  t.deepEqual(error.message.split('\n'), [
    'koala.config.yaml: gatway: unknown property; did you mean "gateway"? (allowed: cluster, secret, logLevel, roles, placement, gateway, hosts, storage)',
    'koala.config.yaml: placement.provider: must be one of "embedded", "consul" (got "etcd")',
    'koala.config.yaml: placement.leaseTtl: must be a duration like 500ms, 10s, 15m or a number of milliseconds (got "10 seconds")',
    'koala.config.yaml: hosts[0].replicas: must be an integer from 1 to 64 (got "two")',
    'koala.config.yaml: hosts[1].replicas: must be an integer from 1 to 64 (got 65)',
    'koala.config.yaml: hosts: host group names must be unique ("api" appears twice)',
  ]);
  t.deepEqual(error.problems[0], {
    file: 'koala.config.yaml',
    path: 'gatway',
    message: 'unknown property; did you mean "gateway"? (allowed: cluster, secret, logLevel, roles, placement, gateway, hosts, storage)',
  });
});

test('more schema problems: missing, pattern, nested unknown without a close match, wrong types', (t) => {
  const error = t.throws(
    () =>
      validateManifest(
        {
          cluster: '-bad',
          placement: { consul: { frobnicate: true } },
          hosts: [{ name: 'API', plugins: [] }, { replicas: 1 }],
        },
        'manifest.json',
      ),
    { instanceOf: ManifestError },
  );
  t.deepEqual(error.message.split('\n'), [
    `manifest.json: cluster: must be 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit (got "-bad")`,
    'manifest.json: placement.consul.frobnicate: unknown property (allowed: address, token, tls, start, lockDelay)',
    `manifest.json: hosts[0].name: must be 1 to 32 lowercase letters, digits or '-', starting with a letter (got "API")`,
    'manifest.json: hosts[0].plugins: must be a non-empty list (got [])',
    'manifest.json: hosts[1].name: is required',
    'manifest.json: hosts[1].plugins: is required',
  ]);
  t.is(error.filepath, 'manifest.json');
});

test('a manifest that is not an object', (t) => {
  const error = t.throws(() => validateManifest(['cluster'], 'koala.config.yaml'), { instanceOf: ManifestError });
  t.is(error.message, 'koala.config.yaml: (root): must be an object (got a list)');
});

test('parseDuration', (t) => {
  t.is(parseDuration(0), 0);
  t.is(parseDuration(1234), 1234);
  t.is(parseDuration('500ms'), 500);
  t.is(parseDuration('10s'), 10_000);
  t.is(parseDuration('1.5s'), 1500);
  t.is(parseDuration('2.5ms'), 3); // rounded to whole milliseconds
  t.is(parseDuration('15m'), 900_000);
  t.is(parseDuration('2h'), 7_200_000);
  for (const bad of [-1, 1.5, Number.NaN, Infinity, '', '10', '10 s', '-1s', '1d', 's', '.5s']) {
    t.throws(() => parseDuration(bad), { instanceOf: RangeError }, `accepted ${String(bad)}`);
  }
});

test('defineConfig returns its argument', (t) => {
  const config = { cluster: 'x', hosts: [{ name: 'api', plugins: ['p'] }] };
  t.is(defineConfig(config), config);
});
