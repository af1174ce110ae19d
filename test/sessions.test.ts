// Client sessions through the gateway: signed first packets, binding (named or by a login actor),
// messages to the actor and pushes back, RPC, close notices and resuming after a lost connection.
import test from 'ava';
import { join } from 'node:path';
import WebSocket from 'ws';
import { KoalaSession, signFirstPacket } from '../src/client/index.ts';
import { BrowserSession, KoalaClientError } from '../src/client/browser/session.ts';
import { firstPacketType, sessionReplyType, SESSION_VERSION } from '../src/runtime/gateway/session-protocol.ts';
import { FIXTURE_PLUGINS, waitFor } from './helpers/cluster.ts';
import { startCluster, type TestCluster } from './helpers/cluster-api.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { ILobby, IRoom } from './fixtures/plugins/room.ts';
import { defineInterface } from '../src/runtime/interface/interface.ts';

const SECRET = 'client-secret-for-tests-0123456789';
let cluster: TestCluster;

test.before(async () => {
  cluster = await startCluster(undefined, {
    plugins: [join(FIXTURE_PLUGINS, 'room.ts')],
    replicas: 2,
    gateway: [`  clientSecret: ${SECRET}`, '  login:', '    interface: ILobby', '  session:', '    timestampWindow: 30s'].join('\n'),
  });
});
test.after.always(() => cluster?.stop());

function connect(claims: Record<string, string>, bind: { iface?: string; key?: string } = { iface: 'IRoom' }) {
  return KoalaSession.connect({ url: cluster.state.gateway, firstPacket: () => signFirstPacket(SECRET, { claims, ...bind }) });
}

function collect(session: KoalaSession): string[] {
  const seen: string[] = [];
  // The room's pushes are Avro strings (its session.outbound type).
  session.onPush((data) => seen.push(data.subarray(1).toString()));
  return seen;
}

/** An Avro string, as the room's session.inbound type expects. */
function avroString(text: string): Uint8Array {
  return firstPacketType.toBuffer({ version: 0, claims: [], iface: text, key: '', timestamp: 0, nonce: '', resume: '', signature: Buffer.alloc(0) }).subarray(2, 2 + 1 + Buffer.byteLength(text));
}

test.serial('two sessions bound to one room: a message reaches the actor, whose push reaches both', async (t) => {
  const ann = await connect({ user: 'ann' }, { iface: 'IRoom', key: 'r1' });
  const bob = await connect({ user: 'bob' }, { iface: 'IRoom', key: 'r1' });
  t.teardown(() => (ann.close(), bob.close()));
  t.is(ann.actor, 'IRoom/r1');
  t.not(ann.id, bob.id);
  const annSeen = collect(ann);
  const bobSeen = collect(bob);
  ann.send(avroString('hello'));
  await waitFor('both to see the message', () => annSeen.includes('ann: hello') && bobSeen.includes('ann: hello'));
  t.deepEqual(await ann.getProxy(IRoom, 'r1').members(), ['ann', 'bob']);
  // A push started by any caller reaches the room's sessions.
  t.is(await cluster.client.getProxy(IRoom, 'r1').announce('tea'), 2);
  await waitFor('the announcement', () => bobSeen.includes('announcement: tea'));
  // Closing a session tells its actor.
  bob.close();
  await waitFor('ann to hear that bob left', () => annSeen.includes('bob left'));
  t.deepEqual(await ann.getProxy(IRoom, 'r1').members(), ['ann']);
});

test.serial('typed(): messages and pushes as values of the interface’s session types', async (t) => {
  const ann = await connect({ user: 'ann' }, { iface: 'IRoom', key: 'typed' });
  t.teardown(() => ann.close());
  const room = ann.typed(IRoom);
  const seen: string[] = [];
  // Inferred from IRoom's options: pushes are strings (tsc rejects this file if they were not).
  room.onPush((line) => seen.push(line));
  room.send('hi');
  await waitFor('the room to echo the message', () => seen.includes('ann: hi'));
  // @ts-expect-error the room's messages are strings
  t.throws(() => room.send(42), { message: /invalid "string": 42/ });
  t.throws(() => ann.typed(ILobby), { instanceOf: TypeError, message: 'this session is bound to IRoom/typed, not to an actor of ILobby' });
  // A client whose copy of the interface declares another outbound type: the push is reported, not delivered.
  const otherCopy = defineInterface(IRoom.protocol, { session: { inbound: 'string', outbound: 'boolean' } });
  const errors: Error[] = [];
  ann.onState((_state, err) => void (err && errors.push(err)));
  const wrong: boolean[] = [];
  ann.typed(otherCopy).onPush((flag) => wrong.push(flag));
  t.is(await cluster.client.getProxy(IRoom, 'typed').announce('tea'), 1);
  await waitFor('the announcement and the error', () => seen.includes('announcement: tea') && errors.length > 0);
  t.deepEqual(wrong, []);
  t.like(errors[0], { code: 'BAD_FRAME' });
  t.regex(errors[0]!.message, /^a push from IRoom\/typed is not a value of IRoom's session\.outbound type \(/);
});

test.serial('the browser client, on Node’s own WebSocket: typed() messages and pushes; errors about messages and undecodable pushes reach onState', async (t) => {
  const ticket = signFirstPacket(SECRET, { claims: { user: 'cy' }, iface: 'IRoom', key: 'browser' });
  const session = await BrowserSession.connect({ url: cluster.state.gateway, ticket, reconnect: false });
  t.teardown(() => session.close());
  const room = session.typed(IRoom.options.session);
  const seen: string[] = [];
  room.onPush((line) => seen.push(line)); // strings, inferred from IRoom's options
  room.send('hi');
  await waitFor('the room to echo the message', () => seen.includes('cy: hi'));
  const errors: KoalaClientError[] = [];
  session.onState((_state, err) => void (err && errors.push(err)));
  // Bytes that are not an Avro string: the host refuses the message, the client hears of it.
  session.send(new Uint8Array([0x05]));
  await waitFor('the refusal', () => errors.length > 0);
  t.like(errors[0], { code: 'ACTOR_ERROR' });
  // Another idea of the outbound type: the push is reported, not delivered.
  const numbers: number[] = [];
  session.typed({ outbound: 'int' }).onPush((n) => numbers.push(n));
  t.is(await cluster.client.getProxy(IRoom, 'browser').announce('tea'), 1);
  await waitFor('the announcement and the error', () => seen.includes('announcement: tea') && errors.length > 1);
  t.deepEqual(numbers, []);
  t.like(errors[1], { code: 'BAD_FRAME' });
  t.regex(errors[1]!.message, /^a push from IRoom\/browser does not decode as the session's outbound type \(\d+ bytes left over\)$/);
});

test.serial('without a named actor, the login actor decides the binding from the claims', async (t) => {
  const s = await connect({ user: 'cid', room: 'garden' }, {});
  t.teardown(() => s.close());
  t.is(s.actor, 'IRoom/garden');
  t.deepEqual(await s.getProxy(IRoom, 'garden').members(), ['cid']);
});

test.serial('a session may call any actor, as `koala call` does', async (t) => {
  const s = await connect({ user: 'dee' }, { iface: 'IRoom', key: 'r2' });
  t.teardown(() => s.close());
  t.deepEqual(await s.getProxy(IRoom, 'elsewhere').members(), []);
  t.is(await s.getProxy(IRoom, 'r2').slow(5), 5);
});

/** A raw first packet, and what the gateway answers to it. */
async function rawFirst(packet: Buffer | string): Promise<{ reply: { ok: boolean; code: string; message: string }; closeCode: number }> {
  const ws = new WebSocket(`${cluster.state.gateway}/v1/session`, { perMessageDeflate: false });
  await new Promise((r) => ws.once('open', r));
  ws.send(packet);
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  const reply = await new Promise<{ ok: boolean; code: string; message: string }>((r) => ws.once('message', (d: Buffer) => r(sessionReplyType.fromBuffer(d))));
  if (reply.ok) ws.close(1000); // a bound session stays open until the client leaves
  return { reply, closeCode: await closed };
}

test.serial('bad first packets get an error frame with a code, then the connection closes (4001)', async (t) => {
  const good = signFirstPacket(SECRET, { claims: { user: 'eve' }, iface: 'IRoom', key: 'x' });
  const cases: [string, Buffer | string, string, RegExp][] = [
    ['wrong secret', signFirstPacket('not-the-client-secret-0000', { claims: { user: 'eve' }, iface: 'IRoom', key: 'x' }), 'AUTH_FAILED', /signature does not match/],
    ['stale timestamp', signFirstPacket(SECRET, { claims: { user: 'eve' }, iface: 'IRoom', key: 'x', timestamp: Date.now() - 120_000 }), 'AUTH_FAILED', /timestamp is 120 s off/],
    ['garbage', Buffer.from([1, 2, 3]), 'BAD_FIRST_PACKET', /not an Avro FirstPacket/],
    ['text frame', 'hello', 'BAD_FIRST_PACKET', /must be a binary frame/],
    ['bad token', firstPacketType.toBuffer({ version: SESSION_VERSION, claims: [], iface: '', key: '', timestamp: Date.now(), nonce: 'n', resume: 'forged.token', signature: Buffer.alloc(0) }), 'AUTH_FAILED', /reconnect token is invalid/],
  ];
  for (const [what, packet, code, message] of cases) {
    const { reply, closeCode } = await rawFirst(packet);
    t.false(reply.ok, what);
    t.is(reply.code, code, what);
    t.regex(reply.message, message, what);
    t.is(closeCode, 4001, what);
  }
  // A signed packet works once; replayed, its nonce is refused.
  t.true((await rawFirst(good)).reply.ok);
  t.regex((await rawFirst(good)).reply.message, /nonce is empty or was used before/);
});

test.serial('a lost connection reconnects by itself and resumes the same binding', async (t) => {
  // The client reaches the gateway through a proxy the test can cut.
  const proxy = await startTcpProxy(t, new URL(cluster.state.gateway).host);
  const s = await KoalaSession.connect({ url: `ws://${proxy.address}`, firstPacket: () => signFirstPacket(SECRET, { claims: { user: 'fay' }, iface: 'IRoom', key: 'r3' }) });
  t.teardown(() => s.close());
  const seen = collect(s);
  const states: string[] = [];
  s.onState((state) => states.push(state));
  const first = s.id;
  proxy.cut();
  await waitFor('the loss to be noticed', () => states.includes('reconnecting'));
  proxy.heal();
  await waitFor('a reconnect', () => states.at(-1) === 'open', 10_000);
  t.not(s.id, first, 'a new session…');
  t.is(s.actor, 'IRoom/r3', '…bound to the same actor');
  s.send(avroString('back'));
  await waitFor('messages to flow again', () => seen.includes('fay: back'));
  t.deepEqual(await s.getProxy(IRoom, 'r3').members(), ['fay']);
});

test.serial('a client cannot push to another client’s session through the gateway', async (t) => {
  const { GatewayInterface } = await import('../src/runtime/gateway/protocol.ts');
  const victim = await connect({ user: 'vic' }, { iface: 'IRoom', key: 'sec' });
  const mallory = await connect({ user: 'mal' }, { iface: 'IRoom', key: 'sec' });
  t.teardown(() => (victim.close(), mallory.close()));
  const seen = collect(victim);
  // koala.Gateway.push is one-way: refused silently; the victim must never see the forged text.
  await mallory.getProxy(GatewayInterface, '').push([victim.id], Buffer.from(avroString('FORGED')));
  await new Promise((r) => setTimeout(r, 500));
  t.false(seen.includes('FORGED'), 'the forged push was not delivered');
  // The read-only services stay open to sessions.
  t.is(JSON.parse(await mallory.getProxy(GatewayInterface, '').describe('IRoom')).protocol, 'IRoom');
});
