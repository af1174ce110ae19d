// Unit and component tests of the wire: envelope framing, the Peer (batching, deadlines, heartbeats,
// bad frames), the handshake, WireServer/connect/PeerPool, and RPC/services on top. Real sockets on
// 127.0.0.1, no mocks.
import test from 'ava';
import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { KoalaError, TimeoutError } from '../src/runtime/errors/errors.ts';
import { defineInterface, type ActorImplementation } from '../src/runtime/interface/interface.ts';
import { PeerPool, connect } from '../src/runtime/wire/connect.ts';
import { BATCH_BYTES, BATCH_ENVELOPES, FrameWriter, NO_HEADERS, RAW, readFrame, type DecodedEnvelope } from '../src/runtime/wire/frame.ts';
import { Peer } from '../src/runtime/wire/peer.ts';
import { acceptHandshake } from '../src/runtime/wire/handshake.ts';
import { decodeArgs, encodeArgs, encodeError, encodeResult, methodOf, readAnswer } from '../src/runtime/wire/rpc.ts';
import { PROTOCOL_VERSION, envelopeType, handshakeType, positionType, type Envelope, type Handshake } from '../src/runtime/wire/schemas.ts';
import { serviceProxy } from '../src/runtime/wire/service-client.ts';
import { ServiceTable } from '../src/runtime/wire/services.ts';
import {
  CLUSTER,
  SECRET,
  delay,
  dial,
  envelope,
  identity,
  listen,
  nextClose,
  outgoing,
  rawClient,
  rawPeerServer,
  rawServer,
  rejection,
  until,
  within,
} from './helpers/unit-wire.ts';

/** Avro zig-zag varint of a long, for hand-made hostile frames. */
function zigzag(n: bigint): number[] {
  let z = (n << 1n) ^ (n >> 63n);
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number((z & 0x7fn) | 0x80n));
    z >>= 7n;
  }
  out.push(Number(z));
  return out;
}

/**
 * A 14-byte envelope whose headers map claims 2^40 entries. avsc trusts block counts, so
 * decoding it used to spin for hours: one small frame could hang a whole process.
 */
const HOSTILE_FRAME = Buffer.from([0 /* REQUEST */, 2 /* id 1 */, 0, 0, 0, 0 /* iface key method chain */, 0, 0 /* deadline epoch */, ...zigzag(2n ** 40n)]);

function frameOf(...envs: Envelope[]): Buffer {
  const writer = new FrameWriter();
  for (const env of envs) writer.write(env);
  return writer.take();
}

/** Decoded records are instances of avsc's generated classes; compare them as plain data. */
function plain<T>(value: T): T {
  if (Buffer.isBuffer(value) || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(plain) as T;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)])) as T;
}

/** A decoded envelope's Envelope fields as plain data (it also tells where its payload lies, and makes the payload view only when asked). */
function fieldsOf(env: Envelope): Envelope {
  const { kind, id, iface, key, method, chain, deadline, epoch, headers, payload } = env;
  return plain({ kind, id, iface, key, method, chain, deadline, epoch, headers, payload });
}

function readAll(frame: Buffer): Envelope[] {
  const out: Envelope[] = [];
  readFrame(frame, (env) => out.push(fieldsOf(env)));
  return out;
}

// ---- frames ------------------------------------------------------------------------------------

test('an envelope survives FrameWriter → readFrame with every field intact', (t) => {
  const env = envelope({
    kind: 'REDIRECT',
    id: 2 ** 52,
    iface: 'game.IPlayer',
    key: 'ünïcödé/🐨',
    method: 'echo',
    chain: 'c-1',
    deadline: 1_750_000_000_123,
    epoch: 1_750_000_000_000_001,
    headers: { traceparent: '00-abc-def-01', 'x-empty': '' },
    payload: Buffer.from([0, 1, 2, 255]),
  });
  const writer = new FrameWriter();
  writer.write(env);
  t.is(writer.count, 1);
  t.true(writer.size > 0);
  const frame = writer.take();
  t.is(writer.count, 0);
  t.is(writer.size, 0);
  t.deepEqual(readAll(frame), [env]);
  // The frame is exactly the Avro encoding of the envelope: other-language clients rely on that.
  t.deepEqual(frame, envelopeType.toBuffer(env));
});

test('many envelopes share one frame and come back in order', (t) => {
  const envs = Array.from({ length: 1000 }, (_, i) =>
    envelope({ id: i + 1, kind: i % 2 ? 'RESPONSE' : 'REQUEST', key: String(i), payload: Buffer.from(`payload ${i}`) }),
  );
  const writer = new FrameWriter();
  for (const env of envs) writer.write(env);
  t.is(writer.count, 1000);
  const frame = writer.take();
  t.is(frame.length, envs.reduce((n, e) => n + envelopeType.toBuffer(e).length, 0));
  t.deepEqual(readAll(frame), envs);
});

// ---- inherited calls (protocol version 2) ------------------------------------------------------

/** The envelopes of a frame as avsc decodes them: what any Avro reader sees. */
function avscAll(frame: Buffer): Envelope[] {
  const out: Envelope[] = [];
  for (let pos = 0; pos < frame.length; ) {
    const { value, offset } = envelopeType.decode(frame, pos);
    out.push(plain(value as Envelope));
    pos = offset;
  }
  return out;
}

const fanOut = (overrides: Partial<Envelope> = {}): Envelope =>
  envelope({ iface: 'IBench', method: 'ping', chain: 'q1w2.3', deadline: 5000, headers: NO_HEADERS, ...overrides });

test('the calls of a fan-out inherit their fields from the call before them: kind, id, key and payload travel', (t) => {
  const envs = [
    fanOut({ id: 1, key: 't0', payload: Buffer.from([2]) }),
    fanOut({ id: 2, key: 't1', payload: Buffer.from([4]) }),
    envelope({ kind: 'RESPONSE', id: 7, iface: '', key: '', method: '', payload: Buffer.from('answer') }), // answers in between change nothing
    fanOut({ id: 0, kind: 'ONEWAY', key: 't2', payload: Buffer.from([6]) }),
    fanOut({ id: 3, key: 't3', method: 'other', payload: Buffer.from([8]) }), // another method: in full
    fanOut({ id: 4, key: 't4', method: 'other', payload: Buffer.from([10]) }),
  ];
  const writer = new FrameWriter(true);
  for (const env of envs) env.kind === 'RESPONSE' ? writer.writeAnswer('RESPONSE', env.id, env.payload) : writer.write(env);
  const frame = writer.take();
  t.deepEqual(readAll(frame), envs);
  // Still a sequence of valid Avro envelopes; the inherited ones have their fields empty.
  const seen = avscAll(frame);
  t.deepEqual(seen.map((e) => [e.iface, e.method, e.chain, e.deadline]), [
    ['IBench', 'ping', 'q1w2.3', 5000],
    ['', '', '', 0],
    ['', '', '', 0],
    ['', '', '', 0],
    ['IBench', 'other', 'q1w2.3', 5000],
    ['', '', '', 0],
  ]);
  t.deepEqual(seen.map((e) => e.key), ['t0', 't1', '', 't2', 't3', 't4']);
  // kind, id, empty iface, key, five empty fields, payload: 13 bytes for `ping(2)` to `t1`, 30 in full.
  t.is(envelopeType.toBuffer({ ...seen[1]!, headers: {} }).length, 13);
  t.is(envelopeType.toBuffer(envs[1]!).length, 30);
  // Each inherited call leaves out its iface, method, chain, deadline (5000: 2 bytes), epoch and headers.
  t.is(frame.length, frameOf(...envs).length - (17 + 17 + 18));
});

test('a call inherits only within its frame, after a call of the same fields, on a writer allowed to (a version-2 peer)', (t) => {
  const writer = new FrameWriter(true);
  writer.write(fanOut({ id: 1, key: 'a' }));
  avscAll(writer.take());
  writer.write(fanOut({ id: 2, key: 'b' }));
  writer.write(fanOut({ id: 3, key: 'c' }));
  t.deepEqual(avscAll(writer.take()).map((e) => e.iface), ['IBench', ''], "a frame's first call is in full");
  // After a MESSAGE, or a call forwarded as bytes, the next call is in full again.
  const spans: DecodedEnvelope[] = [];
  readFrame(frameOf(fanOut({ id: 9, key: 'fwd' })), (env) => spans.push(env), true);
  writer.write(fanOut({ id: 4, key: 'd' }));
  writer.forwardCall('REQUEST', 5, spans[0]![RAW]!, 5000, 0);
  writer.write(fanOut({ id: 6, key: 'e' }));
  writer.write(envelope({ kind: 'MESSAGE', id: 0, iface: 'IBench', method: 'ping', chain: 'q1w2.3', deadline: 5000, headers: NO_HEADERS }));
  writer.write(fanOut({ id: 7, key: 'f' }));
  const mixed = writer.take();
  t.deepEqual(avscAll(mixed).map((e) => e.iface), ['IBench', 'IBench', 'IBench', 'IBench', 'IBench']);
  t.deepEqual(readAll(mixed).map((e) => e.key), ['d', 'fwd', 'e', '1', 'f']);
  // Headers that may change (not frozen) are never inherited, nor is anything by a writer for a version-1 peer.
  writer.write(fanOut({ id: 8, key: 'g', headers: { h: 'v' } }));
  writer.write(fanOut({ id: 9, key: 'h', headers: { h: 'v' } }));
  t.deepEqual(avscAll(writer.take()).map((e) => e.iface), ['IBench', 'IBench']);
  const v1 = new FrameWriter();
  v1.write(fanOut({ id: 1, key: 'a' }));
  v1.write(fanOut({ id: 2, key: 'b' }));
  t.deepEqual(avscAll(v1.take()).map((e) => e.iface), ['IBench', 'IBench']);
});

test('readFrame refuses an inherited call with nothing to inherit or with fields of its own; a call needs an iface', (t) => {
  const lonely = Buffer.from([0 /* REQUEST */, 2 /* id 1 */, 0 /* iface "" */, 2, 0x6b /* key "k" */, 0, 0, 0, 0, 0, 0 /* payload */]);
  t.throws(() => readAll(lonely), { message: /REQUEST with an empty iface inherits the fields of the call before it, but it is the frame's first call/ });
  const full = envelopeType.toBuffer(fanOut({ id: 1, key: 'a' }));
  const withMethod = Buffer.from([0, 4, 0, 2, 0x6b, 2, 0x6d /* method "m" */, 0, 0, 0, 0, 0]);
  t.throws(() => readAll(Buffer.concat([full, withMethod])), { message: /must leave method, chain, deadline, epoch and headers empty/ });
  t.is(readAll(Buffer.concat([full, lonely]))[1]!.method, 'ping');
  // A MESSAGE (a client session's) may have an empty iface: it inherits nothing.
  t.deepEqual(readAll(frameOf(envelope({ kind: 'MESSAGE', id: 0, iface: '', method: '' })))[0]!.iface, '');
  const writer = new FrameWriter(true);
  t.throws(() => writer.write(envelope({ iface: '' })), { message: /REQUEST needs an interface name/ });
  t.is(writer.count, 0);
});

test('an inherited call is checked as any other: a bad key, id or payload throws and leaves the batch as it was', (t) => {
  const writer = new FrameWriter(true);
  writer.write(fanOut({ id: 1, key: 'a' }));
  const size = writer.size;
  t.throws(() => writer.write(fanOut({ id: 2, key: 7 as unknown as string })), { message: /iface, key, method and chain must be strings/ });
  t.throws(() => writer.write(fanOut({ id: 2.5, key: 'b' })), { message: /id, deadline and epoch must be integers/ });
  t.throws(() => writer.write(fanOut({ id: 3, key: 'c', payload: 'x' as unknown as Buffer })), { message: /payload must be a Buffer/ });
  t.is(writer.size, size);
  t.is(writer.count, 1);
  writer.write(fanOut({ id: 4, key: 'd' }));
  const frame = writer.take();
  t.deepEqual(avscAll(frame).map((e) => e.iface), ['IBench', '']);
  t.deepEqual(readAll(frame).map((e) => [e.id, e.key, e.method]), [
    [1, 'a', 'ping'],
    [4, 'd', 'ping'],
  ]);
});

test('the writer grows past its initial 64 KiB, for one big envelope and for many small ones', (t) => {
  const writer = new FrameWriter();
  const small = envelope({ payload: Buffer.alloc(1000, 7) });
  const big = envelope({ id: 2, payload: Buffer.alloc(200 * 1024, 9) });
  for (let i = 0; i < 100; i++) writer.write({ ...small, id: 100 + i }); // ~100 KB in small steps
  writer.write(big);
  writer.write({ ...small, id: 999 }); // after the growth, appending keeps working
  t.true(writer.size > 300 * 1024);
  const got = readAll(writer.take());
  t.is(got.length, 102);
  t.deepEqual(got[100], big);
  t.is(got[101]!.id, 999);
  t.deepEqual(got[0]!.payload, small.payload);

  // A frame far beyond the reuse threshold (1 MiB) is handed out whole, and the writer stays usable.
  const huge = envelope({ id: 3, payload: Buffer.alloc(3 * 1024 * 1024, 1) });
  writer.write(huge);
  const hugeFrame = writer.take();
  t.deepEqual(readAll(hugeFrame), [huge]);
  writer.write(small);
  t.deepEqual(readAll(writer.take()), [small]);
});

test('a taken frame is a private copy: later writes do not change it', (t) => {
  const writer = new FrameWriter();
  const a = envelope({ id: 1, payload: Buffer.from('first') });
  writer.write(a);
  const frame = writer.take();
  writer.write(envelope({ id: 2, payload: Buffer.from('other') }));
  t.deepEqual(readAll(frame), [a]);
});

test('an envelope that does not match the schema throws and leaves the batch intact', (t) => {
  const writer = new FrameWriter();
  const good = envelope({ id: 1 });
  writer.write(good);
  const size = writer.size;
  t.throws(() => writer.write({ ...good, kind: 'NOPE' as Envelope['kind'] }));
  t.throws(() => writer.write({ ...good, headers: { n: 1 as unknown as string } }));
  t.throws(() => writer.write({ ...good, payload: 'text' as unknown as Buffer }));
  t.is(writer.count, 1);
  t.is(writer.size, size);
  t.deepEqual(readAll(writer.take()), [good]);
});

test('readFrame: an empty frame holds no envelopes; truncated and garbage frames throw', (t) => {
  t.deepEqual(readAll(Buffer.alloc(0)), []);
  const frame = frameOf(envelope({ id: 1, payload: Buffer.from('abcdef') }), envelope({ id: 2 }));
  // Every proper prefix that cuts into an envelope is rejected, never half-delivered as a bogus value.
  const firstLength = envelopeType.toBuffer(envelope({ id: 1, payload: Buffer.from('abcdef') })).length;
  for (let cut = 1; cut < frame.length; cut++) {
    if (cut === firstLength) continue; // a clean boundary: one whole envelope
    t.throws(() => readAll(frame.subarray(0, cut)), undefined, `cut at ${cut}`);
  }
  t.is(readAll(frame.subarray(0, firstLength)).length, 1);
  t.throws(() => readAll(Buffer.from([0x7e, 0x01, 0x02])), { message: /enum|truncated|invalid/i }); // kind index 63
  t.throws(() => readAll(Buffer.from('this is not avro at all, but it is long enough to look like a frame')));
});

test('readFrame rejects a frame whose map claims more entries than it has bytes, at once', (t) => {
  const began = Date.now();
  t.throws(() => readAll(HOSTILE_FRAME));
  // The same claim inside a negative-count block (count, byte size) is no better.
  t.throws(() => readAll(Buffer.from([0, 2, 0, 0, 0, 0, 0, 0, ...zigzag(-(2n ** 40n)), ...zigzag(10n), 1, 2])));
  t.true(Date.now() - began < 1000);
});

test('Avro decoding of untrusted arrays bounds block counts too (argument payloads)', (t) => {
  const IList = defineInterface({
    protocol: 'IList',
    messages: {
      sum: { request: [{ name: 'xs', type: { type: 'array', items: 'int' } }], response: 'long' },
      nulls: { request: [{ name: 'xs', type: { type: 'array', items: 'null' } }], response: 'int' },
    },
  });
  const sum = methodOf(IList, 'sum');
  t.deepEqual(decodeArgs(sum, encodeArgs(IList, sum, [[1, 2, 3]])), [[1, 2, 3]]);
  const began = Date.now();
  const error = t.throws(() => decodeArgs(sum, Buffer.from(zigzag(2n ** 31n))));
  t.is((error as KoalaError).code, 'BAD_ARGUMENTS');
  t.true(Date.now() - began < 1000);
  // Items that take no bytes at all stay legal in any number.
  const nulls = methodOf(IList, 'nulls');
  t.deepEqual(decodeArgs(nulls, encodeArgs(IList, nulls, [[null, null, null]])), [[null, null, null]]);
});

// ---- request/response over WireServer + connect() ----------------------------------------------

test('request/response through WireServer and connect(), with identities on both sides', async (t) => {
  const seen: Envelope[] = [];
  const accepted: Peer[] = [];
  const server = await listen(t, {
    onRequest: (env, peer) => {
      seen.push(env);
      peer.reply(env, 'RESPONSE', Buffer.concat([Buffer.from('re:'), env.payload]));
    },
    onPeer: (peer) => accepted.push(peer),
  });
  t.regex(server.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  t.true(server.port > 0);
  const client = await dial(t, server.url);
  t.deepEqual(client.remote, { node: 'server', role: 'test', cluster: CLUSTER, version: PROTOCOL_VERSION });

  const deadline = Date.now() + 5000;
  const answer = await client.request(outgoing({ iface: 'IPlayer', key: '7', method: 'echo', chain: 'ch', deadline, epoch: 42, headers: { h: 'v' }, payload: Buffer.from('hi') }));
  t.is(answer.kind, 'RESPONSE');
  t.deepEqual(answer.payload, Buffer.from('re:hi'));
  // An answer carries kind, id and payload only: the requester matches it by id.
  t.like(answer, { iface: '', key: '', method: '', chain: '', deadline: 0, epoch: 0 });
  t.deepEqual({ ...answer.headers }, {});

  t.is(seen.length, 1);
  const req = seen[0]!;
  t.is(req.kind, 'REQUEST');
  t.is(req.id, answer.id);
  t.is(req.chain, 'ch');
  // The deadline travels as the time left and becomes a time on the receiver's clock again, later
  // by the time the envelope took to arrive (so never earlier than the sender's).
  t.true(req.deadline >= deadline && req.deadline - deadline < 1000, `deadline off by ${req.deadline - deadline} ms`);
  t.is(req.epoch, 42);
  t.deepEqual(req.headers, { h: 'v' });
  t.is(client.inFlight, 0);

  t.is(accepted.length, 1);
  t.deepEqual(accepted[0]!.remote, { node: 'client', role: 'test', cluster: CLUSTER, version: PROTOCOL_VERSION });
  t.is(server.peers.size, 1);
});

test('requests work in both directions on one connection', async (t) => {
  const accepted: Peer[] = [];
  const server = await listen(t, { onPeer: (p) => accepted.push(p) });
  const client = await dial(t, server.url, {
    onRequest: (env, peer) => peer.reply(env, 'RESPONSE', Buffer.from(`client got ${env.method}`)),
  });
  await until(() => accepted.length === 1);
  const back = await accepted[0]!.request(outgoing({ method: 'push' }));
  t.deepEqual(back.payload, Buffer.from('client got push'));
  t.deepEqual((await client.request(outgoing({ payload: Buffer.from('x') }))).payload, Buffer.from('x'));
});

test('connect() without a request handler answers incoming requests with a typed error', async (t) => {
  const accepted: Peer[] = [];
  const server = await listen(t, { onPeer: (p) => accepted.push(p) });
  await dial(t, server.url);
  await until(() => accepted.length === 1);
  const answer = await accepted[0]!.request(outgoing({ method: 'anything' }));
  const error = t.throws(() => readAnswer(answer, undefined)) as KoalaError;
  t.is(error.code, 'UNKNOWN_INTERFACE');
});

test('concurrent requests made in one turn travel as one frame, and so do their answers', async (t) => {
  const server = await listen(t);
  const client = await rawClient(t, server.url);
  const N = BATCH_ENVELOPES - 1;
  const answers = await Promise.all(Array.from({ length: N }, (_, i) => client.peer.request(outgoing({ key: String(i), payload: Buffer.from(`m${i}`) }))));
  t.deepEqual(
    answers.map((a) => a.payload.toString()),
    Array.from({ length: N }, (_, i) => `m${i}`),
  );
  t.deepEqual(new Set(answers.map((a) => a.id)).size, N);
  t.is(client.frames.sent, 1, 'all requests of one turn share one frame');
  t.is(client.frames.received, 1, 'and so do their answers');
});

test('a turn that makes more than a batch sends each full batch at once, in order', async (t) => {
  const seen: string[] = [];
  const server = await listen(t, {
    onRequest: (env, peer) => {
      seen.push(env.key);
      peer.reply(env, 'RESPONSE', Buffer.from(env.payload));
    },
  });
  const client = await rawClient(t, server.url);
  const N = 3 * BATCH_ENVELOPES + 5;
  const calls: Promise<Envelope>[] = [];
  const sentDuringTheTurn: number[] = [];
  for (let i = 0; i < N; i++) {
    calls.push(client.peer.request(outgoing({ key: String(i), payload: Buffer.from(`m${i}`) })));
    sentDuringTheTurn.push(client.frames.sent);
  }
  // The first batch left when it was full, not at the end of the turn.
  t.is(sentDuringTheTurn[BATCH_ENVELOPES - 2], 0);
  t.is(sentDuringTheTurn[BATCH_ENVELOPES - 1], 1);
  t.is(sentDuringTheTurn[N - 1], 3);
  const answers = await Promise.all(calls);
  t.is(client.frames.sent, 4, 'three full batches, then the rest at the end of the turn');
  t.deepEqual(seen, Array.from({ length: N }, (_, i) => String(i)), 'the server got them in order');
  t.deepEqual(
    answers.map((a) => a.payload.toString()),
    Array.from({ length: N }, (_, i) => `m${i}`),
  );
  t.true(client.frames.received >= 4, `the answers came in full batches too (${client.frames.received} frames)`);
});

test('a batch of big envelopes is sent once it holds BATCH_BYTES', (t) => {
  const writer = new FrameWriter();
  const payload = Buffer.alloc(BATCH_BYTES / 4);
  // A quarter batch of payload plus the envelope's own bytes each: the fourth fills the batch.
  for (let i = 0; i < 3; i++) {
    writer.write(envelope({ payload }));
    t.false(writer.full, `${i + 1} envelopes of a quarter batch`);
  }
  writer.write(envelope({ payload }));
  t.true(writer.full);
  writer.take();
  t.false(writer.full, 'an empty writer starts a new batch');
});

test('low traffic is not held back: each lone request leaves in its own frame at once', async (t) => {
  const server = await listen(t);
  const client = await rawClient(t, server.url);
  for (let i = 0; i < 5; i++) {
    await client.peer.request(outgoing({ payload: Buffer.from([i]) }));
  }
  t.is(client.frames.sent, 5);
  t.is(client.frames.received, 5);
});

test('a burst bigger than the frame limit is split into several frames instead of breaking the connection', async (t) => {
  const server = await listen(t);
  const client = await rawClient(t, server.url);
  // 1000 × 20 KiB = 20 MiB in one turn, above the 16 MiB a frame may have.
  const payload = Buffer.alloc(20 * 1024, 3);
  const answers = await Promise.all(Array.from({ length: 1000 }, () => client.peer.request(outgoing({ payload }))));
  t.is(answers.length, 1000);
  t.true(answers.every((a) => a.payload.equals(payload)));
  t.true(client.frames.sent > 1);
  t.true(client.frames.sent < 1000);
  t.false(client.peer.closed);
});

test('ONEWAY: delivered with id 0, no answer tracked or sent', async (t) => {
  const seen: Envelope[] = [];
  const server = await listen(t, { onRequest: (env) => seen.push(env) });
  const client = await rawClient(t, server.url);
  client.peer.notify(outgoing({ method: 'note', payload: Buffer.from('fire') }));
  t.is(client.peer.inFlight, 0);
  await until(() => seen.length === 1);
  t.is(seen[0]!.kind, 'ONEWAY');
  t.is(seen[0]!.id, 0);
  t.deepEqual(seen[0]!.payload, Buffer.from('fire'));
  await delay(50);
  t.is(client.frames.received, 0);
});

test('a deadline that passes rejects with TimeoutError; the late answer is dropped silently', async (t) => {
  const held: { env: Envelope; peer: Peer }[] = [];
  const server = await listen(t, {
    onRequest: (env, peer) => {
      if (env.method === 'hold') held.push({ env, peer });
      else peer.reply(env, 'RESPONSE', env.payload);
    },
  });
  const client = await rawClient(t, server.url);
  const began = Date.now();
  const error = await rejection(client.peer.request(outgoing({ iface: 'IPlayer', key: '9', method: 'hold', deadline: Date.now() + 150 })));
  const took = Date.now() - began;
  t.true(error instanceof TimeoutError);
  t.is(error.code, 'TIMEOUT');
  t.is(error.name, 'TimeoutError');
  t.regex(error.message, /IPlayer\/9\.hold/);
  t.true(took >= 140 && took < 1500, `timed out after ${took} ms`);
  t.is(client.peer.inFlight, 0);

  // The answer arrives after all: nothing resolves twice, nothing breaks.
  t.is(held.length, 1);
  const framesBefore = client.frames.received;
  held[0]!.peer.reply(held[0]!.env, 'RESPONSE', Buffer.from('too late'));
  await until(() => client.frames.received > framesBefore);
  t.false(client.peer.closed);
  t.deepEqual((await client.peer.request(outgoing({ payload: Buffer.from('next') }))).payload, Buffer.from('next'));
});

test('deadline 0 means no deadline: a slow answer still arrives', async (t) => {
  const held: { env: Envelope; peer: Peer }[] = [];
  const server = await listen(t, { onRequest: (env, peer) => held.push({ env, peer }) });
  const client = await dial(t, server.url);
  const answer = client.request(outgoing({ deadline: 0 }));
  await until(() => held.length === 1);
  await delay(100);
  t.is(client.inFlight, 1);
  held[0]!.peer.reply(held[0]!.env, 'RESPONSE', Buffer.from('eventually'));
  t.deepEqual((await answer).payload, Buffer.from('eventually'));
});

test('only the requests past their deadline time out; the others are answered', async (t) => {
  const held: { env: Envelope; peer: Peer }[] = [];
  const server = await listen(t, { onRequest: (env, peer) => held.push({ env, peer }) });
  const client = await dial(t, server.url);
  const short = client.request(outgoing({ key: 'short', deadline: Date.now() + 60 }));
  const long = client.request(outgoing({ key: 'long', deadline: Date.now() + 10_000 }));
  await until(() => held.length === 2);
  t.is((await rejection(short)).code, 'TIMEOUT');
  t.is(client.inFlight, 1);
  const h = held.find((x) => x.env.key === 'long')!;
  h.peer.reply(h.env, 'RESPONSE', Buffer.from('ok'));
  t.deepEqual((await long).payload, Buffer.from('ok'));
});

test('a request that cannot be encoded rejects and leaves nothing pending', async (t) => {
  const server = await listen(t);
  const client = await dial(t, server.url);
  await t.throwsAsync(client.request(outgoing({ headers: { n: 7 as unknown as string } })));
  t.is(client.inFlight, 0);
  t.deepEqual((await client.request(outgoing({ payload: Buffer.from('fine') }))).payload, Buffer.from('fine'));
});

// ---- handshake ---------------------------------------------------------------------------------

test('a wrong secret is refused with AUTH_FAILED and the server keeps serving good clients', async (t) => {
  const logs: string[] = [];
  const server = await listen(t, { logs });
  const error = await rejection(connect(server.url, { identity: identity('intruder', { secret: 'guess' }) }));
  t.is(error.code, 'AUTH_FAILED');
  t.regex(error.message, /secret does not match/);
  t.is(server.peers.size, 0);
  await until(() => logs.some((l) => l.includes('refused a connection')));
  const good = await dial(t, server.url);
  t.deepEqual((await good.request(outgoing({ payload: Buffer.from('ok') }))).payload, Buffer.from('ok'));
  t.is(server.peers.size, 1);
});

test('a wrong cluster name is refused with AUTH_FAILED naming both clusters', async (t) => {
  const server = await listen(t);
  const error = await rejection(connect(server.url, { identity: identity('stray', { cluster: 'other' }) }));
  t.is(error.code, 'AUTH_FAILED');
  t.regex(error.message, /cluster "unit", not "other"/);
  t.is(server.peers.size, 0);
});

test('the client refuses a server that cannot prove the secret', async (t) => {
  // A server that does not check HELLO and answers WELCOME with a made-up proof.
  const server = await rawServer(t, (ws) => {
    const base = { version: PROTOCOL_VERSION, cluster: CLUSTER, node: 'impostor', role: 'x', nonce: Buffer.alloc(16, 1), proof: Buffer.alloc(0), code: '', message: '' };
    ws.send(handshakeType.toBuffer({ ...base, kind: 'CHALLENGE' }));
    ws.once('message', () => ws.send(handshakeType.toBuffer({ ...base, kind: 'WELCOME', proof: Buffer.alloc(32, 7) })));
  });
  const error = await rejection(connect(server.url, { identity: identity('client') }));
  t.is(error.code, 'AUTH_FAILED');
  t.regex(error.message, /impostor could not prove/);
});

test('a client speaking another protocol version gets REJECT and close code 4001', async (t) => {
  const server = await listen(t);
  const ws = new WebSocket(server.url, { perMessageDeflate: false });
  t.teardown(() => ws.terminate());
  const frames: Handshake[] = [];
  ws.on('message', (data: Buffer) => {
    const h = handshakeType.fromBuffer(data);
    frames.push(h);
    if (h.kind === 'CHALLENGE') {
      ws.send(handshakeType.toBuffer({ ...h, kind: 'HELLO', version: PROTOCOL_VERSION + 1, node: 'future', nonce: Buffer.alloc(16), proof: Buffer.alloc(32) }));
    }
  });
  const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
  t.is(frames[0]!.kind, 'CHALLENGE');
  t.is(frames[0]!.cluster, CLUSTER);
  t.is(frames[0]!.nonce.length, 16);
  t.is(frames[1]!.kind, 'REJECT');
  t.is(frames[1]!.code, 'BAD_FRAME');
  t.regex(frames[1]!.message, new RegExp(`protocol version ${PROTOCOL_VERSION + 1} is not supported`));
  t.is(code, 4001);
  t.is(server.peers.size, 0);
});

test('a client speaking protocol version 1 is still accepted, and calls to it are never inherited', async (t) => {
  const server = await listen(t);
  const ws = new WebSocket(server.url, { perMessageDeflate: false });
  t.teardown(() => ws.terminate());
  const welcomed = new Promise<Handshake>((resolve) =>
    ws.on('message', (data: Buffer) => {
      const h = handshakeType.fromBuffer(data);
      if (h.kind !== 'CHALLENGE') return resolve(h);
      const nonce = Buffer.alloc(16, 1);
      const proof = createHmac('sha256', SECRET).update('hello').update('\0').update(CLUSTER).update('\0').update(h.nonce).update(nonce).digest();
      ws.send(handshakeType.toBuffer({ ...h, kind: 'HELLO', version: 1, node: 'old-client', role: 'client', nonce, proof }));
    }),
  );
  t.is((await welcomed).kind, 'WELCOME');
  await until(() => server.peers.size === 1);
  t.is([...server.peers][0]!.remote.version, 1);
  // A peer writes inherited calls only to a remote that speaks version 2.
  const sentBy = async (version: number | undefined): Promise<string[]> => {
    const socket = Object.assign(new EventEmitter(), {
      sent: [] as Buffer[],
      send: (frame: Buffer) => void socket.sent.push(frame),
      close: () => void socket.emit('close', 1000, Buffer.alloc(0)),
      terminate() {},
    });
    const peer = new Peer(socket as unknown as WebSocket, { node: 'n', role: 'host', cluster: CLUSTER, ...(version === undefined ? {} : { version }) }, { onRequest: () => {}, heartbeatMs: 0 });
    const calls = ['a', 'b', 'c'].map((key) => peer.request(outgoing({ ...fanOut({ key }), deadline: 0 })).catch(() => undefined));
    await delay(5);
    peer.close();
    await Promise.all(calls);
    return avscAll(socket.sent[0]!).map((e) => e.iface);
  };
  t.deepEqual(await sentBy(2), ['IBench', '', '']);
  t.deepEqual(await sentBy(1), ['IBench', 'IBench', 'IBench']);
  t.deepEqual(await sentBy(undefined), ['IBench', 'IBench', 'IBench']);
});

test('a raw client that answers the challenge with garbage is dropped; the server is fine', async (t) => {
  const logs: string[] = [];
  const server = await listen(t, { logs });
  for (const garbage of [Buffer.from([0xde, 0xad, 0xbe, 0xef]), 'HELLO as text', Buffer.alloc(0)]) {
    const ws = new WebSocket(server.url, { perMessageDeflate: false });
    t.teardown(() => ws.terminate());
    ws.once('message', () => ws.send(garbage));
    const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
    t.not(code, 1000, 'not a normal close');
  }
  t.is(server.peers.size, 0);
  t.true(logs.filter((l) => l.includes('refused a connection')).length >= 3);
  const good = await dial(t, server.url);
  t.deepEqual((await good.request(outgoing({ payload: Buffer.from('still here') }))).payload, Buffer.from('still here'));
});

test('connect() gives up on a server that never sends its CHALLENGE', async (t) => {
  const server = await rawServer(t, () => {}); // accepts the WebSocket, then says nothing
  const began = Date.now();
  const error = await rejection(connect(server.url, { identity: identity('client') }));
  t.is(error.code, 'UNREACHABLE');
  t.regex(error.message, /no CHALLENGE from peer within 5000 ms/);
  t.true(Date.now() - began < 7000);
});

// ---- bad frames after the handshake ------------------------------------------------------------

async function badFrameCase(t: import('ava').ExecutionContext, send: (ws: WebSocket) => void, reason: RegExp): Promise<void> {
  const held: Envelope[] = [];
  const server = await listen(t, {
    onRequest: (env, peer) => {
      if (env.method === 'hold') held.push(env);
      else peer.reply(env, 'RESPONSE', env.payload);
    },
  });
  const bystander = await dial(t, server.url);
  const victim = await rawClient(t, server.url);
  await until(() => server.peers.size === 2);
  const pending = victim.peer.request(outgoing({ method: 'hold', deadline: Date.now() + 10_000 }));
  await until(() => held.length === 1);

  send(victim.ws);

  const closed = await within(victim.closed, 3000, 'the close');
  t.is(closed.code, 1007);
  t.regex(closed.reason, reason);
  const error = await rejection(within(pending, 3000, 'the pending request'));
  t.is(error.code, 'CONNECTION_LOST');
  t.true(victim.peer.closed);
  t.is((await rejection(victim.peer.request(outgoing()))).code, 'CONNECTION_LOST');

  // Other connections carry on.
  t.false(bystander.closed);
  t.deepEqual((await bystander.request(outgoing({ payload: Buffer.from('unaffected') }))).payload, Buffer.from('unaffected'));
  await until(() => server.peers.size === 1);
  const fresh = await dial(t, server.url);
  t.deepEqual((await fresh.request(outgoing({ payload: Buffer.from('new') }))).payload, Buffer.from('new'));
}

test('a garbage binary frame closes that connection with 1007 and fails its pending calls', async (t) => {
  await badFrameCase(t, (ws) => ws.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3])), /^BAD_FRAME: undecodable frame/);
});

test('a text frame closes that connection with 1007', async (t) => {
  await badFrameCase(t, (ws) => ws.send('{"kind":"REQUEST"}'), /^BAD_FRAME: text frames are not part/);
});

test('a truncated envelope closes that connection with 1007', async (t) => {
  const frame = frameOf(envelope({ payload: Buffer.from('0123456789') }));
  await badFrameCase(t, (ws) => ws.send(frame.subarray(0, frame.length - 3)), /truncated/);
});

test('a frame with a hostile block count closes the connection at once instead of hanging the server', async (t) => {
  await badFrameCase(t, (ws) => ws.send(HOSTILE_FRAME), /^BAD_FRAME: undecodable frame/);
});

test('the client side also closes with 1007 on garbage from the server', async (t) => {
  const server = await rawPeerServer(t);
  const client = await dial(t, server.url);
  const { ws } = await server.peers[0]!;
  const pending = client.request(outgoing({ method: 'slow', deadline: Date.now() + 10_000 }));
  const closing = nextClose(client);
  const serverSaw = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
  const err = await closing;
  t.is(err.code, 'CONNECTION_LOST');
  t.regex(err.message, /1007/);
  t.is(await serverSaw, 1007);
  // The pending request may have been answered (echo) before the garbage arrived or failed with it.
  const outcome = await pending.then(
    () => 'answered',
    (e: KoalaError) => e.code,
  );
  t.true(outcome === 'answered' || outcome === 'CONNECTION_LOST');
});

// ---- closing and heartbeats --------------------------------------------------------------------

test('closing a peer fails its pending calls; later calls fail at once; listeners hear it once', async (t) => {
  const server = await listen(t, { onRequest: () => {} });
  const client = await dial(t, server.url);
  const heard: KoalaError[] = [];
  client.onClose((e) => heard.push(e));
  const pending = [client.request(outgoing({ deadline: Date.now() + 10_000 })), client.request(outgoing())];
  await delay(20);
  client.close();
  for (const p of pending) t.is((await rejection(p)).code, 'CONNECTION_LOST');
  t.true(client.closed);
  t.is(client.inFlight, 0);
  t.is((await rejection(client.request(outgoing()))).code, 'CONNECTION_LOST');
  t.notThrows(() => client.notify(outgoing()));
  client.close();
  await delay(20);
  t.is(heard.length, 1);
  t.is(heard[0]!.code, 'CONNECTION_LOST');
  await until(() => server.peers.size === 0);
});

test('closing the server closes its peers; the client hears CONNECTION_LOST', async (t) => {
  const server = await listen(t);
  const client = await dial(t, server.url);
  const closing = nextClose(client);
  const url = server.url;
  await server.close();
  const err = await closing;
  t.is(err.code, 'CONNECTION_LOST');
  t.regex(err.message, /1001/);
  t.is((await rejection(connect(url, { identity: identity('late') }))).code, 'UNREACHABLE');
});

test('closing the server does not wait for a client stuck in the handshake', async (t) => {
  const server = await listen(t);
  const ws = new WebSocket(server.url, { perMessageDeflate: false });
  t.teardown(() => ws.terminate());
  await new Promise((resolve) => ws.once('message', resolve)); // got CHALLENGE, never answers
  const began = Date.now();
  await server.close();
  t.true(Date.now() - began < 2000, `close took ${Date.now() - began} ms`);
});

// Heartbeat tests run serially (before the concurrent ones): a busy shared event loop would look like a dead peer.
test.serial('a remote that stops answering pings is dropped by the heartbeat', async (t) => {
  const server = await rawPeerServer(t, { autoPong: false });
  const client = await rawClient(t, server.url, { peer: { heartbeatMs: 40 } });
  const began = Date.now();
  const err = await nextClose(client.peer);
  t.is(err.code, 'CONNECTION_LOST');
  const took = Date.now() - began;
  t.true(took < 1000, `dropped after ${took} ms`);
});

test.serial('a live remote passes the heartbeat', async (t) => {
  const server = await listen(t);
  const client = await rawClient(t, server.url, { peer: { heartbeatMs: 50 } });
  await delay(300);
  t.false(client.peer.closed);
  t.deepEqual((await client.peer.request(outgoing({ payload: Buffer.from('alive') }))).payload, Buffer.from('alive'));
});

// ---- connect() and PeerPool ---------------------------------------------------------------------

async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test('connect() to a closed port or a non-WebSocket server fails with UNREACHABLE', async (t) => {
  const port = await deadPort();
  const refused = await rejection(connect(`ws://127.0.0.1:${port}`, { identity: identity('c') }));
  t.is(refused.code, 'UNREACHABLE');
  t.regex(refused.message, /cannot reach ws:\/\/127\.0\.0\.1:\d+/);

  const plain = http.createServer((_req, res) => res.writeHead(404).end('no'));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => plain.close(() => resolve())));
  const notWs = await rejection(connect(`ws://127.0.0.1:${(plain.address() as AddressInfo).port}`, { identity: identity('c') }));
  t.is(notWs.code, 'UNREACHABLE');
  t.regex(notWs.message, /404/);
});

test('PeerPool shares one connection per URL, also between concurrent callers', async (t) => {
  const server = await listen(t);
  const other = await listen(t);
  const pool = new PeerPool({ identity: identity('pooled') });
  t.teardown(() => pool.close());
  const [a, b] = await Promise.all([pool.get(server.url), pool.get(server.url)]);
  t.is(a, b);
  t.is(await pool.get(server.url), a);
  const c = await pool.get(other.url);
  t.not(c, a);
  await until(() => server.peers.size === 1 && other.peers.size === 1);
  await delay(30);
  t.is(server.peers.size, 1);
  t.deepEqual((await a.request(outgoing({ payload: Buffer.from('pooled') }))).payload, Buffer.from('pooled'));
});

test('PeerPool dials again after its connection is lost', async (t) => {
  const server = await listen(t);
  const pool = new PeerPool({ identity: identity('pooled') });
  t.teardown(() => pool.close());
  const first = await pool.get(server.url);
  const lost = nextClose(first);
  for (const p of server.peers) p.close(1001, 'going away');
  await lost;
  const second = await pool.get(server.url);
  t.not(second, first);
  t.false(second.closed);
  t.deepEqual((await second.request(outgoing({ payload: Buffer.from('again') }))).payload, Buffer.from('again'));
});

test('PeerPool backs off after a failed dial, growing the delay, and recovers when the server is up', async (t) => {
  const port = await deadPort();
  const url = `ws://127.0.0.1:${port}`;
  const pool = new PeerPool({ identity: identity('pooled') });
  t.teardown(() => pool.close());

  const first = await rejection(pool.get(url));
  t.is(first.code, 'UNREACHABLE');
  t.regex(first.message, /cannot reach/);
  // Within the back-off window the pool does not dial at all.
  const blocked = await rejection(pool.get(url));
  t.is(blocked.code, 'UNREACHABLE');
  const wait1 = Number(/retrying in (\d+) ms/.exec(blocked.message)?.[1]);
  t.true(wait1 > 0 && wait1 <= 50, `first back-off ${wait1} ms`);

  await delay(wait1 + 10);
  t.regex((await rejection(pool.get(url))).message, /cannot reach/);
  const wait2 = Number(/retrying in (\d+) ms/.exec((await rejection(pool.get(url))).message)?.[1]);
  t.true(wait2 > 50 && wait2 <= 100, `second back-off ${wait2} ms`);

  const server = await listen(t, { port });
  await delay(wait2 + 10);
  const peer = await pool.get(url);
  t.deepEqual((await peer.request(outgoing({ payload: Buffer.from('up') }))).payload, Buffer.from('up'));
  t.is(server.peers.size, 1);
});

test('PeerPool passes an authentication failure through and backs off on it too', async (t) => {
  const server = await listen(t);
  const pool = new PeerPool({ identity: identity('pooled', { secret: 'wrong' }) });
  t.teardown(() => pool.close());
  t.is((await rejection(pool.get(server.url))).code, 'AUTH_FAILED');
  t.regex((await rejection(pool.get(server.url))).message, /retrying in/);
});

test('PeerPool.close() closes its connections', async (t) => {
  const server = await listen(t);
  const pool = new PeerPool({ identity: identity('pooled') });
  const peer = await pool.get(server.url);
  const lost = nextClose(peer);
  await pool.close();
  t.is((await lost).code, 'CONNECTION_LOST');
  await until(() => server.peers.size === 0);
  t.pass();
});

// ---- rpc ---------------------------------------------------------------------------------------

const ICalc = defineInterface({
  protocol: 'ICalc',
  namespace: 'unit',
  types: [{ type: 'record', name: 'Pair', fields: [{ name: 'a', type: 'int' }, { name: 'b', type: 'int' }] }],
  messages: {
    add: { request: [{ name: 'a', type: 'int' }, { name: 'b', type: 'int' }], response: 'int' },
    sum: { request: [{ name: 'pairs', type: { type: 'array', items: 'Pair' } }], response: 'long' },
    greet: { request: [{ name: 'name', type: ['null', 'string'] }], response: 'string' },
    boom: { request: [{ name: 'message', type: 'string' }], response: 'null' },
    refuse: { request: [], response: 'null' },
    wrong: { request: [], response: 'int' },
    count: { request: [], response: 'int' },
    later: { request: [{ name: 'ms', type: 'int' }], response: 'string' },
    note: { request: [{ name: 'text', type: 'string' }], response: 'null', 'one-way': true },
  },
});

class Calc implements ActorImplementation<typeof ICalc> {
  calls = 0;
  notes: string[] = [];
  add(a: number, b: number) {
    return a + b;
  }
  sum(pairs: { a: number; b: number }[]) {
    return pairs.reduce((n, p) => n + p.a * p.b, 0);
  }
  greet(name: string | null) {
    return `hello ${name ?? 'nobody'}`;
  }
  boom(message: string): null {
    throw new RangeError(message);
  }
  async refuse(): Promise<null> {
    await delay(1);
    throw new KoalaError('NOT_OWNER', 'not mine', { name: 'NotOwnerError' });
  }
  wrong() {
    return 'seven' as unknown as number;
  }
  count() {
    return ++this.calls;
  }
  async later(ms: number) {
    await delay(ms);
    return `after ${ms}`;
  }
  note(text: string) {
    this.notes.push(text);
  }
}

test('encodeArgs: a wrong argument count is BAD_ARGUMENTS showing the signature', (t) => {
  const add = methodOf(ICalc, 'add');
  const few = t.throws(() => encodeArgs(ICalc, add, [1])) as KoalaError;
  t.is(few.code, 'BAD_ARGUMENTS');
  t.is(few.message, 'unit.ICalc.add(a: int, b: int) takes 2 arguments, got 1');
  const many = t.throws(() => encodeArgs(ICalc, methodOf(ICalc, 'boom'), ['a', 'b'])) as KoalaError;
  t.is(many.message, 'unit.ICalc.boom(message: string) takes 1 argument, got 2');
  t.is((t.throws(() => encodeArgs(ICalc, methodOf(ICalc, 'count'), [1])) as KoalaError).code, 'BAD_ARGUMENTS');
});

test('encodeArgs: a wrong type is BAD_ARGUMENTS naming the parameter and the value', (t) => {
  const add = methodOf(ICalc, 'add');
  const e1 = t.throws(() => encodeArgs(ICalc, add, [1, 'two'])) as KoalaError;
  t.is(e1.code, 'BAD_ARGUMENTS');
  t.is(e1.message, 'unit.ICalc.add: argument "b" must be int, got "two"');
  const e2 = t.throws(() => encodeArgs(ICalc, add, [1.5, 2])) as KoalaError;
  t.regex(e2.message, /argument "a" must be int, got 1\.5/);
  const e3 = t.throws(() => encodeArgs(ICalc, add, [2 ** 31, 2])) as KoalaError;
  t.regex(e3.message, /argument "a" must be int/);
  const e4 = t.throws(() => encodeArgs(ICalc, methodOf(ICalc, 'sum'), [[{ a: 1 }]])) as KoalaError;
  t.regex(e4.message, /argument "pairs" must be array, got \[\{"a":1\}\]/);
  const e5 = t.throws(() => encodeArgs(ICalc, add, [1, 'x'.repeat(100)])) as KoalaError;
  t.regex(e5.message, /got "x{40}…"$/);
  // avsc's own int check throws a TypeError for a bigint: an argument error all the same.
  const e6 = t.throws(() => encodeArgs(ICalc, add, [1n, 2])) as KoalaError;
  t.is(e6.code, 'BAD_ARGUMENTS');
  t.regex(e6.message, /argument "a" must be int, got 1$/);
});

test('encodeArgs/decodeArgs round-trip; undecodable payloads are BAD_ARGUMENTS', (t) => {
  const sum = methodOf(ICalc, 'sum');
  const pairs = [{ a: 1, b: 2 }, { a: 3, b: 4 }];
  t.deepEqual(plain(decodeArgs(sum, encodeArgs(ICalc, sum, [pairs]))), [pairs]);
  const greet = methodOf(ICalc, 'greet');
  t.deepEqual(decodeArgs(greet, encodeArgs(ICalc, greet, [null])), [null]);
  t.deepEqual(decodeArgs(greet, encodeArgs(ICalc, greet, ['koala'])), ['koala']);
  const count = methodOf(ICalc, 'count');
  t.deepEqual(decodeArgs(count, encodeArgs(ICalc, count, [])), []);
  const add = methodOf(ICalc, 'add');
  const e = t.throws(() => decodeArgs(add, Buffer.from([2]))) as KoalaError;
  t.is(e.code, 'BAD_ARGUMENTS');
  t.regex(e.message, /^arguments of add do not decode/);
  t.is((t.throws(() => decodeArgs(count, Buffer.from([1, 2]))) as KoalaError).code, 'BAD_ARGUMENTS'); // trailing bytes
});

test('methodOf: an unknown method is UNKNOWN_METHOD listing the known ones', (t) => {
  const e = t.throws(() => methodOf(ICalc, 'subtract')) as KoalaError;
  t.is(e.code, 'UNKNOWN_METHOD');
  t.is(e.message, 'unit.ICalc has no method "subtract" (it has: add, sum, greet, boom, refuse, wrong, count, later, note)');
  // Object properties are not methods.
  t.is((t.throws(() => methodOf(ICalc, 'toString')) as KoalaError).code, 'UNKNOWN_METHOD');
});

test('encodeResult: void methods may return undefined; a wrong result is INTERNAL', (t) => {
  t.deepEqual(encodeResult(ICalc, methodOf(ICalc, 'boom'), undefined), Buffer.alloc(0));
  t.deepEqual(readAnswer(envelope({ kind: 'RESPONSE', payload: encodeResult(ICalc, methodOf(ICalc, 'add'), 5) }), methodOf(ICalc, 'add')), { kind: 'value', value: 5 });
  const e = t.throws(() => encodeResult(ICalc, methodOf(ICalc, 'add'), 'five')) as KoalaError;
  t.is(e.code, 'INTERNAL');
  t.is(e.message, 'unit.ICalc.add returned "five", which is not a valid int');
  t.is((t.throws(() => encodeResult(ICalc, methodOf(ICalc, 'add'), undefined)) as KoalaError).code, 'INTERNAL');
});

test('readAnswer: values, redirects, typed errors and nonsense', (t) => {
  t.deepEqual(readAnswer(envelope({ kind: 'RESPONSE', payload: Buffer.from('raw') }), undefined), { kind: 'value', value: Buffer.from('raw') });
  const position = { host: 'h1', address: 'ws://127.0.0.1:1', epoch: 77 };
  t.deepEqual(plain(readAnswer(envelope({ kind: 'REDIRECT', payload: positionType.toBuffer(position) }), undefined)), { kind: 'redirect', position });

  const remote = new KoalaError('NO_HOST', 'nobody home', { name: 'NoHostError' });
  const e = t.throws(() => readAnswer(envelope({ kind: 'ERROR', payload: encodeError(remote, 'IPlayer/1') }), undefined)) as KoalaError;
  t.is(e.code, 'NO_HOST');
  t.is(e.name, 'NoHostError');
  t.is(e.message, 'nobody home');
  t.is(e.actor, 'IPlayer/1');
  t.truthy(e.remoteStack);

  const timeout = t.throws(() => readAnswer(envelope({ kind: 'ERROR', payload: encodeError(new TimeoutError('slow')) }), undefined));
  t.true(timeout instanceof TimeoutError);

  const typeError = t.throws(() => readAnswer(envelope({ kind: 'ERROR', payload: encodeError(new TypeError('bad type')) }), undefined)) as KoalaError;
  t.is(typeError.code, 'ACTOR_ERROR');
  t.is(typeError.name, 'TypeError');
  t.is(typeError.message, 'bad type');

  t.is((t.throws(() => readAnswer(envelope({ kind: 'ERROR', payload: Buffer.from([0xff]) }), undefined)) as KoalaError).code, 'BAD_FRAME');
  const odd = t.throws(() => readAnswer(envelope({ kind: 'REQUEST' }), undefined)) as KoalaError;
  t.is(odd.code, 'BAD_FRAME');
  t.regex(odd.message, /unexpected REQUEST envelope/);
});

// ---- ServiceTable over the wire ----------------------------------------------------------------

async function calcService(t: import('ava').ExecutionContext) {
  const impl = new Calc();
  const services = new ServiceTable().add(ICalc, impl);
  t.true(services.has('unit.ICalc'));
  t.false(services.has('ICalc'));
  const server = await listen(t, { onRequest: (env, peer) => services.dispatch(env, peer) });
  const client = await rawClient(t, server.url);
  const api = serviceProxy(ICalc, () => Promise.resolve(client.peer), 2000);
  return { impl, server, client, api };
}

test('ServiceTable: calls through a typed proxy get typed results', async (t) => {
  const { api } = await calcService(t);
  t.is(await api.add(2, 3), 5);
  t.is(await api.sum([{ a: 2, b: 3 }, { a: 4, b: 5 }]), 26);
  t.is(await api.greet(null), 'hello nobody');
  t.is(await api.greet('koala'), 'hello koala');
  t.is(await api.later(5), 'after 5');
  t.deepEqual(await Promise.all([api.count(), api.count(), api.count()]), [1, 2, 3]);
});

test('ServiceTable: an unknown method comes back over the wire as UNKNOWN_METHOD', async (t) => {
  const { client } = await calcService(t);
  const answer = await client.peer.request(outgoing({ iface: 'unit.ICalc', method: 'subtract' }));
  t.is(answer.kind, 'ERROR');
  const e = t.throws(() => readAnswer(answer, undefined)) as KoalaError;
  t.is(e.code, 'UNKNOWN_METHOD');
  t.regex(e.message, /unit\.ICalc has no method "subtract" \(it has: add, sum/);
  // Names that exist on every object are not callable either.
  for (const method of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    const a = await client.peer.request(outgoing({ iface: 'unit.ICalc', method }));
    t.is((t.throws(() => readAnswer(a, undefined)) as KoalaError).code, 'UNKNOWN_METHOD', method);
  }
});

test('ServiceTable: an unknown interface is UNKNOWN_INTERFACE', async (t) => {
  const { client } = await calcService(t);
  const answer = await client.peer.request(outgoing({ iface: 'ICalc', method: 'add' }));
  const e = t.throws(() => readAnswer(answer, undefined)) as KoalaError;
  t.is(e.code, 'UNKNOWN_INTERFACE');
  t.is(e.message, 'this process does not serve ICalc');
});

test('ServiceTable: errors thrown by a service reach the caller typed, with name, message and stack', async (t) => {
  const { api } = await calcService(t);
  const boom = await rejection(api.boom('out of range!'));
  t.is(boom.code, 'ACTOR_ERROR');
  t.is(boom.name, 'RangeError');
  t.is(boom.message, 'out of range!');
  t.regex(boom.remoteStack ?? '', /boom/);

  const refused = await rejection(api.refuse());
  t.is(refused.code, 'NOT_OWNER');
  t.is(refused.name, 'NotOwnerError');
  t.is(refused.message, 'not mine');

  const wrong = await rejection(api.wrong());
  t.is(wrong.code, 'INTERNAL');
  t.regex(wrong.message, /returned "seven"/);
});

test('ServiceTable: undecodable arguments are BAD_ARGUMENTS and the service is not called', async (t) => {
  const { client, impl } = await calcService(t);
  const answer = await client.peer.request(outgoing({ iface: 'unit.ICalc', method: 'count', payload: Buffer.from([1, 2, 3]) }));
  t.is((t.throws(() => readAnswer(answer, undefined)) as KoalaError).code, 'BAD_ARGUMENTS');
  t.is(impl.calls, 0);
});

test('ServiceTable: ONEWAY runs the method without answering, errors included', async (t) => {
  const { client, impl, api } = await calcService(t);
  await api.note('first'); // a proxy call of a one-way method is still a request
  client.peer.notify(outgoing({ iface: 'unit.ICalc', method: 'note', payload: encodeArgs(ICalc, methodOf(ICalc, 'note'), ['second']) }));
  client.peer.notify(outgoing({ iface: 'unit.ICalc', method: 'boom', payload: encodeArgs(ICalc, methodOf(ICalc, 'boom'), ['ignored']) }));
  client.peer.notify(outgoing({ iface: 'unit.ICalc', method: 'nope' }));
  await until(() => impl.notes.length === 2);
  t.deepEqual(impl.notes, ['first', 'second']);
  const before = client.frames.received;
  await delay(50);
  t.is(client.frames.received, before, 'no answers to one-way calls, not even errors');
  t.is(await api.add(1, 1), 2);
});

test('ServiceTable: a CANCEL envelope never runs the method', async (t) => {
  const { client, impl, api } = await calcService(t);
  const writer = new FrameWriter();
  writer.write(envelope({ kind: 'CANCEL', id: 1, iface: 'unit.ICalc', method: 'count' }));
  client.ws.send(writer.take());
  await delay(50);
  t.is(await api.count(), 1);
  t.is(impl.calls, 1);
});

test('a request the server sends right behind its WELCOME reaches the client', async (t) => {
  const answers: Promise<Envelope>[] = [];
  const server = await rawServer(t, (ws) => {
    const socket = (ws as unknown as { _socket: net.Socket })._socket;
    // Hold the socket's writes from HELLO on, so WELCOME and the request leave in one TCP write.
    ws.once('message', () => socket.cork());
    acceptHandshake(ws, identity('eager')).then((remote) => {
      const peer = new Peer(ws, remote, { onRequest: () => {} });
      t.teardown(() => peer.close());
      answers.push(peer.request(outgoing({ method: 'hello-client', deadline: Date.now() + 2000 })));
      setImmediate(() => setImmediate(() => socket.uncork()));
    });
  });
  const seen: string[] = [];
  await dial(t, server.url, {
    onRequest: (env, peer) => {
      seen.push(env.method);
      peer.reply(env, 'RESPONSE', Buffer.from('hi server'));
    },
  });
  await until(() => answers.length === 1);
  const answer = await answers[0]!;
  t.deepEqual(answer.payload, Buffer.from('hi server'));
  t.deepEqual(seen, ['hello-client']);
});
