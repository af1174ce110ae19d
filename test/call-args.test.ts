// `koala call` argument parsing: command-line words → values of the method's Avro parameter types.
import test from 'ava';
import { CliError } from '../src/cli/base-command.ts';
import { parseArg, toPrintableJson } from '../src/cli/call-args.ts';
import { typeForSchema } from '../src/runtime/interface/avro.ts';

/** Parses `word` for a parameter `p` of `schema`, as plain data (avsc records are class instances). */
function parse(schema: unknown, word: string): unknown {
  const value = parseArg('p', typeForSchema(schema), word);
  return value !== null && typeof value === 'object' && !Buffer.isBuffer(value) ? JSON.parse(JSON.stringify(value)) : value;
}

/** The CliError parseArg throws; it must be a usage error (exit code 2) with a hint. */
function failure(t: import('ava').ExecutionContext, schema: unknown, word: string, param = 'p'): CliError {
  const error = t.throws(() => parseArg(param, typeForSchema(schema), word), { instanceOf: CliError }) as CliError;
  t.is(error.exitCode, 2);
  t.regex(error.hint ?? '', /as JSON/);
  return error;
}

test('string: taken as-is, whatever it looks like', (t) => {
  for (const word of ['hello', '', '42', 'null', 'true', '{"a":1}', ' spaced ', 'ünïcødé']) t.is(parse('string', word), word);
});

test('int and long: integers within range', (t) => {
  t.is(parse('int', '42'), 42);
  t.is(parse('int', '-7'), -7);
  t.is(parse('int', '0'), 0);
  t.is(parse('int', '2147483647'), 2147483647);
  t.is(parse('int', '-2147483648'), -2147483648);
  t.is(parse('long', '9007199254740990'), 9007199254740990);
  t.is(parse('long', '-1234567890123'), -1234567890123);
});

test('int: a bad word and an out-of-range value, with exact messages', (t) => {
  t.is(failure(t, 'int', 'abc', 'count').message, 'argument "count" must be int: not an integer (got "abc")');
  t.is(failure(t, 'int', '2147483648', 'count').message, 'argument "count" must be int: out of range (got "2147483648")');
  for (const word of ['1.5', '1e3', '', ' 1', '+1', '0x10', 'NaN']) failure(t, 'int', word);
  t.is(failure(t, 'long', '9007199254740993').message, 'argument "p" must be long: out of range (got "9007199254740993")');
});

test('float and double: any JavaScript number', (t) => {
  t.is(parse('double', '3.25'), 3.25);
  t.is(parse('double', '-1e-3'), -0.001);
  t.is(parse('float', '7'), 7);
  t.is(parse('double', 'Infinity'), Number.POSITIVE_INFINITY);
  t.is(failure(t, 'double', 'pi').message, 'argument "p" must be double: not a number (got "pi")');
  failure(t, 'float', '');
  failure(t, 'float', '   ');
});

test('boolean and null: only their literal words', (t) => {
  t.is(parse('boolean', 'true'), true);
  t.is(parse('boolean', 'false'), false);
  t.is(failure(t, 'boolean', 'yes').message, 'argument "p" must be boolean: use true or false (got "yes")');
  failure(t, 'boolean', 'TRUE');
  failure(t, 'boolean', '1');
  t.is(parse('null', 'null'), null);
  t.is(failure(t, 'null', '').message, 'argument "p" must be null: use null (got "")');
});

test('bytes: the word as UTF-8', (t) => {
  t.deepEqual(parse('bytes', 'héllo'), Buffer.from('héllo', 'utf8'));
  t.deepEqual(parse('bytes', ''), Buffer.alloc(0));
});

test('enum: one of its symbols', (t) => {
  const mood = { type: 'enum', name: 'Mood', symbols: ['HAPPY', 'SAD'] };
  t.is(parse(mood, 'SAD'), 'SAD');
  t.is(failure(t, mood, 'happy', 'mood').message, 'argument "mood" must be enum: one of ["HAPPY","SAD"] (got "happy")');
});

const item = {
  type: 'record',
  name: 'Item',
  fields: [
    { name: 'sku', type: 'string' },
    { name: 'qty', type: 'int' },
    { name: 'note', type: ['null', 'string'], default: null },
  ],
};

test('record: JSON, defaults filled in', (t) => {
  t.deepEqual(parse(item, '{"sku":"a-1","qty":2,"note":"gift"}'), { sku: 'a-1', qty: 2, note: 'gift' });
  t.deepEqual(parse(item, '{"sku":"a-1","qty":2}'), { sku: 'a-1', qty: 2, note: null });
  t.is(failure(t, item, '{"sku":"a-1"', 'item').message, 'argument "item" must be record: not valid JSON (got "{\\"sku\\":\\"a-1\\"")');
  t.is(failure(t, item, '{"sku":"a-1","qty":"two"}').message, 'argument "p" must be record: JSON does not match the schema (got "{\\"sku\\":\\"a-1\\",\\"qty\\":\\"two\\"}")');
  failure(t, item, '{"qty":2}');
  failure(t, item, '[]');
  failure(t, item, 'a-1');
});

test('array and map: JSON', (t) => {
  t.deepEqual(parse({ type: 'array', items: 'int' }, '[1,2,3]'), [1, 2, 3]);
  t.deepEqual(parse({ type: 'array', items: 'int' }, '[]'), []);
  t.deepEqual(parse({ type: 'array', items: item }, '[{"sku":"x","qty":1}]'), [{ sku: 'x', qty: 1, note: null }]);
  t.deepEqual(parse({ type: 'array', items: ['null', 'string'] }, '["a",null]'), ['a', null]);
  failure(t, { type: 'array', items: 'int' }, '[1,"x"]');
  failure(t, { type: 'array', items: 'int' }, '1,2');
  t.deepEqual(parse({ type: 'map', values: 'int' }, '{"a":1,"b":2}'), { a: 1, b: 2 });
  t.deepEqual(parse({ type: 'map', values: 'string' }, '{}'), {});
  failure(t, { type: 'map', values: 'int' }, '{"a":"one"}');
  failure(t, { type: 'map', values: 'int' }, '[1]');
});

test('union ["null","string"]: a bare word is the string, null is null', (t) => {
  const optional = ['null', 'string'];
  t.is(parse(optional, 'hello'), 'hello');
  t.is(parse(optional, 'two words'), 'two words');
  t.is(parse(optional, 'null'), null);
  t.is(parse(optional, '"null"'), 'null', 'a quoted null is the string');
  t.is(parse(optional, '42'), '42', 'a number-looking word is still the string');
  t.is(parse(optional, 'true'), 'true');
  t.is(parse(optional, '{"a":1}'), '{"a":1}');
  t.is(parse(optional, ''), '');
});

test('other unions: the value picks the branch; failures name the branches', (t) => {
  t.is(parse(['null', 'int'], '5'), 5);
  t.is(parse(['null', 'int'], 'null'), null);
  t.is(failure(t, ['null', 'int'], 'abc', 'limit').message, 'argument "limit" must be null or int: not valid JSON (got "abc")');
  t.is(failure(t, ['null', 'int'], '1.5', 'limit').message, 'argument "limit" must be null or int: JSON does not match the schema (got "1.5")');
  t.deepEqual(parse(['null', item], '{"sku":"s","qty":1}'), { sku: 's', qty: 1, note: null });
  t.regex(failure(t, ['null', item], '{"sku":1}').message, /must be null or Item:/);
  t.is(parse(['string', 'int'], '5'), 5);
  t.is(parse(['string', 'int'], 'five'), 'five');
  t.is(parse(['boolean', 'string'], 'true'), true);
});

test('toPrintableJson: results as JSON, bytes as base64', (t) => {
  t.is(toPrintableJson({ a: 1, b: [true, null] }, false), '{"a":1,"b":[true,null]}');
  t.is(toPrintableJson({ data: Buffer.from('hi') }, false), '{"data":"aGk="}');
  t.is(toPrintableJson(undefined, false), 'null');
  t.is(toPrintableJson({ a: 1 }, true), '{\n  "a": 1\n}');
});
