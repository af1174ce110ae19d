// The gateway's HTTP bridge and gateway plugins, over real HTTP against a real cluster.
import test from 'ava';
import { join } from 'node:path';
import { FIXTURE_PLUGINS, PLAYER_PLUGIN, REPO } from './helpers/cluster.ts';
import { startCluster, type TestCluster } from './helpers/cluster-api.ts';

let cluster: TestCluster;
let http: string;

test.before(async () => {
  cluster = await startCluster(undefined, {
    plugins: [PLAYER_PLUGIN, join(FIXTURE_PLUGINS, 'calc.ts')],
    replicas: 1,
    gateway: `  plugins: [${JSON.stringify(join(REPO, 'examples/http-echo/routes.ts'))}]`,
  });
  http = cluster.state.gateway.replace(/^ws/, 'http');
});
test.after.always(() => cluster?.stop());

async function post(path: string, body: unknown): Promise<{ status: number; type: string; json: unknown }> {
  const res = await fetch(`${http}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', json: await res.json() };
}

test('POST /v1/actors/{interface}/{id}/{method}: arguments by name in, the result as JSON out', async (t) => {
  t.deepEqual(await post('/v1/actors/ICalc/1/add', { a: 2, b: 40 }), { status: 200, type: 'application/json; charset=utf-8', json: 42 });
  t.is((await post('/v1/actors/ICalc/1/norm1', { p: { x: -3, y: 4 } })).json, 7);
  t.is((await post('/v1/actors/ICalc/1/sum', { xs: [1.5, 2.5] })).json, 4);
  t.is((await post('/v1/actors/IPlayer/h1/echo', { msg: 'über' })).json, 'über');
  // The same activation as any other client's.
  t.deepEqual([(await post('/v1/actors/IPlayer/h1/count', {})).json, (await post('/v1/actors/IPlayer/h1/count', {})).json], [1, 2]);
});

test('errors come back as an HTTP status and a problem body with the error code', async (t) => {
  const cases: [string, unknown, number, string][] = [
    ['/v1/actors/INope/1/add', {}, 404, 'UNKNOWN_INTERFACE'],
    ['/v1/actors/ICalc/1/mul', {}, 404, 'UNKNOWN_METHOD'],
    ['/v1/actors/ICalc/1/add', { a: 'two', b: 1 }, 400, 'BAD_ARGUMENTS'],
    ['/v1/actors/ICalc/1/add', { a: 1, b: 2, c: 3 }, 400, 'BAD_ARGUMENTS'],
    ['/v1/actors/ICalc/1/add', [1, 2], 400, 'BAD_ARGUMENTS'],
    ['/v1/actors/ICalc/1/fail', { why: 'quota' }, 500, 'ACTOR_ERROR'],
  ];
  for (const [path, body, status, code] of cases) {
    const r = await post(path, body);
    t.is(r.status, status, `${path} ${JSON.stringify(body)}`);
    t.is(r.type, 'application/problem+json; charset=utf-8');
    t.like(r.json, { status, code });
  }
  t.like((await post('/v1/actors/ICalc/1/fail', { why: 'quota' })).json, { title: 'QuotaExceeded', detail: 'quota', actor: 'ICalc/1' });
  t.regex(((await post('/v1/actors/ICalc/1/add', { a: 1, b: 2, c: 3 })).json as { detail: string }).detail, /add has no parameter "c" \(parameters: a, b\)/);
  // The cluster is unaffected.
  t.is((await post('/v1/actors/ICalc/1/add', { a: 1, b: 1 })).json, 2);
});

test('a gateway plugin adds routes that call actors: GET /echo/{msg} is answered by IPlayer/1', async (t) => {
  const res = await fetch(`${http}/echo/hello%20world`);
  t.is(res.status, 200);
  t.is(await res.text(), 'hello world');
});

// ---- a bridge with a token, and a gateway without the bridge --------------------------------------

const TOKEN = 'bridge-token-for-the-test-0123456789';

test('gateway.bridge.token: a request without the token, or with another, is refused (401) and reaches no actor', async (t) => {
  const guarded = await startCluster(t, { plugins: [PLAYER_PLUGIN], replicas: 1, gateway: `  bridge:\n    token: ${TOKEN}` });
  const url = `${guarded.state.gateway.replace(/^ws/, 'http')}/v1/actors/IPlayer/guarded/count`;
  const send = (authorization?: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: '{}' });
  for (const [authorization, detail] of [
    [undefined, /takes only requests with the header `Authorization: Bearer <token>`/],
    [`Bearer ${TOKEN}x`, /the bearer token does not match/],
    [`Basic ${Buffer.from(`koala:${TOKEN}`).toString('base64')}`, /takes only requests with the header/],
  ] as const) {
    const res = await send(authorization);
    t.is(res.status, 401, String(authorization));
    t.is(res.headers.get('www-authenticate'), 'Bearer realm="koala"');
    t.is(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    const problem = (await res.json()) as { code: string; status: number; detail: string };
    t.like(problem, { code: 'AUTH_FAILED', status: 401 });
    t.regex(problem.detail, detail);
  }
  // Refused before the body is read: a body that is not JSON still gets 401, not fastify's 400.
  const unread = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
  t.is(unread.status, 401);
  t.is(((await unread.json()) as { code: string }).code, 'AUTH_FAILED');
  t.is((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: '{not json' })).status, 400, 'with the token, the body is read');
  const ok = await send(`bearer ${TOKEN}`);
  t.is(ok.status, 200);
  t.is(await ok.json(), 1, 'the refused requests did not call the actor');
  // Cluster connections do not use the token.
  t.is(await guarded.client.call('IPlayer', 'guarded', 'count', []), 2);
});

test('gateway.bridge.enabled: false serves no /v1/actors/ route; cluster connections still work', async (t) => {
  const closed = await startCluster(t, { plugins: [PLAYER_PLUGIN], replicas: 1, gateway: '  bridge:\n    enabled: false' });
  const res = await fetch(`${closed.state.gateway.replace(/^ws/, 'http')}/v1/actors/IPlayer/1/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"msg":"hi"}' });
  t.is(res.status, 404);
  t.is(await closed.client.call('IPlayer', 1, 'echo', ['hi']), 'hi');
});
