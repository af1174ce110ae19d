// The cluster manifest: finding it (cosmiconfig), applying KOALA_* environment
// overrides, validating it against manifest.schema.json (ajv) and turning every
// validation error into one readable line.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { cosmiconfig, defaultLoaders, type Loader } from 'cosmiconfig';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type StrategyName = 'load-aware' | 'random' | 'hash' | 'prefer-local';
/** `placement.strategy`: a built-in strategy, or the path of a module (relative to the manifest) that default-exports `defineStrategy(…)`. */
export type StrategySetting = StrategyName | `${string}.${'ts' | 'mts' | 'js' | 'mjs'}`;
export type PlacementProvider = 'embedded' | 'consul';

export interface ConsulSettings {
  address?: string;
  token?: string;
  start?: boolean;
  /** HTTPS to the agents: PEM files relative to the manifest, and the name their certificates carry. */
  tls?: { ca?: string; cert?: string; key?: string; serverName?: string };
}

export interface ConsulSettingsInput extends ConsulSettings {
  lockDelay?: DurationInput;
}

export interface HostGroup {
  name: string;
  replicas: number;
  plugins: string[];
  idleTimeoutMs: number;
}

export type Role = 'gateway' | 'hosts';

export interface GatewayLimits {
  maxFrameBytes: number;
  ratePerSecond: number;
  maxInFlight: number;
  idleTimeoutMs: number;
  maxSessions: number;
}

export interface GatewaySettings {
  host: string;
  port: number;
  requestTimeoutMs: number;
  /** Gateway plugin modules (HTTP routes), as written in the manifest. */
  plugins: string[];
  /** Directory of static files, absolute. */
  static?: string;
  /** PEM files, absolute. */
  tls?: { cert: string; key: string };
  clientSecret?: string;
  /** The HTTP bridge: served unless disabled; with a token, only to requests that bear it. */
  bridge: { enabled: boolean; token?: string };
  login?: { interface: string; method: string };
  session: { timestampWindowMs: number; resumeTtlMs: number };
  limits: GatewayLimits;
}

export interface StorageConfig {
  provider: 'sqlite' | 'postgres' | 'memory' | 'module';
  /** sqlite: the file, as written (relative to the manifest's directory). */
  file: string;
  url?: string;
  module?: string;
  options?: Record<string, unknown>;
}

export interface StorageSettings extends StorageConfig {
  interfaces: Record<string, StorageConfig>;
}

export interface Manifest {
  cluster: string;
  secret?: string;
  logLevel: LogLevel;
  /** What this machine runs; machines sharing a Consul cluster may each run part of it. */
  roles: Role[];
  placement: { provider: PlacementProvider; strategy: StrategySetting; leaseTtlMs: number; consul: ConsulSettings & { lockDelayMs: number } };
  gateway: GatewaySettings;
  hosts: HostGroup[];
  storage: StorageSettings;
}

/** A duration as written in a manifest: milliseconds, or e.g. "500ms", "10s", "1.5m", "2h". */
export type DurationInput = number | `${number}${'ms' | 's' | 'm' | 'h'}`;

export interface HostGroupInput {
  name: string;
  replicas?: number;
  plugins: string[];
  idleTimeout?: DurationInput;
}

/** The manifest as written by the user, before defaults are applied. */
export interface ManifestInput {
  $schema?: string;
  cluster?: string;
  secret?: string;
  logLevel?: LogLevel;
  roles?: Role[];
  placement?: { provider?: PlacementProvider; strategy?: StrategySetting; leaseTtl?: DurationInput; consul?: ConsulSettingsInput };
  gateway?: {
    host?: string;
    port?: number;
    requestTimeout?: DurationInput;
    plugins?: string[];
    static?: string;
    tls?: { cert: string; key: string };
    bridge?: { enabled?: boolean; token?: string };
    clientSecret?: string;
    login?: { interface: string; method?: string };
    session?: { timestampWindow?: DurationInput; resumeTtl?: DurationInput };
    limits?: { maxFrameBytes?: number; ratePerSecond?: number; maxInFlight?: number; idleTimeout?: DurationInput; maxSessions?: number };
  };
  hosts?: HostGroupInput[];
  storage?: Partial<StorageConfig> & { interfaces?: Record<string, Partial<StorageConfig>> };
}

export interface LoadedManifest {
  manifest: Manifest;
  /** Absolute path of the manifest file. loadManifest always sets it; null is for manifests built in memory. */
  filepath: string | null;
  /** Directory that relative paths in the manifest (plugins) are resolved against. */
  root: string;
}

export interface ManifestProblem {
  /** The manifest file, relative to cwd when inside it. */
  file: string;
  /** Where in the manifest, e.g. "hosts[0].replicas", or "(root)". */
  path: string;
  message: string;
}

export class ManifestError extends Error {
  override name = 'ManifestError';
  readonly code = 'MANIFEST_INVALID';
  problems: ManifestProblem[];
  filepath: string;

  constructor(problems: ManifestProblem[], filepath: string) {
    super(problems.map((p) => `${p.file}: ${p.path}: ${p.message}`).join('\n'));
    this.problems = problems;
    this.filepath = filepath;
  }
}

export const MANIFEST_SEARCH_PLACES: string[] = [
  'package.json',
  '.koalarc',
  '.koalarc.json',
  '.koalarc.yaml',
  '.koalarc.yml',
  '.koalarc.js',
  '.koalarc.mjs',
  '.koalarc.ts',
  'koala.config.ts',
  'koala.config.mjs',
  'koala.config.js',
  'koala.config.json',
  'koala.config.yaml',
  'koala.config.yml',
];

/** Identity helper that gives koala.config.ts files type checking and completion. */
export function defineConfig(config: ManifestInput): ManifestInput {
  return config;
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const DURATION_MESSAGE = 'must be a duration like 500ms, 10s, 15m or a number of milliseconds';
const STRATEGY_MESSAGE = 'must be one of "load-aware", "random", "hash", "prefer-local", or the path of a strategy module ending in .ts, .mts, .js or .mjs';

/** Converts a duration (milliseconds, or "500ms", "10s", "1.5m", "2h") to whole milliseconds. */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`invalid duration ${value}: ${DURATION_MESSAGE}`);
    return value;
  }
  const match = DURATION_RE.exec(value);
  if (!match) throw new RangeError(`invalid duration ${JSON.stringify(value)}: ${DURATION_MESSAGE}`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
}

// ---------------------------------------------------------------------------
// Loading

const NOT_FOUND_MESSAGE =
  'no Koala manifest found (looked for koala.config.{ts,mjs,js,json,yaml}, .koalarc*, package.json#koala up to the project root); create one with `koala init`';

// cosmiconfig's own JS loader retries a failed import() with require(), which
// runs the module a second time and replaces the real error with the
// require() one. Node >= 22.18 imports .ts natively (type stripping), so a
// plain import() is all we need for .js, .mjs and .ts.
const importDefault: Loader = async (filepath) => {
  const mod: Record<string, unknown> = await import(pathToFileURL(filepath).href);
  if (!('default' in mod)) throw new Error('the module has no default export; use `export default defineConfig({ ... })`');
  return mod['default'];
};

// js-yaml 5 rejects a document with nothing but comments. We treat that, and
// a document that is just null ("~"), like an empty file: every default
// applies. (cosmiconfig would take null for "no config here" and keep looking.)
const loadYaml: Loader = async (filepath, content) => {
  if (content.split('\n').every((line) => /^\s*(#.*)?$|^(---|\.\.\.)\s*$/.test(line))) return undefined;
  const config: unknown = await defaultLoaders['.yaml']!(filepath, content);
  return config === null ? undefined : config;
};

export async function loadManifest(opts: {
  cwd: string;
  configPath?: string;
  env?: Record<string, string | undefined>;
}): Promise<LoadedManifest> {
  const cwd = path.resolve(opts.cwd);
  const env = opts.env ?? process.env;
  const explorer = cosmiconfig('koala', {
    searchStrategy: 'project',
    searchPlaces: MANIFEST_SEARCH_PLACES,
    loaders: {
      ...defaultLoaders,
      '.js': importDefault,
      '.mjs': importDefault,
      '.ts': importDefault,
      '.yaml': loadYaml,
      '.yml': loadYaml,
      noExt: loadYaml,
    },
    // An empty koala.config.yaml is a manifest that takes every default.
    ignoreEmptySearchPlaces: false,
    cache: false,
  });

  const configPath = opts.configPath === undefined ? undefined : path.resolve(cwd, opts.configPath);
  let result: { config: unknown; filepath: string; isEmpty?: boolean } | null;
  try {
    result = configPath === undefined ? await explorer.search(cwd) : await explorer.load(configPath);
  } catch (error) {
    const file = errorFile(error) ?? configPath ?? cwd;
    throw new ManifestError([{ file: displayPath(file, cwd), path: '(root)', message: loadErrorMessage(error, file) }], file);
  }
  if (result === null) {
    if (configPath === undefined) {
      throw new ManifestError([{ file: cwd, path: '(root)', message: NOT_FOUND_MESSAGE }], cwd);
    }
    // explorer.load() returns null only for a manifest that evaluates to null (JSON `null`).
    result = { config: null, filepath: configPath };
  }

  const filepath = result.filepath;
  const raw = result.isEmpty ? {} : result.config;
  const problems: ManifestProblem[] = [];
  const manifest = check(raw, displayPath(filepath, cwd), env, problems);
  if (!manifest) throw new ManifestError(problems, filepath);
  return { manifest, filepath, root: path.dirname(filepath) };
}

function errorFile(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  // cosmiconfig sets `filepath` on loader errors; fs errors carry `path`.
  const { filepath, path: fsPath } = error as { filepath?: unknown; path?: unknown };
  if (typeof filepath === 'string') return filepath;
  return typeof fsPath === 'string' ? fsPath : undefined;
}

function loadErrorMessage(error: unknown, file: string): string {
  const { code, path: fsPath, message, stack } = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: unknown;
    path?: unknown;
    message?: unknown;
    stack?: unknown;
  };
  // Only when reading the manifest itself failed, not some file a .ts manifest reads.
  if (code === 'ENOENT' && fsPath === file) return 'file not found';
  if (code === 'EISDIR') return 'is a directory, not a manifest file'; // fs gives no path here
  if (typeof message !== 'string') return String(error);
  // cosmiconfig prefixes parser messages with "YAML Error in <file>:\n" and
  // parsers append code frames on later lines; keep the one line that matters.
  const line = message
    .replace(/^(JSON|YAML) Error in [^\n]*:\n/, '')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '');
  if (line === undefined) return String(error);
  // For TypeScript syntax errors Node puts the location only in the stack,
  // as a "<file>:<line>" first line above a code frame.
  const where = typeof stack === 'string' ? /^(.*):(\d+)$/.exec(stack.split('\n', 1)[0] ?? '') : null;
  const fromFile = where !== null && (where[1] === file || where[1] === pathToFileURL(file).href);
  return fromFile ? `${line} (line ${where[2]})` : line;
}

/** The path to show for `file`: relative to cwd when inside it, absolute otherwise. */
function displayPath(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

// ---------------------------------------------------------------------------
// Validation

/** Validates a raw manifest, applying defaults and the given KOALA_* overrides (none by default). */
export function validateManifest(raw: unknown, file: string, env: Record<string, string | undefined> = {}): Manifest {
  const problems: ManifestProblem[] = [];
  const manifest = check(raw, file, env, problems);
  if (!manifest) throw new ManifestError(problems, file);
  return manifest;
}

/** The manifest after ajv has checked it and filled in defaults. */
interface ValidInput {
  cluster: string;
  secret?: string;
  logLevel: LogLevel;
  roles: Role[];
  placement: { provider: PlacementProvider; strategy: StrategySetting; leaseTtl: number | string; consul: ConsulSettings & { lockDelay: number | string } };
  gateway: {
    host: string;
    port: number;
    requestTimeout: number | string;
    plugins: string[];
    static?: string;
    tls?: { cert: string; key: string };
    bridge: { enabled: boolean; token?: string };
    clientSecret?: string;
    login?: { interface: string; method: string };
    session: { timestampWindow: number | string; resumeTtl: number | string };
    limits: { maxFrameBytes: number; ratePerSecond: number; maxInFlight: number; idleTimeout: number | string; maxSessions: number };
  };
  hosts: { name: string; replicas: number; plugins: string[]; idleTimeout: number | string }[];
  storage: StorageSettings;
}

type JsonObject = Record<string, unknown>;

// Environment variable -> manifest property path it overrides.
const ENV_OVERRIDES: [name: string, path: string[]][] = [
  ['KOALA_CLUSTER', ['cluster']],
  ['KOALA_SECRET', ['secret']],
  ['KOALA_LOG_LEVEL', ['logLevel']],
  ['KOALA_GATEWAY_PORT', ['gateway', 'port']],
  ['KOALA_GATEWAY_HOST', ['gateway', 'host']],
  ['KOALA_CLIENT_SECRET', ['gateway', 'clientSecret']],
  ['KOALA_BRIDGE_TOKEN', ['gateway', 'bridge', 'token']],
  ['KOALA_STORAGE_URL', ['storage', 'url']],
  ['KOALA_PLACEMENT', ['placement', 'provider']],
  ['KOALA_CONSUL_ADDRESS', ['placement', 'consul', 'address']],
  ['KOALA_CONSUL_TOKEN', ['placement', 'consul', 'token']],
];

// Values that must never be echoed back in an error message.
const SECRET_PATHS = new Set(['secret', 'placement.consul.token', 'gateway.clientSecret', 'gateway.bridge.token', 'storage.url']);

let validator: ValidateFunction<ValidInput> | undefined;

function getValidator(): ValidateFunction<ValidInput> {
  if (!validator) {
    const schema: unknown = JSON.parse(readFileSync(new URL('./manifest.schema.json', import.meta.url), 'utf8'));
    // verbose: errors carry parentSchema and data, from which we word "expected ... (got ...)".
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true });
    ajv.addKeyword('patternErrorMessage'); // VS Code's custom-message keyword; annotation only here
    validator = ajv.compile<ValidInput>(schema as object);
  }
  return validator;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates and converts; returns undefined after pushing to `problems` when the manifest is invalid. */
function check(
  raw: unknown,
  file: string,
  env: Record<string, string | undefined>,
  problems: ManifestProblem[],
): Manifest | undefined {
  // ajv's useDefaults mutates its input; never touch the caller's object.
  const data: unknown = structuredClone(raw);
  const fromEnv = applyEnv(data, env);
  const validate = getValidator();
  const valid = validate(data);

  const seen = new Set<string>();
  const add = (at: string, message: string) => {
    const envName = fromEnv.get(at);
    const problem = { file, path: envName ? `${at} (from ${envName})` : at, message };
    const key = `${problem.path}\0${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  };

  for (const error of validate.errors ?? []) {
    const { at, message } = describeError(error);
    add(at, message);
  }
  // JSON Schema cannot say "unique by name"; check it here.
  if (isObject(data) && Array.isArray(data['hosts'])) {
    const counts = new Map<string, number>();
    for (const group of data['hosts']) {
      if (isObject(group) && typeof group['name'] === 'string') counts.set(group['name'], (counts.get(group['name']) ?? 0) + 1);
    }
    for (const [name, count] of counts) {
      if (count > 1) add('hosts', `host group names must be unique (${JSON.stringify(name)} appears ${count === 2 ? 'twice' : `${count} times`})`);
    }
  }
  if (!valid || problems.length > 0) return undefined;

  const { cluster, secret, logLevel, roles, placement, gateway, hosts, storage } = data;
  return {
    cluster,
    ...(secret === undefined ? {} : { secret }),
    roles,
    logLevel,
    placement: {
      provider: placement.provider,
      strategy: placement.strategy,
      leaseTtlMs: parseDuration(placement.leaseTtl),
      consul: {
        ...(placement.consul.address === undefined ? {} : { address: placement.consul.address }),
        ...(placement.consul.token === undefined ? {} : { token: placement.consul.token }),
        ...(placement.consul.start === undefined ? {} : { start: placement.consul.start }),
        ...(placement.consul.tls === undefined ? {} : { tls: placement.consul.tls }),
        lockDelayMs: parseDuration(placement.consul.lockDelay),
      },
    },
    gateway: {
      host: gateway.host,
      port: gateway.port,
      requestTimeoutMs: parseDuration(gateway.requestTimeout),
      plugins: gateway.plugins,
      ...(gateway.static === undefined ? {} : { static: gateway.static }),
      ...(gateway.tls === undefined ? {} : { tls: gateway.tls }),
      ...(gateway.clientSecret === undefined ? {} : { clientSecret: gateway.clientSecret }),
      bridge: { enabled: gateway.bridge.enabled, ...(gateway.bridge.token === undefined ? {} : { token: gateway.bridge.token }) },
      ...(gateway.login === undefined ? {} : { login: gateway.login }),
      session: { timestampWindowMs: parseDuration(gateway.session.timestampWindow), resumeTtlMs: parseDuration(gateway.session.resumeTtl) },
      limits: {
        maxFrameBytes: gateway.limits.maxFrameBytes,
        ratePerSecond: gateway.limits.ratePerSecond,
        maxInFlight: gateway.limits.maxInFlight,
        idleTimeoutMs: parseDuration(gateway.limits.idleTimeout),
        maxSessions: gateway.limits.maxSessions,
      },
    },
    hosts: hosts.map((h) => ({ name: h.name, replicas: h.replicas, plugins: h.plugins, idleTimeoutMs: parseDuration(h.idleTimeout) })),
    storage,
  };
}

/**
 * Writes the KOALA_* overrides into `data` (creating missing parent objects)
 * and returns which display path came from which variable. Empty variables
 * count as unset. A parent that is not an object is left alone: the schema
 * reports it.
 */
function applyEnv(data: unknown, env: Record<string, string | undefined>): Map<string, string> {
  const applied = new Map<string, string>();
  if (!isObject(data)) return applied;
  for (const [name, keys] of ENV_OVERRIDES) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    let target: JsonObject | undefined = data;
    for (const key of keys.slice(0, -1)) {
      const next: unknown = target[key] ?? (target[key] = {});
      target = isObject(next) ? next : undefined;
      if (!target) break;
    }
    if (!target) continue;
    // A port that is not an integer stays a string so the schema reports it.
    const value = name === 'KOALA_GATEWAY_PORT' && /^-?\d+$/.test(text.trim()) ? Number(text) : text;
    target[keys[keys.length - 1]!] = value;
    applied.set(keys.join('.'), name);
  }
  return applied;
}

/** "/hosts/0/replicas" -> "hosts[0].replicas"; "" -> "(root)". */
function displayPointer(pointer: string, extra?: string): string {
  const segments = pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) segments.push(extra);
  let out = '';
  for (const segment of segments) out += /^\d+$/.test(segment) ? `[${segment}]` : out === '' ? segment : `.${segment}`;
  return out === '' ? '(root)' : out;
}

function describeError(error: ErrorObject): { at: string; message: string } {
  const at = displayPointer(error.instancePath);
  const schema: JsonObject = isObject(error.parentSchema) ? error.parentSchema : {};
  const got = SECRET_PATHS.has(at) ? '' : ` (got ${describeValue(error.data)})`;

  // A bad duration fails both anyOf branches and the anyOf itself; all three
  // become this same line, which `add` then keeps once.
  if (error.schemaPath.includes('/definitions/duration')) return { at, message: `${DURATION_MESSAGE}${got}` };
  // Likewise a strategy that is neither a built-in name nor a module path.
  if (error.schemaPath.startsWith('#/properties/placement/properties/strategy/')) return { at, message: `${STRATEGY_MESSAGE}${got}` };
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String(error.params['additionalProperty']);
      const allowed = Object.keys(isObject(schema['properties']) ? schema['properties'] : {}).filter((k) => !k.startsWith('$'));
      const suggestion = closest(name, allowed);
      const hint = suggestion ? `; did you mean ${JSON.stringify(suggestion)}?` : '';
      return { at: displayPointer(error.instancePath, name), message: `unknown property${hint} (allowed: ${allowed.join(', ')})` };
    }
    case 'required':
      return { at: displayPointer(error.instancePath, String(error.params['missingProperty'])), message: 'is required' };
    case 'enum': {
      const options = Array.isArray(schema['enum']) ? schema['enum'] : [];
      return { at, message: `must be one of ${options.map((o) => JSON.stringify(o)).join(', ')}${got}` };
    }
    case 'pattern': {
      const custom = schema['patternErrorMessage'];
      return { at, message: `${typeof custom === 'string' ? custom : `must match ${String(schema['pattern'])}`}${got}` };
    }
    case 'type':
    case 'minimum':
    case 'maximum':
    case 'minLength':
    case 'minItems':
      return { at, message: `must be ${expected(schema)}${got}` };
    default:
      return { at, message: `${error.message ?? 'is invalid'}${got}` };
  }
}

/** What a (non-enum, non-pattern) schema accepts, in words: "an integer from 1 to 64". */
function expected(schema: JsonObject): string {
  const { type, minimum: min, maximum: max, minLength, minItems } = schema;
  switch (type) {
    case 'integer':
    case 'number': {
      const noun = type === 'integer' ? 'an integer' : 'a number';
      if (typeof min === 'number' && typeof max === 'number') return `${noun} from ${min} to ${max}`;
      if (typeof min === 'number') return min === 0 ? `a non-negative ${noun.slice(noun.indexOf(' ') + 1)}` : `${noun} of at least ${min}`;
      return noun;
    }
    case 'string':
      if (minLength === 1) return 'a non-empty string';
      return typeof minLength === 'number' ? `a string of at least ${minLength} characters` : 'a string';
    case 'array':
      if (minItems === 1) return 'a non-empty list';
      return typeof minItems === 'number' ? `a list of at least ${minItems} items` : 'a list';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'an object';
    default:
      return `of type ${String(type)}`;
  }
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? '[]' : 'a list';
  if (isObject(value)) return Object.keys(value).length === 0 ? '{}' : 'an object';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** The allowed name closest to `name` by edit distance, if it is close enough to be a typo. */
function closest(name: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const candidate of allowed) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
