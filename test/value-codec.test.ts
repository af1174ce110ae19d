// The hand-written Avro coding of the hot paths (envelope fields, primitive arguments and results,
// calls forwarded by copying bytes) against avsc: the bytes must be identical, both ways.
import test from 'ava';
import avro from 'avsc';
import { defineInterface } from '../src/runtime/interface/interface.ts';
import type { AvroType } from '../src/runtime/interface/avro.ts';
import { FrameWriter, NO_HEADERS, RAW, readFrame, type DecodedEnvelope } from '../src/runtime/wire/frame.ts';
import { decodeArgs, encodeArgs, methodOf } from '../src/runtime/wire/rpc.ts';
import { envelopeType } from '../src/runtime/wire/schemas.ts';
import { decodeArguments, decodeValue, encodeValue, methodCodec, valueCodec } from '../src/runtime/wire/value-codec.ts';
import { longSize, Reader, RepeatedString, RepeatedStringWriter, ShortStrings, writeLong, writeString, type Utf8Buffer } from '../src/runtime/wire/avro-binary.ts';

const SAMPLES: Record<string, unknown[]> = {
  null: [null],
  boolean: [true, false],
  int: [0, 1, -1, 63, 64, -64, -65, 2 ** 31 - 1, -(2 ** 31)],
  long: [0, 1, -1, 2 ** 26, 2 ** 31, 2 ** 32, 2 ** 36 - 1, 2 ** 36, 1_763_000_000_000_123, 2 ** 52, -(2 ** 52), 2 ** 53 - 2, -(2 ** 53 - 2)],
  float: [0, 1.5, -2.25, 3.4e38],
  double: [0, Math.PI, -1e300, Number.MIN_VALUE],
  // 1 to 4 bytes: ASCII is read in JS, anything else natively (é, €, 🐨 are 2, 3 and 4 bytes).
  string: ['', 'a', '7', '42', 'abc', 'abcd', 'é', 'aé', '€', 'a€', '🐨', '\x7f', 'ascii only', 'x'.repeat(63), 'x'.repeat(64), 'x'.repeat(300), 'ünïcödé 🐨', '🐨'.repeat(40)],
  bytes: [Buffer.alloc(0), Buffer.from([0, 1, 255]), Buffer.alloc(200, 7)],
};

function answerOf(frame: Buffer, spans = false): DecodedEnvelope {
  const out: DecodedEnvelope[] = [];
  readFrame(frame, (e) => out.push(e), spans);
  return out[0]!;
}

for (const [typeName, values] of Object.entries(SAMPLES)) {
  test(`${typeName}: results encoded in place are avsc's bytes, and decode back`, (t) => {
    const type = avro.Type.forSchema(typeName as avro.Schema) as unknown as AvroType;
    for (const value of values) {
      const writer = new FrameWriter();
      writer.writeAnswerValue('RESPONSE', 9, valueCodec(type), value);
      const env = answerOf(writer.take());
      t.deepEqual(env.payload, type.toBuffer(value), `${typeName} ${String(value).slice(0, 20)}`);
      t.deepEqual(decodeValue(type, env.payload), type.fromBuffer(type.toBuffer(value)));
    }
  });
}

// Values of every kind, valid for some primitive type or for none: the hand-written checks must
// say what avsc's isValid says of each (an argument that passes them is encoded without avsc).
const PROBES: unknown[] = [null, undefined, true, false, 0, -0, 1, -1, 1.5, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 53, 9007199254740990, 9007199254740991, NaN, Infinity, -Infinity, '', '1', 'x', 1n, Buffer.from('ab'), new Uint8Array(2), [], {}, () => 1];

for (const typeName of Object.keys(SAMPLES)) {
  test(`${typeName}: the hand-written validity check agrees with avsc's`, (t) => {
    const type = avro.Type.forSchema(typeName as avro.Schema) as unknown as AvroType;
    const codec = valueCodec(type);
    for (const value of [...PROBES, ...SAMPLES[typeName]!]) {
      let avsc: boolean;
      try {
        avsc = type.isValid(value);
      } catch {
        avsc = false; // avsc's int check throws for a bigint; it is not an int either way
      }
      t.is(codec.valid(value), avsc, `${typeName} ${typeof value} ${String(value).slice(0, 20)}`);
    }
  });
}

const IEcho = defineInterface({ protocol: 'IEcho', messages: { echo: { request: [{ name: 'text', type: 'string' }], response: 'string' } } });

const IMixed = defineInterface({
  protocol: 'IMixed',
  messages: {
    all: {
      request: [
        { name: 'a', type: 'int' },
        { name: 'b', type: 'string' },
        { name: 'c', type: 'boolean' },
        { name: 'd', type: 'double' },
        { name: 'e', type: 'bytes' },
        { name: 'f', type: 'long' },
      ],
      response: 'null',
    },
    rec: { request: [{ name: 'p', type: { type: 'record', name: 'P', fields: [{ name: 'x', type: 'int' }] } }, { name: 'n', type: 'int' }], response: 'int' },
  },
});

test('arguments written into the frame equal encodeArgs, for primitive and record parameters alike', (t) => {
  const cases: [string, unknown[]][] = [
    ['all', [-5, 'héllo', true, 2.5, Buffer.from([1, 2, 3]), 2 ** 40]],
    ['all', [2 ** 31 - 1, 'y'.repeat(500), false, -0.125, Buffer.alloc(100, 1), -(2 ** 50)]],
    ['rec', [{ x: 7 }, 3]],
  ];
  for (const [name, args] of cases) {
    const message = methodOf(IMixed, name);
    const writer = new FrameWriter();
    writer.writeArgs('REQUEST', 1, { iface: 'IMixed', key: 'k', method: name, chain: '', headers: {} }, 5000, 0, methodCodec(message), args);
    const env = answerOf(writer.take());
    t.deepEqual(env.payload, encodeArgs(IMixed, message, args));
    // Records come back as avsc's record classes: compare them as plain data.
    const plain = (v: unknown[]) => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (Buffer.isBuffer(x) ? [...x] : x))) as unknown;
    t.deepEqual(plain(decodeArgs(message, env.payload)), plain(args));
    t.deepEqual(plain(decodeArguments(message, env.payload)), plain(args));
  }
});

test('arguments that do not decode are BAD_ARGUMENTS, with trailing or missing bytes alike', (t) => {
  const message = methodOf(IMixed, 'all');
  const good = encodeArgs(IMixed, message, [1, 'a', true, 1, Buffer.alloc(1), 1]);
  t.throws(() => decodeArgs(message, good.subarray(0, good.length - 1)), { message: /do not decode/ });
  t.throws(() => decodeArgs(message, Buffer.concat([good, Buffer.from([0])])), { message: /do not decode: trailing data/ });
});

test('a forwarded call is the original with a new id, deadline and epoch, byte for byte', (t) => {
  const original = {
    kind: 'REQUEST' as const,
    id: 77,
    iface: 'IPlayer',
    key: 'ünï/1',
    method: 'echo',
    chain: 'c.1',
    deadline: 1500,
    epoch: 0,
    headers: { 'koala-path': 'IA/1 IB/2' },
    payload: Buffer.from([6, 4, 104, 105]),
  };
  const writer = new FrameWriter();
  writer.write(original);
  t.is(answerOf(writer.take())[RAW], undefined, 'no span unless asked for');
  writer.write(original);
  const received = answerOf(writer.take(), true);
  t.truthy(received[RAW]);
  writer.forwardCall('REQUEST', 3, received[RAW]!, 900, 1_763_000_000_000_123);
  const forwarded = writer.take();
  t.deepEqual(forwarded, envelopeType.toBuffer({ ...original, id: 3, deadline: 900, epoch: 1_763_000_000_000_123 }));
});

test('calls and answers passed on are copied byte for byte, short (a JS loop) or long (a native copy)', (t) => {
  for (const size of [0, 1, 62, 63, 64, 65, 1000]) {
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 37) & 0xff;
    const call = { kind: 'REQUEST' as const, id: 5, iface: 'I', key: 'k'.repeat(size), method: 'm', chain: '', deadline: 0, epoch: 0, headers: {}, payload };
    const writer = new FrameWriter();
    writer.write(call);
    const received = answerOf(writer.take(), true);
    writer.forwardCall('REQUEST', 6, received[RAW]!, 10, 0);
    t.deepEqual(writer.take(), envelopeType.toBuffer({ ...call, id: 6, deadline: 10 }), `call, ${size} bytes`);
    const frame = Buffer.concat([Buffer.from([1, 2, 3]), payload]);
    writer.writeAnswerBytes('RESPONSE', 7, frame, 3, frame.length);
    t.deepEqual(answerOf(writer.take()).payload, payload, `answer, ${size} bytes`);
  }
});

test('answers are lean: kind, id and payload, nothing else; they carry no span', (t) => {
  const writer = new FrameWriter();
  writer.writeAnswer('ERROR', 12, Buffer.from('boom'));
  const frame = writer.take();
  t.is(frame.length, 2 + 7 + 5);
  const env = answerOf(frame, true);
  t.like(env, { kind: 'ERROR', id: 12, iface: '', key: '', method: '', chain: '', deadline: 0, epoch: 0 });
  t.is(env[RAW], undefined);
});

test('a payload of 64 bytes or more, encoded in place, moves to make room for its longer length', (t) => {
  const type = avro.Type.forSchema('string') as unknown as AvroType<string>;
  const writer = new FrameWriter();
  // Fill the writer close to its 64 KiB end so that the move needs to grow the buffer too.
  writer.writeAnswer('RESPONSE', 1, Buffer.alloc(64 * 1024 - 40));
  const big = 'z'.repeat(5000);
  writer.writeAnswerValue('RESPONSE', 2, valueCodec(type), big);
  writer.writeAnswerValue('RESPONSE', 3, valueCodec(type), 'small');
  const out: DecodedEnvelope[] = [];
  readFrame(writer.take(), (e) => out.push(e));
  t.deepEqual(out.map((e) => e.id), [1, 2, 3]);
  t.is(decodeValue(type, out[1]!.payload), big);
  t.is(decodeValue(type, out[2]!.payload), 'small');
});

test('a value that does not encode leaves the batch as it was', (t) => {
  const type = avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 'x', type: 'int' }] }) as unknown as AvroType;
  const writer = new FrameWriter();
  writer.writeAnswer('RESPONSE', 1, Buffer.from('ok'));
  const size = writer.size;
  t.throws(() => writer.writeAnswerValue('RESPONSE', 2, valueCodec(type), null));
  t.is(writer.size, size);
  t.is(writer.count, 1);
});

test('answers read without an envelope object: the payload range is found past any fields, lean or not', (t) => {
  const writer = new FrameWriter();
  writer.writeAnswer('RESPONSE', 1, Buffer.from('lean'));
  // An answer from a client that copies the request's fields (allowed: they are ignored).
  writer.write({ kind: 'ERROR', id: 2, iface: 'IPlayer', key: 'ünï', method: 'echo', chain: 'c.1', deadline: 5, epoch: 2 ** 40, headers: { a: 'b', c: 'd' }, payload: Buffer.from('full') });
  writer.writeAnswerBytes('REDIRECT', 3, Buffer.from('..passed on..'), 2, 11);
  writer.write({ kind: 'REQUEST', id: 4, iface: 'I', key: 'k', method: 'm', chain: '', deadline: 0, epoch: 0, headers: {}, payload: Buffer.from('call') });
  const answers: [string, number, string][] = [];
  const calls: string[] = [];
  readFrame(
    writer.take(),
    (env) => calls.push(`${env.kind} ${env.id} ${env.payload.toString()}`),
    false,
    (kind, id, frame, start, end) => answers.push([kind, id, frame.toString('latin1', start, end)]),
  );
  t.deepEqual(answers, [
    ['RESPONSE', 1, 'lean'],
    ['ERROR', 2, 'full'],
    ['REDIRECT', 3, 'passed on'],
  ]);
  t.deepEqual(calls, ['REQUEST 4 call'], 'calls still arrive as envelopes');
  // A truncated answer throws, as a truncated envelope does.
  const frame = (() => {
    writer.writeAnswer('RESPONSE', 1, Buffer.from('abc'));
    return writer.take();
  })();
  for (let cut = 1; cut < frame.length; cut++) t.throws(() => readFrame(frame.subarray(0, cut), () => {}, false, () => {}), undefined, `cut at ${cut}`);
});

test('records of primitive fields (nested too) are encoded by hand with avsc’s bytes; other records fall back to avsc', (t) => {
  const schemas = [
    { type: 'record', name: 'Position', fields: [{ name: 'host', type: 'string' }, { name: 'address', type: 'string' }, { name: 'epoch', type: 'long' }] },
    { type: 'record', name: 'Outer', fields: [{ name: 'in', type: { type: 'record', name: 'Inner', fields: [{ name: 'b', type: 'boolean' }, { name: 'd', type: 'double' }] } }, { name: 's', type: 'string' }] },
    { type: 'record', name: 'WithUnion', fields: [{ name: 'u', type: ['null', 'string'] }, { name: 'n', type: 'int' }] },
  ];
  const values = [
    { host: 'host-1-abc', address: 'ws://127.0.0.1:4000', epoch: 1_763_000_000_000_123 },
    { in: { b: true, d: -2.5 }, s: 'ünï' },
    { u: 'x', n: 3 },
  ];
  schemas.forEach((schema, i) => {
    const type = avro.Type.forSchema(schema as avro.Schema) as unknown as AvroType;
    t.deepEqual(encodeValue(type, values[i]), type.toBuffer(values[i]), schema.name);
    const writer = new FrameWriter();
    writer.writeAnswerValue('RESPONSE', 1, valueCodec(type), values[i]);
    t.deepEqual(answerOf(writer.take()).payload, type.toBuffer(values[i]), `${schema.name} in a frame`);
  });
  // Larger than encodeValue's scratch buffer (4 KiB), by hand and through avsc alike.
  const bigString = avro.Type.forSchema('string') as unknown as AvroType;
  const bigMap = avro.Type.forSchema({ type: 'map', values: 'string' }) as unknown as AvroType;
  t.deepEqual(encodeValue(bigString, 'x'.repeat(10_000)), bigString.toBuffer('x'.repeat(10_000)));
  t.deepEqual(encodeValue(bigMap, { k: 'y'.repeat(20_000) }), bigMap.toBuffer({ k: 'y'.repeat(20_000) }));
});

test('longSize is the length writeLong writes (a payload of 64 bytes or more is prefixed with it)', (t) => {
  const buf = Buffer.alloc(16);
  for (const n of [0, 1, 63, 64, 8191, 8192, 2 ** 20, 2 ** 27, 2 ** 28, 2 ** 34, 2 ** 41, 2 ** 48, 2 ** 53 - 1]) {
    t.is(longSize(n), writeLong(buf, 0, n), `n = ${n}`);
  }
});

test('a string written again copies the bytes it was written as; any other string is encoded anew', (t) => {
  const writer = new RepeatedStringWriter();
  // Repeats, changes, non-ASCII, and one too long to remember (its repeat is encoded again).
  // Every encoded length from 1 to 18 bytes (words are copied for 4 to 16), each written twice.
  const lengths = Array.from({ length: 18 }, (_, i) => 'abcdefghijklmnopq'.slice(0, i)).flatMap((s) => [s, s]);
  const strings = ['IBench', 'IBench', 'ping', 'ping', 'IBench', 'é🐨', 'é🐨', 'x'.repeat(100), 'x'.repeat(100), '', '', 'IBench', ...lengths];
  // At an odd offset into its memory, as a frame buffer from a pool may be.
  const ours = Buffer.alloc(4099).subarray(3) as Utf8Buffer;
  const view = new DataView(ours.buffer, ours.byteOffset, ours.length);
  const plain = Buffer.alloc(4096) as Utf8Buffer;
  let a = 0;
  let b = 0;
  for (const s of strings) {
    a = writer.write(ours, view, a, s);
    b = writeString(plain, b, s);
    t.is(a, b, s.slice(0, 10));
  }
  t.deepEqual(ours.subarray(0, a), plain.subarray(0, b));
});

test('a call whose fields after its key repeat the last call’s is written and read with their bytes copied, and only then', (t) => {
  const method = methodOf(IEcho, 'echo');
  const frozen = Object.freeze({ 'koala-path': 'IA/1 IB/2' });
  const otherFrozen = Object.freeze({ 'koala-path': 'IA/1' });
  const mutable: Record<string, string> = { trace: 'one' };
  const base = { iface: 'IEcho', key: 'k1', method: 'echo', chain: 'q1w2e3r4.t5y', deadline: 29_000, epoch: 0, headers: NO_HEADERS };
  // Each changes one field after the key (or the key), then repeats; the mutable headers change in place.
  const calls: (typeof base & { mutate?: string })[] = [
    base,
    base,
    { ...base, key: 'k2' },
    { ...base, deadline: 28_999 },
    { ...base, deadline: 28_999 },
    { ...base, epoch: 1_763_000_000_000_123 },
    { ...base, chain: 'other-chain.x' },
    { ...base, chain: '' },
    { ...base, headers: frozen },
    { ...base, headers: frozen },
    { ...base, headers: otherFrozen },
    { ...base, headers: mutable },
    { ...base, headers: mutable, mutate: 'two' },
    { ...base, headers: mutable, mutate: 'three, and longer' },
    { ...base, chain: 'x'.repeat(70) },
    { ...base, chain: 'x'.repeat(70) },
    base,
  ];
  const writer = new FrameWriter();
  const expected: Buffer[] = [];
  calls.forEach((c, i) => {
    if (c.mutate !== undefined) mutable.trace = c.mutate;
    writer.writeArgs('REQUEST', i + 1, c, c.deadline, c.epoch, methodCodec(method), ['hi']);
    expected.push(envelopeType.toBuffer({ kind: 'REQUEST', id: i + 1, iface: c.iface, key: c.key, method: c.method, chain: c.chain, deadline: c.deadline, epoch: c.epoch, headers: { ...c.headers }, payload: encodeArgs(IEcho, method, ['hi']) }));
  });
  const frame = writer.take();
  t.deepEqual(frame, Buffer.concat(expected));
  // Read back (the reader also copies repeated fields, from its last call): avsc's values, and spans that forward byte for byte.
  const read: DecodedEnvelope[] = [];
  readFrame(frame, (e) => read.push(e), true);
  t.is(read.length, calls.length);
  read.forEach((env, i) => {
    const want = envelopeType.fromBuffer(expected[i]!);
    for (const field of ['kind', 'id', 'iface', 'key', 'method', 'chain', 'deadline', 'epoch'] as const) t.is(env[field], want[field], `call ${i}: ${field}`);
    t.deepEqual({ ...env.headers }, { ...(want.headers as object) }, `call ${i}: headers`);
    t.deepEqual(env.payload, want.payload, `call ${i}: payload`);
    const again = new FrameWriter();
    again.forwardCall('REQUEST', env.id, env[RAW]!, env.deadline, env.epoch);
    t.deepEqual(again.take(), expected[i], `call ${i}: forwarded`);
  });
});

test('short keys read through the table of known strings are the strings written, whatever shares a slot', (t) => {
  const table = new ShortStrings();
  // More keys than the table has slots, so that slots are shared and keys replace each other; 1 to 8 bytes, ASCII and not.
  const keysWritten = Array.from({ length: 3000 }, (_, i) => (i % 7 === 0 ? `é${i % 100}` : `k${i}`.slice(0, 1 + (i % 8))));
  const buf = Buffer.alloc(16);
  for (let round = 0; round < 3; round++) {
    for (const key of keysWritten) {
      const n = buf.write(key, 2);
      const read = table.read(buf, 2, n);
      if (/^[\x00-\x7f]*$/.test(key)) t.is(read, key);
      else t.is(read, undefined, 'non-ASCII bytes are left to the general path');
    }
  }
  // Through the reader, as a call's key.
  const frame = Buffer.alloc(64) as Utf8Buffer;
  for (const key of ['7', '42', 'player-9', 'é', 'a-longer-key-than-eight', '']) {
    const end = writeString(frame, 0, key);
    const r = new Reader(frame.subarray(0, end));
    t.is(r.known(table), key);
    t.is(r.pos, end);
  }
});

test('a string read again through its RepeatedString is the string written, for every length and after every change', (t) => {
  const cache = new RepeatedString();
  const written = Array.from({ length: 18 }, (_, i) => 'abcdefghijklmnopq'.slice(0, i)).flatMap((s) => [s, s, `${s}é`, s]);
  written.push('x'.repeat(100), 'x'.repeat(100), 'IBench', 'IBench', 'IBenci');
  const frame = Buffer.alloc(8192) as Utf8Buffer;
  let end = 1; // at an odd offset
  for (const s of written) end = writeString(frame, end, s);
  const r = new Reader(frame.subarray(0, end));
  r.pos = 1;
  for (const s of written) t.is(r.repeated(cache), s);
  t.is(r.pos, end);
});
