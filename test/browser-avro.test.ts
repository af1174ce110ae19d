// The browser client's Avro codec must agree byte for byte with avsc (which the cluster uses).
import test from 'ava';
import avro from 'avsc';
import { AvroCodec } from '../src/client/browser/avro.ts';
import { ENVELOPE_SCHEMA } from '../src/runtime/wire/schema-json.ts';

const types = [{ type: 'enum', name: 'Mood', symbols: ['HAPPY', 'SAD'] }, { type: 'fixed', name: 'Id', size: 4 }];
const schema = {
  type: 'record',
  name: 'Everything',
  fields: [
    { name: 'n', type: 'int' },
    { name: 'big', type: 'long' },
    { name: 'x', type: 'double' },
    { name: 'f', type: 'float' },
    { name: 'ok', type: 'boolean' },
    { name: 's', type: 'string' },
    { name: 'b', type: 'bytes' },
    { name: 'mood', type: 'Mood' },
    { name: 'id', type: 'Id' },
    { name: 'tags', type: { type: 'array', items: 'string' } },
    { name: 'counts', type: { type: 'map', values: 'long' } },
    { name: 'maybe', type: ['null', 'string'] },
    { name: 'nested', type: { type: 'record', name: 'Inner', fields: [{ name: 'y', type: 'int' }] } },
  ],
};
const value = {
  n: -42,
  big: 2 ** 40 + 7,
  x: Math.PI,
  f: 1.5,
  ok: true,
  s: 'grüße 🐨',
  b: new Uint8Array([0, 255, 7]),
  mood: 'SAD',
  id: new Uint8Array([1, 2, 3, 4]),
  tags: ['a', 'b'],
  counts: { one: 1, minus: -1 },
  maybe: 'yes',
  nested: { y: 9 },
};

test('encodes exactly as avsc does, and decodes what avsc encodes', (t) => {
  const ours = new AvroCodec(schema, types);
  const theirs = avro.Type.forSchema(schema as avro.Schema, { registry: Object.fromEntries(types.map((x) => [x.name, avro.Type.forSchema(x as avro.Schema)])) });
  const theirValue = { ...value, b: Buffer.from(value.b), id: Buffer.from(value.id) };
  const bytes = ours.encode(value);
  t.deepEqual(Buffer.from(bytes), theirs.toBuffer(theirValue));
  const back = ours.decode(theirs.toBuffer({ ...theirValue, maybe: null })).value as Record<string, unknown>;
  t.is(back.maybe, null);
  t.is(back.big, 2 ** 40 + 7);
  t.is(back.s, 'grüße 🐨');
  t.deepEqual(back.counts, { one: 1, minus: -1 });
});

test('envelopes round-trip with the wire schema', (t) => {
  const codec = new AvroCodec(ENVELOPE_SCHEMA);
  const env = { kind: 'PUSH', id: 0, iface: 'IRoom', key: 'x', method: '', chain: '', deadline: 0, epoch: 0, headers: { h: 'v' }, payload: new Uint8Array([4, 104, 105]) };
  const bytes = codec.encode(env);
  t.deepEqual(codec.decode(bytes).value, env);
  t.deepEqual(Buffer.from(bytes), avro.Type.forSchema(ENVELOPE_SCHEMA as avro.Schema).toBuffer({ ...env, payload: Buffer.from(env.payload) }));
  t.throws(() => codec.decode(bytes.subarray(0, 5)), { instanceOf: RangeError });
});
