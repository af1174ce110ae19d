// TLS on the gateway: https for the HTTP bridge, wss for cluster clients and client sessions, with
// a self-signed certificate the test generates; plain connections are refused.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { KoalaSession, signFirstPacket } from '../src/client/index.ts';
import { FIXTURE_PLUGINS } from './helpers/cluster.ts';
import { startCluster } from './helpers/cluster-api.ts';
import { IRoom } from './fixtures/plugins/room.ts';

const SECRET = 'client-secret-for-tls-0123456789';

test('the gateway serves https and wss with the certificate from the manifest', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'koala-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  const ca = await readFile(cert);
  const cluster = await startCluster(t, {
    plugins: [join(FIXTURE_PLUGINS, 'room.ts')],
    replicas: 1,
    tls: { ca },
    gateway: [`  clientSecret: ${SECRET}`, '  tls:', `    cert: ${JSON.stringify(cert)}`, `    key: ${JSON.stringify(key)}`].join('\n'),
  });
  t.regex(cluster.state.gateway, /^wss:\/\/127\.0\.0\.1:\d+$/);

  // Cluster clients over wss (startCluster connected one with the CA).
  t.deepEqual(await cluster.client.getProxy(IRoom, 'tls').members(), []);

  // The HTTP bridge over https.
  const url = new URL('/v1/actors/IRoom/tls/members', cluster.state.gateway.replace(/^wss/, 'https'));
  const body = await new Promise<string>((resolve, reject) => {
    const req = request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve(`${res.statusCode} ${text}`));
    });
    req.on('error', reject);
    req.end('{}');
  });
  t.is(body, '200 []');

  // A client session over wss.
  const session = await KoalaSession.connect({ url: cluster.state.gateway, ws: { ca }, firstPacket: signFirstPacket(SECRET, { claims: { user: 'tia' }, iface: 'IRoom', key: 'tls' }) });
  t.teardown(() => session.close());
  t.deepEqual(await session.getProxy(IRoom, 'tls').members(), ['tia']);

  // Without the CA the certificate is refused; plain ws is not spoken at all.
  await t.throwsAsync(KoalaSession.connect({ url: cluster.state.gateway, reconnect: false, firstPacket: signFirstPacket(SECRET, { iface: 'IRoom', key: 'tls' }) }), { message: /self-signed certificate|unable to verify/ });
  const plain = new WebSocket(cluster.state.gateway.replace(/^wss/, 'ws'));
  const outcome = await new Promise<string>((resolve) => {
    plain.once('open', () => resolve('open'));
    plain.once('error', () => resolve('error'));
  });
  t.is(outcome, 'error');
});
