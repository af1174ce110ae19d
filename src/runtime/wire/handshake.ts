// Connection handshake: both sides prove they hold the cluster secret without sending it.
//   server → CHALLENGE(nonceS)   client → HELLO(nonceC, proof = HMAC(secret, "hello", cluster, nonceS, nonceC))
//   server → WELCOME(proof = HMAC(secret, "welcome", cluster, nonceC, nonceS))  or REJECT(code, message) + close
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { WebSocket } from 'ws';
import { KoalaError } from '../errors/errors.ts';
import type { PeerIdentity } from './peer.ts';
import { OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION, handshakeType, type Handshake } from './schemas.ts';

export interface LocalIdentity {
  cluster: string;
  secret: string;
  node: string;
  role: string;
}

const HANDSHAKE_TIMEOUT_MS = 5000;
const CLOSE_REJECTED = 4001;

function proof(secret: string, label: string, cluster: string, a: Buffer, b: Buffer): Buffer {
  return createHmac('sha256', secret).update(label).update('\0').update(cluster).update('\0').update(a).update(b).digest();
}

function frame(h: Partial<Handshake> & Pick<Handshake, 'kind'>): Buffer {
  return handshakeType.toBuffer({
    version: PROTOCOL_VERSION,
    cluster: '',
    node: '',
    role: '',
    nonce: Buffer.alloc(0),
    proof: Buffer.alloc(0),
    code: '',
    message: '',
    ...h,
  });
}

/**
 * Frames the remote sends right behind its WELCOME can arrive in the same TCP chunk; ws then emits
 * them synchronously, one after the other, before the code awaiting the handshake could listen.
 * EarlyFrames starts listening the moment the last handshake frame is read and keeps them for the Peer.
 */
export class EarlyFrames {
  readonly #frames: { data: Buffer; isBinary: boolean }[] = [];
  #stop: (() => void) | undefined;

  listen(ws: WebSocket): void {
    const keep = (data: Buffer, isBinary: boolean) => void this.#frames.push({ data, isBinary });
    ws.on('message', keep);
    this.#stop = () => ws.off('message', keep);
  }

  /** Stops listening; returns what arrived, in order. */
  take(): { data: Buffer; isBinary: boolean }[] {
    this.#stop?.();
    this.#stop = undefined;
    return this.#frames.splice(0);
  }
}

function nextHandshake(ws: WebSocket, expected: string, early?: EarlyFrames): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new KoalaError('UNREACHABLE', `no ${expected} from peer within ${HANDSHAKE_TIMEOUT_MS} ms`)), HANDSHAKE_TIMEOUT_MS);
    const onMessage = (data: Buffer) => {
      try {
        done(undefined, handshakeType.fromBuffer(data));
        early?.listen(ws);
      } catch {
        done(new KoalaError('BAD_FRAME', `peer sent something that is not a Koala handshake (expected ${expected})`));
      }
    };
    const onClose = (code: number, reason: Buffer) =>
      done(new KoalaError(code === CLOSE_REJECTED ? 'AUTH_FAILED' : 'CONNECTION_LOST', reason.toString() || `connection closed during handshake (${code})`));
    const done = (err?: Error, h?: Handshake) => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      if (err) reject(err);
      else resolve(h as Handshake);
    };
    ws.on('message', onMessage);
    ws.on('close', onClose);
  });
}

function reject(ws: WebSocket, code: string, message: string): KoalaError {
  ws.send(frame({ kind: 'REJECT', code, message }));
  ws.close(CLOSE_REJECTED, `${code}: ${message}`.slice(0, 120));
  return new KoalaError('AUTH_FAILED', message);
}

export async function acceptHandshake(ws: WebSocket, local: LocalIdentity): Promise<PeerIdentity> {
  const nonceS = randomBytes(16);
  ws.send(frame({ kind: 'CHALLENGE', cluster: local.cluster, node: local.node, role: local.role, nonce: nonceS }));
  const hello = await nextHandshake(ws, 'HELLO');
  if (hello.kind !== 'HELLO') throw reject(ws, 'BAD_FRAME', `expected HELLO, got ${hello.kind}`);
  if (!speaks(hello.version)) {
    throw reject(ws, 'BAD_FRAME', `protocol version ${hello.version} is not supported (this node speaks ${OLDEST_PROTOCOL_VERSION} to ${PROTOCOL_VERSION})`);
  }
  if (hello.cluster !== local.cluster) {
    throw reject(ws, 'AUTH_FAILED', `this is cluster "${local.cluster}", not "${hello.cluster}"`);
  }
  const expected = proof(local.secret, 'hello', local.cluster, nonceS, hello.nonce);
  if (hello.proof.length !== expected.length || !timingSafeEqual(hello.proof, expected)) {
    throw reject(ws, 'AUTH_FAILED', 'cluster secret does not match');
  }
  ws.send(frame({ kind: 'WELCOME', cluster: local.cluster, node: local.node, role: local.role, proof: proof(local.secret, 'welcome', local.cluster, hello.nonce, nonceS) }));
  return { node: hello.node, role: hello.role, cluster: hello.cluster, version: hello.version };
}

function speaks(version: number): boolean {
  return version >= OLDEST_PROTOCOL_VERSION && version <= PROTOCOL_VERSION;
}

/** Runs the client side; pass `early` to keep frames that follow WELCOME (see EarlyFrames). */
export async function offerHandshake(ws: WebSocket, local: LocalIdentity, early?: EarlyFrames): Promise<PeerIdentity> {
  const challenge = await nextHandshake(ws, 'CHALLENGE');
  if (challenge.kind !== 'CHALLENGE') throw new KoalaError('BAD_FRAME', `expected CHALLENGE, got ${challenge.kind}`);
  if (!speaks(challenge.version)) {
    ws.close(CLOSE_REJECTED, 'unsupported protocol version');
    throw new KoalaError('BAD_FRAME', `${challenge.node} speaks protocol version ${challenge.version}, which is not supported (this node speaks ${OLDEST_PROTOCOL_VERSION} to ${PROTOCOL_VERSION})`);
  }
  const nonceC = randomBytes(16);
  ws.send(frame({ kind: 'HELLO', cluster: local.cluster, node: local.node, role: local.role, nonce: nonceC, proof: proof(local.secret, 'hello', local.cluster, challenge.nonce, nonceC) }));
  const answer = await nextHandshake(ws, 'WELCOME', early);
  if (answer.kind === 'REJECT') throw new KoalaError('AUTH_FAILED', `${answer.code}: ${answer.message}`);
  const expected = proof(local.secret, 'welcome', local.cluster, nonceC, challenge.nonce);
  if (answer.kind !== 'WELCOME' || answer.proof.length !== expected.length || !timingSafeEqual(answer.proof, expected)) {
    ws.close(CLOSE_REJECTED, 'server failed to prove the cluster secret');
    throw new KoalaError('AUTH_FAILED', `${challenge.node} could not prove it holds the cluster secret`);
  }
  return { node: challenge.node, role: challenge.role, cluster: challenge.cluster, version: challenge.version };
}
