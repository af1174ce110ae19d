// HTTPS to Consul (`placement.consul.tls`), against a real agent that serves its API over TLS with
// certificates the test makes (a CA, the agent's, a client's) and requires client certificates:
// a whole cluster works through it, and each way of getting TLS wrong is one clear error.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KoalaError } from '../src/runtime/errors/errors.ts';
import { ConsulApi } from '../src/runtime/placement/consul/consul-api.ts';
import { readConsulTls } from '../src/runtime/placement/consul/tls-files.ts';
import { freePort } from '../src/runtime/util/free-port.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { PLAYER_PLUGIN, koala, makeProject, manifest } from './helpers/cluster.ts';
import { startConsul, type ConsulAgent } from './helpers/consul.ts';
import { IPlayer } from '../plugins/player/index.ts';

interface Pki {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

/** A CA, a certificate for the agent (127.0.0.1, server.dc1.consul) and one for clients, all signed by the CA. */
async function makePki(): Promise<Pki & { agentCert: string; agentKey: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'koala-consul-tls-'));
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=koala-test-ca');
  for (const [name, ext] of [
    ['agent', 'subjectAltName=IP:127.0.0.1,DNS:server.dc1.consul\nextendedKeyUsage=serverAuth,clientAuth\n'],
    ['client', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    await writeFile(f(`${name}.ext`), ext);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}-key.pem`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '1', '-extfile', f(`${name}.ext`));
  }
  return { dir, ca: f('ca.pem'), cert: f('client.pem'), key: f('client-key.pem'), agentCert: f('agent.pem'), agentKey: f('agent-key.pem') };
}

let pki: Pki;
let agent: ConsulAgent;
let https: string;

test.before(async () => {
  const made = await makePki();
  pki = made;
  const port = await freePort();
  https = `127.0.0.1:${port}`;
  agent = await startConsul(undefined, {
    args: [
      `-hcl=ports { https = ${port} }`,
      `-hcl=cert_file = "${made.agentCert}"`,
      `-hcl=key_file = "${made.agentKey}"`,
      `-hcl=ca_file = "${made.ca}"`,
      '-hcl=verify_incoming_https = true',
    ],
  });
});
test.after.always(async () => {
  await agent?.stop();
  if (pki) await rm(pki.dir, { recursive: true, force: true });
});

test.serial('a cluster reaches Consul over HTTPS with the CA and a client certificate', async (t) => {
  const consul = ['placement:', '  provider: consul', '  consul:', `    address: ${https}`, '    tls:', `      ca: ${JSON.stringify(pki.ca)}`, `      cert: ${JSON.stringify(pki.cert)}`, `      key: ${JSON.stringify(pki.key)}`].join('\n');
  const cluster = await startCluster(t, { plugins: [PLAYER_PLUGIN], replicas: 2, extra: consul });
  t.is(await cluster.client.getProxy(IPlayer, 'tls').echo('over https'), 'over https');
  t.deepEqual(
    (await cluster.client.actors('IPlayer')).map((a) => a.key),
    ['tls'],
    'the position is a key in this agent’s KV store',
  );
  t.like(cluster.state, { consul: https, consulTls: { ca: pki.ca, cert: pki.cert, key: pki.key } });
});

async function leaderError(address: string, tls?: Parameters<typeof readConsulTls>[0]): Promise<string> {
  const api = new ConsulApi(address, tls ? { tls: readConsulTls(tls) } : {});
  try {
    await api.leader();
  } catch (err) {
    if (err instanceof KoalaError && err.code === 'UNREACHABLE') return err.message;
    throw err;
  } finally {
    api.close();
  }
  throw new Error('expected the request to fail');
}

test.serial('TLS set up wrong: one clear error for each way', async (t) => {
  // Without the CA, the agent's certificate is not trusted.
  t.regex(await leaderError(https, { cert: pki.cert, key: pki.key }), new RegExp(`^Consul at ${https} has a certificate this client does not trust \\(unable to verify the first certificate.*\\); set placement\\.consul\\.tls\\.ca to the CA that signed it`));
  // Without a client certificate, an agent that verifies incoming HTTPS refuses the connection.
  t.is(
    await leaderError(https, { ca: pki.ca }),
    `Consul at ${https} refused this client's certificate, or its lack of one; set placement.consul.tls.cert and key to a certificate signed by a CA the agent trusts`,
  );
  // TLS to the agent's plain HTTP port.
  t.regex(await leaderError(agent.url.replace('http://', ''), { ca: pki.ca }), /does not speak TLS there; point placement\.consul\.address at the agent's https port, or remove placement\.consul\.tls/);
  // A file that is not there.
  t.throws(() => readConsulTls({ ca: join(pki.dir, 'nope.pem') }), { message: `placement.consul.tls.ca: cannot read ${join(pki.dir, 'nope.pem')} (ENOENT); fix the path in the manifest` });
  // With all three, the agent answers.
  const api = new ConsulApi(https, { tls: readConsulTls(pki) });
  t.teardown(() => api.close());
  t.regex(await api.leader(), /^127\.0\.0\.1:\d+$/);
});

test.serial('`koala up`: a cert without its key, or TLS with the dev agent of consul.start, is refused with one line', async (t) => {
  const halfPair = await makeProject(t, manifest({ plugins: [PLAYER_PLUGIN], replicas: 1, extra: ['placement:', '  provider: consul', '  consul:', `    address: ${https}`, '    tls:', `      cert: ${JSON.stringify(pki.cert)}`].join('\n') }));
  const half = await koala(halfPair, ['up', '--detach']);
  t.is(half.exitCode, 2);
  t.regex(half.stderr, /placement\.consul\.tls: must have property key when property cert is present/);
  const dev = await makeProject(t, manifest({ plugins: [PLAYER_PLUGIN], replicas: 1, extra: ['placement:', '  provider: consul', '  consul:', '    start: true', '    tls:', `      ca: ${JSON.stringify(pki.ca)}`].join('\n') }));
  const both = await koala(dev, ['up', '--detach']);
  t.is(both.exitCode, 1);
  t.regex(both.stderr, /placement\.consul\.tls does not apply to the dev agent that placement\.consul\.start runs/);
});
