// Outgoing connections: one reused Peer per remote address, re-dialled with backoff after loss.
import WebSocket from 'ws';
import { KoalaError } from '../errors/errors.ts';
import { EarlyFrames, offerHandshake, type LocalIdentity } from './handshake.ts';
import { Peer, type RequestHandler } from './peer.ts';
import { replyError } from './rpc.ts';
import { MAX_FRAME_BYTES } from './server.ts';

export interface ConnectOptions {
  identity: LocalIdentity;
  onRequest?: RequestHandler;
  timeoutMs?: number;
  log?: (line: string) => void;
  /** TLS options for wss:// (e.g. `ca` for a gateway with its own certificate). */
  tls?: { ca?: string | Buffer };
}

const refuseRequests: RequestHandler = (env, peer) => {
  replyError(peer, env, new KoalaError('UNKNOWN_INTERFACE', 'this side of the connection serves no requests'));
};

/**
 * Masking protects HTTP intermediaries from bytes a hostile *browser page* chooses; connections
 * made by Koala's own processes carry no such bytes, so they use an all-zero mask, which `ws`
 * recognises and skips (the frame still says "masked", as the protocol wants). Browsers always
 * mask with random keys, whatever the server.
 */
const ZERO_MASK = (mask: Buffer): void => {
  mask.fill(0);
};

export function connect(url: string, opts: ConnectOptions): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES, handshakeTimeout: timeoutMs, generateMask: ZERO_MASK, ...opts.tls });
    const fail = (err: Error) => {
      ws.terminate();
      reject(err instanceof KoalaError ? err : new KoalaError('UNREACHABLE', `cannot reach ${url}: ${err.message}`));
    };
    ws.once('error', fail);
    ws.once('open', () => {
      const early = new EarlyFrames();
      offerHandshake(ws, opts.identity, early).then((remote) => {
        ws.off('error', fail);
        ws.on('error', () => {});
        resolve(new Peer(ws, remote, { onRequest: opts.onRequest ?? refuseRequests, early: early.take(), ...(opts.log ? { log: opts.log } : {}) }));
      }, fail);
    });
  });
}

const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 5000;

/** Keeps at most one connection per address; concurrent callers share the dial in progress. */
export class PeerPool {
  readonly #opts: ConnectOptions;
  readonly #peers = new Map<string, Promise<Peer>>();
  /** The same connections, once open: for callers that must not wait a microtask for a Promise. */
  readonly #open = new Map<string, Peer>();
  readonly #failures = new Map<string, { count: number; until: number }>();

  constructor(opts: ConnectOptions) {
    this.#opts = opts;
  }

  /** The open connection to `url`, if there is one now (no dialling). */
  ready(url: string): Peer | undefined {
    return this.#open.get(url);
  }

  get(url: string): Promise<Peer> {
    const existing = this.#peers.get(url);
    if (existing) return existing;
    const failure = this.#failures.get(url);
    if (failure && failure.until > Date.now()) {
      return Promise.reject(new KoalaError('UNREACHABLE', `${url} is unreachable (retrying in ${failure.until - Date.now()} ms)`));
    }
    const dial = connect(url, this.#opts).then(
      (peer) => {
        this.#failures.delete(url);
        if (this.#peers.get(url) === dial) this.#open.set(url, peer);
        peer.onClose(() => {
          if (this.#peers.get(url) === dial) this.#peers.delete(url);
          if (this.#open.get(url) === peer) this.#open.delete(url);
        });
        return peer;
      },
      (err: Error) => {
        this.#peers.delete(url);
        const count = (failure?.count ?? 0) + 1;
        const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (count - 1));
        this.#failures.set(url, { count, until: Date.now() + delay });
        throw err;
      },
    );
    this.#peers.set(url, dial);
    return dial;
  }

  async close(): Promise<void> {
    const peers = await Promise.allSettled(this.#peers.values());
    this.#peers.clear();
    this.#open.clear();
    for (const p of peers) if (p.status === 'fulfilled') p.value.close(1001, 'shutting down');
  }
}
