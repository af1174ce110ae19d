// Helpers for the wire unit/component tests: real WebSockets on 127.0.0.1, port 0, everything
// closed in t.teardown. "Raw" variants hand out the underlying `ws` socket so that tests can count
// frames, send garbage or play a misbehaving peer.
import type { ExecutionContext } from 'ava';
import { WebSocket, WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { KoalaError } from '../../src/runtime/errors/errors.ts';
import { connect, type ConnectOptions } from '../../src/runtime/wire/connect.ts';
import { EarlyFrames, acceptHandshake, offerHandshake, type LocalIdentity } from '../../src/runtime/wire/handshake.ts';
import { Peer, type PeerIdentity, type PeerOptions, type RequestHandler } from '../../src/runtime/wire/peer.ts';
import type { Envelope } from '../../src/runtime/wire/schemas.ts';
import { WireServer, type WireServerOptions } from '../../src/runtime/wire/server.ts';

export const CLUSTER = 'unit';
export const SECRET = 'correct horse battery staple';

export function identity(node: string, overrides: Partial<LocalIdentity> = {}): LocalIdentity {
  return { cluster: CLUSTER, secret: SECRET, node, role: 'test', ...overrides };
}

/** A complete envelope with harmless defaults. */
export function envelope(overrides: Partial<Envelope> = {}): Envelope {
  return {
    kind: 'REQUEST',
    id: 1,
    iface: 'ITest',
    key: '1',
    method: 'm',
    chain: '',
    deadline: 0,
    epoch: 0,
    headers: {},
    payload: Buffer.alloc(0),
    ...overrides,
  };
}

/** What a request carries from the caller's side (Peer.request fills in id and kind). */
export function outgoing(overrides: Partial<Envelope> = {}): Omit<Envelope, 'id' | 'kind'> {
  const { id: _id, kind: _kind, ...rest } = envelope(overrides);
  return rest;
}

/** Echo handler: answers every REQUEST with its own payload. */
export const echo: RequestHandler = (env, peer) => {
  if (env.kind === 'REQUEST') peer.reply(env, 'RESPONSE', env.payload);
};

export async function listen(t: ExecutionContext, opts: Partial<WireServerOptions> & { logs?: string[] } = {}): Promise<WireServer> {
  const logs = opts.logs;
  const server = await WireServer.listen({
    identity: identity('server'),
    host: '127.0.0.1',
    port: 0,
    onRequest: echo,
    ...(logs ? { log: (line: string) => logs.push(line) } : {}),
    ...opts,
  });
  t.teardown(() => server.close());
  return server;
}

export async function dial(t: ExecutionContext, url: string, opts: Partial<ConnectOptions> = {}): Promise<Peer> {
  const peer = await connect(url, { identity: identity('client'), ...opts });
  t.teardown(() => peer.close());
  return peer;
}

/** Counts the frames a raw socket sends and receives. */
export interface FrameCounter {
  sent: number;
  received: number;
}

function countFrames(ws: WebSocket): FrameCounter {
  const counter: FrameCounter = { sent: 0, received: 0 };
  const send = ws.send.bind(ws) as (data: unknown, ...rest: unknown[]) => void;
  // An own property shadows WebSocket.prototype.send for this one socket only.
  (ws as unknown as { send: (...args: unknown[]) => void }).send = (data: unknown, ...rest: unknown[]) => {
    counter.sent++;
    send(data, ...rest);
  };
  ws.on('message', () => counter.received++);
  return counter;
}

export interface RawClient {
  ws: WebSocket;
  peer: Peer;
  frames: FrameCounter;
  /** Resolves with the close code the socket saw. */
  closed: Promise<{ code: number; reason: string }>;
}

/** A client built like connect() does, but keeping hold of the socket. */
export async function rawClient(
  t: ExecutionContext,
  url: string,
  opts: { identity?: LocalIdentity; peer?: Partial<PeerOptions> } = {},
): Promise<RawClient> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  t.teardown(() => ws.terminate());
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  // The handshake must start inside 'open': the CHALLENGE may follow in the same tick.
  const early = new EarlyFrames();
  const remote = await new Promise<PeerIdentity>((resolve, reject) => {
    ws.once('open', () => offerHandshake(ws, opts.identity ?? identity('raw-client'), early).then(resolve, reject));
    ws.once('error', reject);
  });
  // Counted only after the handshake: frames then are envelopes only.
  const frames = countFrames(ws);
  const peer = new Peer(ws, remote, { onRequest: echo, early: early.take(), ...opts.peer });
  return { ws, peer, frames, closed };
}

export interface RawServer {
  url: string;
  wss: WebSocketServer;
  /** Each accepted connection, after the given `onConnection` ran. */
  connections: WebSocket[];
}

/**
 * A WebSocket server that runs `onConnection` on each raw socket: use it to play a server that
 * breaks the protocol, or wrap a socket in a Peer with acceptHandshake.
 */
export async function rawServer(
  t: ExecutionContext,
  onConnection: (ws: WebSocket) => void,
  opts: { autoPong?: boolean } = {},
): Promise<RawServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, autoPong: opts.autoPong ?? true });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const connections: WebSocket[] = [];
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    connections.push(ws);
    onConnection(ws);
  });
  t.teardown(async () => {
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  const port = (wss.address() as AddressInfo).port;
  return { url: `ws://127.0.0.1:${port}`, wss, connections };
}

/** A server side Peer on a raw server: the handshake runs, then the socket is wrapped. */
export async function rawPeerServer(
  t: ExecutionContext,
  opts: { identity?: LocalIdentity; peer?: Partial<PeerOptions>; autoPong?: boolean } = {},
): Promise<RawServer & { peers: Promise<{ ws: WebSocket; peer: Peer }>[] }> {
  const peers: Promise<{ ws: WebSocket; peer: Peer }>[] = [];
  const server = await rawServer(
    t,
    (ws) => {
      peers.push(
        acceptHandshake(ws, opts.identity ?? identity('raw-server')).then((remote) => {
          const peer = new Peer(ws, remote, { onRequest: echo, ...opts.peer });
          t.teardown(() => peer.close());
          return { ws, peer };
        }),
      );
    },
    opts.autoPong === undefined ? {} : { autoPong: opts.autoPong },
  );
  return { ...server, peers };
}

/** The error a promise rejects with (fails loudly if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<KoalaError> {
  const result = await promise.then(
    (value) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  if (result.ok) throw new Error(`expected a rejection, got ${JSON.stringify(result.value)}`);
  if (!(result.err instanceof KoalaError)) throw new Error(`expected a KoalaError, got ${String(result.err)}`);
  return result.err;
}

/** Fails (instead of hanging the test until ava's timeout) if `promise` does not settle in time. */
export function within<T>(promise: Promise<T>, ms = 3000, what = 'promise'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` until it holds (or fails after `timeoutMs`). */
export async function until(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** Resolves with the next close of a Peer (its CONNECTION_LOST error). */
export function nextClose(peer: Peer): Promise<KoalaError> {
  return new Promise((resolve) => peer.onClose(resolve));
}
