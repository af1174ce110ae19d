// Interfaces: compile-time inference (tsc on fixtures that must and must not type-check) and the
// runtime side (defineInterface, interfaceFromIdl, createProxy, canonicalKey).
import test from 'ava';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineInterface, interfaceFromIdl } from '../src/runtime/interface/interface.ts';
import { canonicalKey, createProxy, type Invoker } from '../src/runtime/interface/proxy.ts';
import { encodeArgs, methodOf } from '../src/runtime/wire/rpc.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = path.join(ROOT, 'test/fixtures/types');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

// ---- compile time ------------------------------------------------------------------------------

let tmp = '';
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'koala-types-'));
});
test.after.always(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// tsc processes are heavy; a few at a time keep the whole file well under 20 s on two cores.
let running = 0;
const waiting: (() => void)[] = [];
async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 3) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

interface Diagnostic {
  file: string;
  line: number;
  code: string;
  text: string;
}

/** Type-checks one fixture with the project's compiler options and nothing else. */
function typecheck(fixture: string): Promise<{ exitCode: number; diagnostics: Diagnostic[]; output: string }> {
  return limited(async () => {
    const file = path.join(FIXTURES, fixture);
    const config = path.join(tmp, `${fixture}.tsconfig.json`);
    await writeFile(
      config,
      JSON.stringify({
        extends: path.join(ROOT, 'tsconfig.json'),
        // The config lives outside the project: point type lookup back at the project's node_modules.
        compilerOptions: { typeRoots: [path.join(ROOT, 'node_modules/@types')] },
        files: [file],
        include: [],
      }),
    );
    return new Promise((resolve) => {
      execFile(process.execPath, [TSC, '--noEmit', '--pretty', 'false', '-p', config], { cwd: ROOT }, (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        const diagnostics: Diagnostic[] = [];
        for (const m of output.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+): (.*)$/gm)) {
          diagnostics.push({ file: path.resolve(ROOT, m[1]!), line: Number(m[2]), code: m[3]!, text: m[4]! });
        }
        const exitCode = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ exitCode, diagnostics, output });
      });
    });
  });
}

test('type fixtures: good.ts type-checks (records, enums, unions, arrays, maps, named types, one-way)', async (t) => {
  const result = await typecheck('good.ts');
  t.is(result.exitCode, 0, result.output);
  t.deepEqual(result.diagnostics, []);
});

// Tests must be declared synchronously: list the fixtures without awaiting.
const badFixtures = readdirSync(FIXTURES).filter((f) => f.startsWith('bad-') && f.endsWith('.ts')).sort();

test('there are bad type fixtures, and the project build leaves them out', async (t) => {
  t.true(badFixtures.length >= 8, badFixtures.join(', '));
  const tsconfig = JSON.parse(await readFile(path.join(ROOT, 'tsconfig.json'), 'utf8')) as { exclude: string[] };
  t.true(tsconfig.exclude.includes('test/fixtures/types/bad-*'));
});

for (const fixture of badFixtures) {
  test(`type fixtures: ${fixture} fails to type-check on its marked line`, async (t) => {
    const source = await readFile(path.join(FIXTURES, fixture), 'utf8');
    const marked = source.split('\n').flatMap((line, i) => (line.includes('// expect-error') ? [i + 1] : []));
    t.is(marked.length, 1, 'each bad fixture marks exactly one line');
    const result = await typecheck(fixture);
    t.not(result.exitCode, 0, `tsc accepted ${fixture}:\n${result.output}`);
    t.true(result.diagnostics.length > 0, result.output);
    const file = path.join(FIXTURES, fixture);
    // One mistake → errors only there: not in the shared interface, not elsewhere in the file.
    t.deepEqual(
      result.diagnostics.map((d) => `${path.relative(ROOT, d.file)}:${d.line}`),
      result.diagnostics.map(() => `${path.relative(ROOT, file)}:${marked[0]}`),
      result.output,
    );
  });
}

// ---- defineInterface ---------------------------------------------------------------------------

const echoProtocol = {
  protocol: 'IEcho',
  messages: {
    echo: { request: [{ name: 'msg', type: 'string' }], response: 'string' },
    count: { request: [], response: 'int' },
  },
} as const;

test('defineInterface: name, namespace, messages, options, frozen', (t) => {
  const plain = defineInterface(echoProtocol);
  t.is(plain.name, 'IEcho');
  t.is(plain.protocol, echoProtocol);
  t.deepEqual(plain.options, {});
  t.deepEqual(
    plain.service.messages.map((m) => m.name),
    ['echo', 'count'],
  );
  t.true(Object.isFrozen(plain));
  const namespaced = defineInterface({ ...echoProtocol, namespace: 'game.chat' }, { reentrant: false, stateless: true });
  t.is(namespaced.name, 'game.chat.IEcho');
  t.deepEqual(namespaced.options, { reentrant: false, stateless: true });
});

test('defineInterface: invalid names are rejected', (t) => {
  for (const protocol of ['bad name', '1Player', 'I-Player', 'a..b']) {
    t.throws(() => defineInterface({ protocol, messages: {} }), { message: /invalid name/ }, protocol);
  }
  t.throws(() => defineInterface({ protocol: '', messages: {} }));
  t.throws(() => defineInterface({ protocol: 'IPlayer', namespace: 'my-game', messages: {} }), { message: /invalid name/ });
  // Broken protocols fail at definition time, not at the first call.
  t.throws(() => defineInterface({ protocol: 'I', messages: { m: { request: [{ name: 'x', type: 'NoSuchType' }], response: 'int' } } }), { message: /NoSuchType/ });
});

test('defineInterface: the fingerprint is a stable MD5 of the protocol and follows its changes', (t) => {
  const a = defineInterface(echoProtocol);
  const b = defineInterface(JSON.parse(JSON.stringify(echoProtocol)) as typeof echoProtocol);
  t.regex(a.fingerprint, /^[0-9a-f]{32}$/);
  t.is(a.fingerprint, b.fingerprint);
  const changed = defineInterface({ ...echoProtocol, messages: { ...echoProtocol.messages, reset: { request: [], response: 'null' } } });
  t.not(changed.fingerprint, a.fingerprint);
  t.not(defineInterface({ ...echoProtocol, namespace: 'x' }).fingerprint, a.fingerprint);
});

// ---- interfaceFromIdl --------------------------------------------------------------------------

test('interfaceFromIdl: an .avdl file becomes the same protocol as its JSON form', (t) => {
  const url = new URL('fixtures/types/chat.avdl', import.meta.url);
  const chat = interfaceFromIdl(url);
  t.is(chat.name, 'chat.IChat');
  const again = interfaceFromIdl(fileURLToPath(url), { reentrant: false });
  t.is(again.fingerprint, chat.fingerprint);
  t.deepEqual(again.options, { reentrant: false });
  t.deepEqual(chat.protocol, {
    protocol: 'IChat',
    doc: 'A chat room, written in Avro IDL.',
    namespace: 'chat',
    types: [
      { type: 'enum', name: 'Mood', symbols: ['HAPPY', 'SAD'] },
      {
        type: 'record',
        name: 'Message',
        fields: [
          { name: 'from', type: 'string' },
          { name: 'text', type: 'string' },
          { name: 'at', type: 'long' },
          { name: 'mood', type: ['null', 'Mood'], default: null },
        ],
      },
    ],
    messages: {
      post: { request: [{ name: 'message', type: 'Message' }], response: 'int', doc: 'Posts a message; returns how many the room holds.' },
      history: { request: [{ name: 'limit', type: ['null', 'int'] }], response: { type: 'array', items: 'Message' } },
      counts: { request: [], response: { type: 'map', values: 'int' } },
      clear: { request: [], response: 'null' },
      ping: { request: [{ name: 'who', type: 'string' }], response: 'null', 'one-way': true },
    },
  });
  const messages = Object.fromEntries(chat.service.messages.map((m) => [m.name, m]));
  t.deepEqual(Object.keys(messages), ['post', 'history', 'counts', 'clear', 'ping']);
  t.is(messages.post!.doc, 'Posts a message; returns how many the room holds.');
  t.deepEqual(
    messages.post!.requestType.fields.map((f) => f.name),
    ['message'],
  );
  // `oneway` makes a message one-way; a `void` result alone does not (Avro IDL semantics).
  t.true(messages.ping!.oneWay);
  t.false(messages.clear!.oneWay);
  t.false(messages.post!.oneWay);
  // The parsed types encode calls like any other interface.
  const post = methodOf(chat, 'post');
  t.true(encodeArgs(chat, post, [{ from: 'a', text: 'hi', at: 1, mood: 'HAPPY' }]).length > 0);
});

test('interfaceFromIdl: a missing file or broken IDL fails clearly', (t) => {
  t.throws(() => interfaceFromIdl(path.join(FIXTURES, 'nope.avdl')), { code: 'ENOENT' });
});

// ---- proxies and ids -----------------------------------------------------------------------------

test('createProxy: one method per message, routed through the invoker with the canonical key', async (t) => {
  const IEcho = defineInterface(echoProtocol);
  const calls: { iface: string; key: string; method: string; args: unknown[] }[] = [];
  const invoke: Invoker = async (iface, key, message, args) => {
    calls.push({ iface: iface.name, key, method: message.name, args });
    return message.name === 'echo' ? `echo:${String(args[0])}` : 7;
  };
  const proxy = createProxy(IEcho, 42, invoke);
  t.is(typeof proxy.echo, 'function');
  t.is(typeof proxy.count, 'function');
  t.false('reset' in proxy, 'no methods beyond the messages');
  const echoed: string = await proxy.echo('hi');
  t.is(echoed, 'echo:hi');
  t.is(await proxy.count(), 7);
  t.deepEqual(calls, [
    { iface: 'IEcho', key: '42', method: 'echo', args: ['hi'] },
    { iface: 'IEcho', key: '42', method: 'count', args: [] },
  ]);
  // Proxies of one interface are independent: each keeps its own id and invoker.
  const other = createProxy(IEcho, 'player-7', invoke);
  await other.count();
  await proxy.count();
  t.deepEqual(
    calls.slice(2).map((c) => c.key),
    ['player-7', '42'],
  );
  // Invoker errors reach the caller unchanged.
  const failing = createProxy(IEcho, 'x', () => Promise.reject(new RangeError('nope')));
  await t.throwsAsync(failing.count(), { instanceOf: RangeError, message: 'nope' });
  t.throws(() => createProxy(IEcho, 1.5, invoke), { instanceOf: TypeError });
});

test('canonicalKey: numbers and strings name the same actor; non-integers are refused', (t) => {
  t.is(canonicalKey(1), '1');
  t.is(canonicalKey('1'), '1');
  t.is(canonicalKey(0), '0');
  t.is(canonicalKey(-0), '0');
  t.is(canonicalKey(-17), '-17');
  t.is(canonicalKey(10n), '10');
  t.is(canonicalKey(Number.MAX_SAFE_INTEGER), '9007199254740991');
  t.is(canonicalKey(2n ** 64n), '18446744073709551616');
  t.is(canonicalKey(''), '');
  t.is(canonicalKey('player:ü'), 'player:ü');
  t.throws(() => canonicalKey(1.5), { instanceOf: TypeError, message: 'actor id 1.5 is not an integer or a string' });
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -0.1]) t.throws(() => canonicalKey(bad), { instanceOf: TypeError });
});

test('canonicalKey: integers beyond 2^53 are refused instead of silently naming another actor', (t) => {
  // 2^53 + 1 cannot be a number: it would round to 2^53, i.e. someone else's actor; and 1e21 would
  // print as "1e+21", not as the digits its bigint twin has.
  t.throws(() => canonicalKey(2 ** 53), { instanceOf: TypeError, message: /bigint or a string/ });
  t.throws(() => canonicalKey(1e21), { instanceOf: TypeError });
  t.throws(() => canonicalKey(-(2 ** 60)), { instanceOf: TypeError });
  t.is(canonicalKey(2n ** 53n + 1n), '9007199254740993');
});
