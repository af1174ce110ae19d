// Client sessions on the gateway's public port (/v1/session): the first packet authenticates the
// client and binds it to an actor; then the client may call any actor (as `koala call` does),
// send messages to its actor, and receive the actor's pushes. Limits keep one client from
// hurting the others.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { newChainId } from '../actor/call-context.ts';
import type { GatewaySettings } from '../config/manifest.ts';
import { KoalaError } from '../errors/errors.ts';
import type { ActorRouter } from '../routing/router.ts';
import type { Logger } from '../util/log.ts';
import { Peer } from '../wire/peer.ts';
import { encodeError, methodOf } from '../wire/rpc.ts';
import type { Envelope } from '../wire/schemas.ts';
import type { DecodedEnvelope } from '../wire/frame.ts';
import type { InterfaceCatalog } from './interfaces.ts';
import {
  firstPacketType,
  makeResumeToken,
  readResumeToken,
  SESSION_CLOSE_IDLE,
  SESSION_CLOSE_REFUSED,
  SESSION_METHODS,
  SESSION_VERSION,
  sessionEventType,
  sessionReplyType,
  verifySignature,
  type Claim,
  type FirstPacket,
} from './session-protocol.ts';

const FIRST_PACKET_TIMEOUT_MS = 5000;
/** What sessions may ask the gateway itself. */
const CLIENT_GATEWAY_METHODS = new Set(['describe', 'members', 'actors']);

interface Session {
  id: string;
  iface: string;
  key: string;
  claims: Claim[];
  peer: Peer;
  inFlight: number;
  /** Token bucket: envelopes the client may still send now. */
  tokens: number;
  refilledAt: number;
  lastSeen: number;
}

export interface SessionServerOptions {
  settings: GatewaySettings;
  cluster: string;
  router: ActorRouter;
  catalog: InterfaceCatalog;
  /** The gateway's internal wire address, where hosts send pushes. */
  internalAddress: () => string;
  /** Calls from clients that are not session traffic (RPC): forwarded like any cluster client's; `done` is told once answered. */
  forward: (env: DecodedEnvelope, peer: Peer, done: () => void) => void;
  log: Logger;
}

class Refused extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export class SessionServer {
  readonly #opts: SessionServerOptions;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<string, Session>();
  /** Nonces seen within the timestamp window: a captured first packet cannot be replayed. */
  readonly #nonces = new Map<string, number>();
  readonly #idleTimer: NodeJS.Timeout;
  #counter = 0;
  readonly #prefix = randomBytes(4).toString('hex');

  constructor(opts: SessionServerOptions) {
    this.#opts = opts;
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: opts.settings.limits.maxFrameBytes });
    const idleMs = opts.settings.limits.idleTimeoutMs;
    this.#idleTimer = setInterval(() => this.#sweep(), Math.max(50, Math.min(5000, Math.floor(idleMs / 4))));
    this.#idleTimer.unref();
  }

  get count(): number {
    return this.#sessions.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => void this.#accept(ws));
  }

  /** Sends an actor's push to sessions of this gateway; unknown (closed) sessions are skipped. */
  push(sessionIds: readonly string[], data: Buffer): void {
    for (const id of sessionIds) {
      const s = this.#sessions.get(id);
      s?.peer.send({ kind: 'PUSH', iface: s.iface, key: s.key, method: '', chain: '', deadline: 0, epoch: 0, headers: {}, payload: data });
    }
  }

  close(): void {
    clearInterval(this.#idleTimer);
    for (const s of this.#sessions.values()) s.peer.close(1001, 'gateway shutting down');
    this.#wss.close();
  }

  async #accept(ws: WebSocket): Promise<void> {
    ws.on('error', () => {});
    let packet: FirstPacket;
    try {
      packet = await firstFrame(ws);
      const binding = await this.#authenticate(packet);
      if (this.#sessions.size >= this.#opts.settings.limits.maxSessions) {
        throw new Refused('SESSION_LIMIT', `the gateway holds its maximum of ${this.#opts.settings.limits.maxSessions} sessions; retry later`);
      }
      this.#open(ws, binding);
    } catch (err) {
      const code = err instanceof Refused ? err.code : err instanceof KoalaError ? err.code : 'BAD_FIRST_PACKET';
      const message = (err as Error).message;
      if (ws.readyState === ws.OPEN) {
        ws.send(sessionReplyType.toBuffer({ ok: false, session: '', iface: '', key: '', resume: '', code, message }));
        ws.close(SESSION_CLOSE_REFUSED, `${code}: ${message}`.slice(0, 120));
      }
      setTimeout(() => ws.terminate(), 1000).unref();
    }
  }

  /** Checks the first packet and decides the binding (asking the login actor if needed). */
  async #authenticate(p: FirstPacket): Promise<{ session: string; iface: string; key: string; claims: Claim[] }> {
    const { settings } = this.#opts;
    const secret = settings.clientSecret;
    if (!secret) throw new Refused('AUTH_FAILED', 'this gateway takes no client sessions (no gateway.clientSecret / KOALA_CLIENT_SECRET configured)');
    if (p.version !== SESSION_VERSION) throw new Refused('BAD_FIRST_PACKET', `session protocol version ${p.version} is not supported (this gateway speaks ${SESSION_VERSION})`);
    const now = Date.now();
    if (p.resume) {
      const resumed = readResumeToken(secret, p.resume, now);
      if (!resumed) throw new Refused('AUTH_FAILED', 'the reconnect token is invalid or expired; sign a new first packet');
      // The binding resumes; the connection is a new session (its actor sees the old one close
      // and this one open), so that late events of the old connection cannot be mistaken for it.
      return { ...resumed, session: this.#newSessionId() };
    }
    if (!verifySignature(secret, p)) throw new Refused('AUTH_FAILED', 'the first packet’s signature does not match (HMAC-SHA256 with the client secret over the packet with an empty signature)');
    if (Math.abs(now - p.timestamp) > settings.session.timestampWindowMs) {
      throw new Refused('AUTH_FAILED', `the first packet’s timestamp is ${Math.round((now - p.timestamp) / 1000)} s off the gateway’s clock (window ±${settings.session.timestampWindowMs / 1000} s)`);
    }
    if (!p.nonce || this.#nonces.has(p.nonce)) throw new Refused('AUTH_FAILED', 'the first packet’s nonce is empty or was used before');
    this.#nonces.set(p.nonce, p.timestamp);
    for (let i = 1; i < p.claims.length; i++) {
      if (!(p.claims[i - 1]!.name < p.claims[i]!.name)) throw new Refused('BAD_FIRST_PACKET', 'claims must be sorted by name, each name once');
    }
    const session = this.#newSessionId();
    if (p.iface && p.key) return { session, iface: p.iface, key: p.key, claims: p.claims };
    if (p.iface || p.key) throw new Refused('BAD_FIRST_PACKET', 'name both the interface and the id of the actor to bind to, or neither');
    const bound = await this.#login(p.claims);
    return { session, ...bound, claims: p.claims };
  }

  #newSessionId(): string {
    return `${this.#prefix}-${(++this.#counter).toString(36)}`;
  }

  /** Asks the login actor which actor a session without one binds to. */
  async #login(claims: Claim[]): Promise<{ iface: string; key: string }> {
    const login = this.#opts.settings.login;
    if (!login) throw new Refused('BAD_FIRST_PACKET', 'the first packet names no actor and the gateway has no login actor (gateway.login)');
    const iface = await this.#opts.catalog.get(login.interface);
    const message = methodOf(iface, login.method);
    const answer = (await this.#opts.router.call(iface, message, [Object.fromEntries(claims.map((c) => [c.name, c.value]))], {
      key: 'login',
      chain: newChainId(),
      deadline: Date.now() + this.#opts.settings.requestTimeoutMs,
      headers: {},
    })) as { iface?: unknown; key?: unknown };
    if (typeof answer?.iface !== 'string' || typeof answer.key !== 'string' || !answer.iface || !answer.key) {
      throw new Refused('AUTH_FAILED', `${login.interface}.${login.method} bound the session to no actor`);
    }
    return { iface: answer.iface, key: answer.key };
  }

  #open(ws: WebSocket, binding: { session: string; iface: string; key: string; claims: Claim[] }): void {
    const { settings } = this.#opts;
    const resume = makeResumeToken(settings.clientSecret!, { ...binding, expires: Date.now() + settings.session.resumeTtlMs });
    ws.send(sessionReplyType.toBuffer({ ok: true, session: binding.session, iface: binding.iface, key: binding.key, resume, code: '', message: '' }));
    const now = Date.now();
    const session: Session = {
      id: binding.session,
      iface: binding.iface,
      key: binding.key,
      claims: binding.claims,
      peer: new Peer(ws, { node: binding.session, role: 'session', cluster: this.#opts.cluster }, { onRequest: (env) => this.#onEnvelope(session, env), spans: true, log: this.#opts.log.debug }),
      inFlight: 0,
      tokens: settings.limits.ratePerSecond,
      refilledAt: now,
      lastSeen: now,
    };
    this.#sessions.set(session.id, session);
    session.peer.onClose(() => {
      if (this.#sessions.get(session.id) !== session) return;
      this.#sessions.delete(session.id);
      this.#tellActor(session, SESSION_METHODS.closed, Buffer.alloc(0));
    });
    this.#tellActor(session, SESSION_METHODS.open, Buffer.alloc(0));
  }

  #onEnvelope(s: Session, env: DecodedEnvelope): void {
    const { limits } = this.#opts.settings;
    const now = Date.now();
    s.lastSeen = now;
    s.tokens = Math.min(limits.ratePerSecond, s.tokens + ((now - s.refilledAt) / 1000) * limits.ratePerSecond);
    s.refilledAt = now;
    if (s.tokens < 1) {
      this.#refuse(s, env, new KoalaError('RATE_LIMITED', `more than ${limits.ratePerSecond} messages per second on this connection; slow down`));
      return;
    }
    s.tokens -= 1;
    if (env.kind === 'MESSAGE') {
      this.#tellActor(s, SESSION_METHODS.message, env.payload);
      return;
    }
    if (env.kind !== 'REQUEST' && env.kind !== 'ONEWAY') return;
    if (env.kind === 'REQUEST' && s.inFlight >= limits.maxInFlight) {
      this.#refuse(s, env, new KoalaError('TOO_BUSY', `more than ${limits.maxInFlight} calls in flight on this connection; wait for answers`));
      return;
    }
    // Clients reach actors' declared methods and the gateway's read-only services, nothing else:
    // not `push` (it would let one client write to another's session), not the runtime's own
    // `@…` methods (forged session events, reminders).
    if (env.method.startsWith('@')) {
      this.#refuse(s, env, new KoalaError('UNKNOWN_METHOD', `${env.method} is not a method clients may call`));
      return;
    }
    if (env.iface.startsWith('koala.') && !(env.iface === 'koala.Gateway' && CLIENT_GATEWAY_METHODS.has(env.method))) {
      this.#refuse(s, env, new KoalaError('UNKNOWN_INTERFACE', `${env.iface}.${env.method} is not open to client sessions`));
      return;
    }
    if (env.kind === 'REQUEST') s.inFlight++;
    this.#opts.forward(env, s.peer, () => {
      if (env.kind === 'REQUEST') s.inFlight--;
    });
  }

  /** A typed error for a request; for a message (no id), an ERROR envelope with id 0. */
  #refuse(s: Session, env: Envelope, err: KoalaError): void {
    if (env.kind === 'REQUEST') s.peer.reply(env, 'ERROR', encodeError(err));
    else if (env.kind === 'MESSAGE') s.peer.send({ kind: 'ERROR', iface: s.iface, key: s.key, method: SESSION_METHODS.message, chain: '', deadline: 0, epoch: 0, headers: {}, payload: encodeError(err) });
  }

  /** Forwards a session event to the bound actor, in order (one connection to its host, FIFO). */
  #tellActor(s: Session, method: string, data: Buffer): void {
    const payload = sessionEventType.toBuffer({ session: s.id, gateway: this.#opts.internalAddress(), claims: s.claims, data });
    this.#opts.router
      .forward({ iface: s.iface, key: s.key, method, chain: newChainId(), deadline: Date.now() + this.#opts.settings.requestTimeoutMs, epoch: 0, headers: {}, payload })
      .then((answer) => {
        if (answer.kind === 'ERROR' && method !== SESSION_METHODS.closed) s.peer.send({ kind: 'ERROR', iface: s.iface, key: s.key, method, chain: '', deadline: 0, epoch: 0, headers: {}, payload: answer.payload });
      })
      .catch((err: unknown) => {
        if (method !== SESSION_METHODS.closed) s.peer.send({ kind: 'ERROR', iface: s.iface, key: s.key, method, chain: '', deadline: 0, epoch: 0, headers: {}, payload: encodeError(err) });
      });
  }

  #sweep(): void {
    const now = Date.now();
    const { idleTimeoutMs } = this.#opts.settings.limits;
    for (const s of this.#sessions.values()) {
      if (now - s.lastSeen >= idleTimeoutMs) s.peer.close(SESSION_CLOSE_IDLE, `IDLE_TIMEOUT: nothing received for ${Math.round(idleTimeoutMs / 1000)} s`);
    }
    const window = this.#opts.settings.session.timestampWindowMs;
    for (const [nonce, at] of this.#nonces) if (Math.abs(now - at) > window) this.#nonces.delete(nonce);
  }
}

/** The first frame, decoded; a timeout, a text frame or garbage is BAD_FIRST_PACKET. */
function firstFrame(ws: WebSocket): Promise<FirstPacket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Refused('BAD_FIRST_PACKET', `no first packet within ${FIRST_PACKET_TIMEOUT_MS / 1000} s`)), FIRST_PACKET_TIMEOUT_MS);
    const onMessage = (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return done(new Refused('BAD_FIRST_PACKET', 'the first packet must be a binary frame (an Avro FirstPacket record)'));
      try {
        done(undefined, firstPacketType.fromBuffer(data));
      } catch {
        done(new Refused('BAD_FIRST_PACKET', 'the first frame is not an Avro FirstPacket record'));
      }
    };
    const done = (err?: Error, p?: FirstPacket) => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      if (err) reject(err);
      else resolve(p!);
    };
    ws.on('message', onMessage);
  });
}
