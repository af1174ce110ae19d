// The Avro schemas of everything Koala puts on a socket. docs/protocol.md describes them for
// clients in other languages; change them only together with PROTOCOL_VERSION.
import { typeForSchema } from '../interface/avro.ts';
import { ENVELOPE_KINDS, ENVELOPE_SCHEMA, ERROR_SCHEMA } from './schema-json.ts';

/**
 * The protocol version this node speaks. 2: a call may inherit its fields from the call before it
 * in the same frame (frame.ts, "Inherited calls"); such calls are sent only to peers that speak 2.
 */
export const PROTOCOL_VERSION = 2;
/** The version from which a peer understands inherited calls. */
export const INHERITED_CALLS_VERSION = 2;
/** The oldest version a node still accepts (a client written for version 1 receives no calls, so it never meets an inherited one). */
export const OLDEST_PROTOCOL_VERSION = 1;

/**
 * MESSAGE: a client session's message to the actor it is bound to. PUSH: an actor's message to a
 * client session. Both carry no request id (0) and expect no answer.
 */
export { ENVELOPE_KINDS };
export type EnvelopeKind = (typeof ENVELOPE_KINDS)[number];

/** One message: a call, its answer, or control. Many envelopes may share one binary frame. */
export interface Envelope {
  kind: EnvelopeKind;
  /** Request id, unique per connection and direction; answers carry the id of their request. */
  id: number;
  /** Target interface and actor id; `koala.*` interfaces address the process itself. */
  iface: string;
  key: string;
  method: string;
  /** Call-chain id: lets a chain of calls re-enter an actor it already holds. */
  chain: string;
  /**
   * In memory: absolute local deadline (ms since the epoch). On the wire: the milliseconds left
   * when the envelope was sent (the Peer converts both ways). 0 = none.
   */
  deadline: number;
  /** 0, except on a gateway's first call to an actor it has just located: the epoch placement granted (see Host, the grant floor). */
  epoch: number;
  headers: Record<string, string>;
  /** Avro-encoded arguments (request), result (response), ErrorRecord (error) or Position (redirect). */
  payload: Buffer;
}

export const envelopeType = typeForSchema<Envelope>(ENVELOPE_SCHEMA);

export const HANDSHAKE_KINDS = ['CHALLENGE', 'HELLO', 'WELCOME', 'REJECT'] as const;
export type HandshakeKind = (typeof HANDSHAKE_KINDS)[number];

/**
 * The first frames on every connection. The server opens with CHALLENGE (its nonce), the client
 * answers HELLO with an HMAC over both nonces, the server proves the secret back with WELCOME or
 * refuses with REJECT and closes.
 */
export interface Handshake {
  kind: HandshakeKind;
  version: number;
  cluster: string;
  node: string;
  role: string;
  nonce: Buffer;
  proof: Buffer;
  code: string;
  message: string;
}

export const handshakeType = typeForSchema<Handshake>({
  type: 'record',
  name: 'Handshake',
  namespace: 'koala.wire',
  fields: [
    { name: 'kind', type: { type: 'enum', name: 'HandshakeKind', symbols: [...HANDSHAKE_KINDS] } },
    { name: 'version', type: 'int' },
    { name: 'cluster', type: 'string' },
    { name: 'node', type: 'string' },
    { name: 'role', type: 'string' },
    { name: 'nonce', type: 'bytes' },
    { name: 'proof', type: 'bytes' },
    { name: 'code', type: 'string' },
    { name: 'message', type: 'string' },
  ],
});

export const errorRecordType = typeForSchema<{ name: string; code: string; message: string; actor: string; stack: string }>(ERROR_SCHEMA);

/** Where an actor lives: the payload of a REDIRECT and the answer of placement lookups. */
export interface Position {
  host: string;
  address: string;
  epoch: number;
}

export const positionSchema = {
  type: 'record',
  name: 'Position',
  namespace: 'koala',
  fields: [
    { name: 'host', type: 'string' },
    { name: 'address', type: 'string' },
    { name: 'epoch', type: 'long' },
  ],
} as const;

export const positionType = typeForSchema<Position>(positionSchema);
