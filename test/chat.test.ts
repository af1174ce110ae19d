// The chat example in a real browser: headless Chromium (Debian's, driven by playwright-core)
// opens the page the gateway serves, twice; one user sends, the other sees it. The page uses
// `koala/client` for browsers, served by the gateway at /koala/….
import test from 'ava';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { REPO } from './helpers/cluster.ts';
import { startCluster } from './helpers/cluster-api.ts';

const CHAT = join(REPO, 'examples', 'chat');

test('two pages join a room; one sends, the other sees the message', async (t) => {
  const cluster = await startCluster(t, {
    plugins: [join(CHAT, 'plugins', 'room.ts')],
    replicas: 2,
    gateway: [`  static: ${JSON.stringify(join(CHAT, 'public'))}`, `  plugins: [${JSON.stringify(join(CHAT, 'gateway', 'tickets.ts'))}]`, '  clientSecret: chat-test-client-secret-0123'].join('\n'),
  });
  const http = cluster.state.gateway.replace(/^ws/, 'http');
  const browser = await chromium.launch({
    executablePath: process.env.KOALA_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const ann = await browser.newPage();
  const bob = await browser.newPage();
  await ann.goto(`${http}/index.html?user=ann&room=garden`);
  await ann.waitForSelector('text=ann in garden');
  await bob.goto(`${http}/index.html?user=bob&room=garden`);
  await bob.waitForSelector('text=bob in garden');
  await ann.waitForSelector('text=* bob joined garden');

  await ann.fill('#text', 'hello from ann');
  await ann.click('#send');
  await bob.waitForSelector('text=ann: hello from ann', { timeout: 10_000 });
  t.true((await bob.locator('#log li').allTextContents()).includes('ann: hello from ann'));
  t.true((await ann.locator('#log li').allTextContents()).includes('ann: hello from ann'));
  // The page also made a typed proxy call through its session (koala/client for browsers).
  await ann.waitForFunction(() => (globalThis as unknown as { document: { title: string } }).document.title === 'Koala chat — ann, bob');

  // The room actor knows its users; a closed page leaves the room.
  t.deepEqual(await (await fetch(`${http}/v1/actors/IChatRoom/garden/who`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json(), ['ann', 'bob']);
  await bob.close();
  await ann.waitForSelector('text=* bob left');
});
