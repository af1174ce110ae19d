// Turns command-line words into values of a method's Avro parameter types, so that
// `koala call IPlayer/1 echo hi` and `koala call IMath/1 add 2 3` need no quoting or JSON.
import type { AvroType } from '../runtime/interface/avro.ts';
import { CliError } from './base-command.ts';

/** How a type reads in messages; avsc calls every union `union:unwrapped`, which tells the user nothing. */
function typeLabel(type: AvroType): string {
  const branches = (type as AvroType & { types?: readonly (AvroType & { name?: string })[] }).types;
  if (type.typeName.startsWith('union') && branches) return branches.map((b) => b.name ?? b.typeName).join(' or ');
  return type.typeName;
}

function fail(param: string, type: AvroType, word: string, why: string): never {
  throw new CliError(`argument "${param}" must be ${typeLabel(type)}: ${why} (got ${JSON.stringify(word)})`, {
    exitCode: 2,
    hint: 'strings are taken as-is; numbers, true/false and null as such; records, arrays, maps and unions as JSON',
  });
}

export function parseArg(param: string, type: AvroType, word: string): unknown {
  switch (type.typeName) {
    case 'string':
      return word;
    case 'int':
    case 'long': {
      if (!/^-?\d+$/.test(word)) fail(param, type, word, 'not an integer');
      const n = Number(word);
      if (!type.isValid(n)) fail(param, type, word, 'out of range');
      return n;
    }
    case 'float':
    case 'double': {
      const n = Number(word);
      if (word.trim() === '' || Number.isNaN(n)) fail(param, type, word, 'not a number');
      return n;
    }
    case 'boolean':
      if (word === 'true') return true;
      if (word === 'false') return false;
      return fail(param, type, word, 'use true or false');
    case 'null':
      if (word === 'null') return null;
      return fail(param, type, word, 'use null');
    case 'bytes':
      return Buffer.from(word, 'utf8');
    case 'enum':
      if (type.isValid(word)) return word;
      return fail(param, type, word, `one of ${JSON.stringify((type.schema() as { symbols: string[] }).symbols)}`);
    default: {
      // Records, arrays, maps, unions, fixed: JSON, with union branches chosen by value.
      let json: unknown;
      try {
        json = JSON.parse(word);
      } catch {
        // A bare word for a union that admits strings (e.g. ["null", "string"]).
        if (type.isValid(word)) return word;
        return fail(param, type, word, 'not valid JSON');
      }
      try {
        const value = type.clone(json, { wrapUnions: false, coerceBuffers: true });
        if (type.isValid(value)) return value;
      } catch {
        // reported below
      }
      if (type.isValid(word)) return word;
      return fail(param, type, word, 'JSON does not match the schema');
    }
  }
}

/** JSON for printing results: Buffers as base64, everything else as JSON does it. */
export function toPrintableJson(value: unknown, pretty: boolean): string {
  return JSON.stringify(value, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data) ? Buffer.from((v as { data: number[] }).data).toString('base64') : v), pretty ? 2 : undefined) ?? 'null';
}
