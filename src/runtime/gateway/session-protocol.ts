// Client sessions: the first packet a client sends, the gateway's answer, the events the gateway
// forwards to a session's actor, and the signatures. docs/protocol.md specifies them for clients
// in other languages.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { typeForSchema } from '../interface/avro.ts';
import { SESSION_REPLY_SCHEMA } from '../wire/schema-json.ts';

export const SESSION_PATH = '/v1/session';
export const SESSION_VERSION = 1;
export const SESSION_CLOSE_REFUSED = 4001;
export const SESSION_CLOSE_IDLE = 4008;

export interface Claim {
  name: string;
  value: string;
}

const claimSchema = { type: 'record', name: 'Claim', namespace: 'koala', fields: [{ name: 'name', type: 'string' }, { name: 'value', type: 'string' }] } as const;

/** The first frame of a client session: who the client is, which actor it binds to, signed. */
export interface FirstPacket {
  version: number;
  /** Sorted by name, names unique: the signature covers them in this order. */
  claims: Claim[];
  /** The actor to bind to; both empty = ask the configured login actor. */
  iface: string;
  key: string;
  /** Client clock, ms since the epoch; refused outside the gateway's window. */
  timestamp: number;
  /** Random, unique per packet. */
  nonce: string;
  /** A reconnect token from an earlier session: binds this new session to the same actor, with the same claims (no signature needed). */
  resume: string;
  /** HMAC-SHA256(client secret, the Avro binary of this record with `signature` empty). */
  signature: Buffer;
}

export const firstPacketType = typeForSchema<FirstPacket>({
  type: 'record',
  name: 'FirstPacket',
  namespace: 'koala',
  fields: [
    { name: 'version', type: 'int' },
    { name: 'claims', type: { type: 'array', items: claimSchema } },
    { name: 'iface', type: 'string' },
    { name: 'key', type: 'string' },
    { name: 'timestamp', type: 'long' },
    { name: 'nonce', type: 'string' },
    { name: 'resume', type: 'string' },
    { name: 'signature', type: 'bytes' },
  ],
});

/** The gateway's answer to a first packet. After OK, frames are envelopes; after ERROR, the socket closes (4001). */
export interface SessionReply {
  ok: boolean;
  session: string;
  iface: string;
  key: string;
  /** Reconnect token for a later first packet's `resume`. */
  resume: string;
  code: string;
  message: string;
}

export const sessionReplyType = typeForSchema<SessionReply>(SESSION_REPLY_SCHEMA);

/** What the gateway tells a session's actor (methods `@session.open|message|closed`). */
export interface SessionEvent {
  session: string;
  /** The gateway's internal wire address: where pushes for this session go. */
  gateway: string;
  claims: Claim[];
  data: Buffer;
}

export const sessionEventType = typeForSchema<SessionEvent>({
  type: 'record',
  name: 'SessionEvent',
  namespace: 'koala',
  fields: [
    { name: 'session', type: 'string' },
    { name: 'gateway', type: 'string' },
    { name: 'claims', type: { type: 'array', items: claimSchema } },
    { name: 'data', type: 'bytes' },
  ],
});

export const SESSION_METHODS = { open: '@session.open', message: '@session.message', closed: '@session.closed' } as const;

/** HMAC-SHA256 over the packet's Avro encoding with an empty signature. */
export function firstPacketSignature(secret: string, packet: Omit<FirstPacket, 'signature'>): Buffer {
  return createHmac('sha256', secret).update(firstPacketType.toBuffer({ ...packet, signature: Buffer.alloc(0) })).digest();
}

export function verifySignature(secret: string, packet: FirstPacket): boolean {
  const expected = firstPacketSignature(secret, packet);
  return packet.signature.length === expected.length && timingSafeEqual(packet.signature, expected);
}

/** A signed first packet, for app backends that hand their users a session (and for tests). */
export function signFirstPacket(secret: string, fields: { claims?: Record<string, string>; iface?: string; key?: string | number; timestamp?: number; nonce?: string }): Buffer {
  const packet: Omit<FirstPacket, 'signature'> = {
    version: SESSION_VERSION,
    claims: Object.entries(fields.claims ?? {})
      .map(([name, value]) => ({ name, value }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    iface: fields.iface ?? '',
    key: fields.key === undefined ? '' : String(fields.key),
    timestamp: fields.timestamp ?? Date.now(),
    nonce: fields.nonce ?? randomBytes(12).toString('base64url'),
    resume: '',
  };
  return firstPacketType.toBuffer({ ...packet, signature: firstPacketSignature(secret, packet) });
}

/** A resume packet: no signature, just the token. */
export function resumePacket(token: string): Buffer {
  return firstPacketType.toBuffer({ version: SESSION_VERSION, claims: [], iface: '', key: '', timestamp: Date.now(), nonce: '', resume: token, signature: Buffer.alloc(0) });
}

interface TokenBody {
  s: string;
  i: string;
  k: string;
  c: Claim[];
  e: number;
}

/** `base64url(JSON).base64url(HMAC)`: the binding a client may resume until `expires`. */
export function makeResumeToken(secret: string, body: { session: string; iface: string; key: string; claims: Claim[]; expires: number }): string {
  const json = Buffer.from(JSON.stringify({ s: body.session, i: body.iface, k: body.key, c: body.claims, e: body.expires } satisfies TokenBody)).toString('base64url');
  return `${json}.${createHmac('sha256', secret).update(json).digest('base64url')}`;
}

export function readResumeToken(secret: string, token: string, now: number): { session: string; iface: string; key: string; claims: Claim[] } | undefined {
  const [json, mac] = token.split('.');
  if (!json || !mac) return undefined;
  const expected = createHmac('sha256', secret).update(json).digest();
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const body = JSON.parse(Buffer.from(json, 'base64url').toString()) as TokenBody;
  if (body.e < now) return undefined;
  return { session: body.s, iface: body.i, key: body.k, claims: body.c };
}
