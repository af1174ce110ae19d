// The one place that touches avsc's loosely typed API. Everything else in Koala sees these
// narrow, typed views. avsc 5 is CommonJS: a default import is the only form that works at run time.
import avro from 'avsc';

/** An Avro type able to encode into a caller-owned buffer (no allocation per message). */
export interface AvroType<T = unknown> {
  /** Writes `value` at `pos`; returns the new position, or a negative number (−needed) when `buf` is too small. */
  encode(value: T, buf: Buffer, pos?: number): number;
  decode(buf: Buffer, pos?: number): { value: T; offset: number };
  toBuffer(value: T): Buffer;
  fromBuffer(buf: Buffer): T;
  isValid(value: unknown, opts?: { errorHook?: (path: string[], value: unknown) => void }): boolean;
  clone(value: unknown, opts?: { wrapUnions?: boolean; coerceBuffers?: boolean }): T;
  schema(): unknown;
  readonly typeName: string;
}

export interface AvroMessageTypes {
  readonly name: string;
  /** A record type whose fields are the method's parameters, in order. */
  readonly requestType: AvroType<Record<string, unknown>> & { readonly fields: readonly { readonly name: string; readonly type: AvroType }[] };
  readonly responseType: AvroType;
  readonly oneWay: boolean;
  readonly doc: string | undefined;
}

export interface AvroService {
  readonly name: string;
  readonly protocol: object;
  /** MD5 of the protocol's canonical JSON: the interface fingerprint exchanged between peers. */
  readonly hash: Buffer;
  readonly messages: readonly AvroMessageTypes[];
  message(name: string): AvroMessageTypes | undefined;
}

export function serviceForProtocol(protocol: object): AvroService {
  return avro.Service.forProtocol(protocol) as unknown as AvroService;
}

export function typeForSchema<T>(schema: unknown): AvroType<T> {
  return avro.Type.forSchema(schema as avro.Schema) as unknown as AvroType<T>;
}

/** Parses Avro IDL (`.avdl` text without imports) into protocol JSON. */
export function readIdl(idl: string): object {
  return avro.readProtocol(idl) as object;
}
