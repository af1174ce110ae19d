// Accepts WebSocket connections, runs the handshake and turns each into a Peer.
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { advertisedHost } from '../util/advertise.ts';
import { acceptHandshake, type LocalIdentity } from './handshake.ts';
import { Peer, type RequestHandler } from './peer.ts';

export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export interface WireServerOptions {
  identity: LocalIdentity;
  host: string;
  port: number;
  onRequest: RequestHandler;
  /** Peers keep received calls' byte spans, to forward them by copying (see PeerOptions.spans). */
  spans?: boolean;
  onPeer?: (peer: Peer) => void;
  log?: (line: string) => void;
}

export type UpgradeOptions = Omit<WireServerOptions, 'host' | 'port'>;

export class WireServer {
  readonly #wss: WebSocketServer;
  readonly #peers = new Set<Peer>();
  /** Connections still in the handshake: not peers yet, but they hold the server open. */
  readonly #handshaking = new Set<WebSocket>();
  #closing = false;
  #upgradeOptions: UpgradeOptions | undefined;

  private constructor(wss: WebSocketServer) {
    this.#wss = wss;
  }

  static listen(opts: WireServerOptions): Promise<WireServer> {
    return new Promise((resolve, reject) => {
      const wss = new WebSocketServer({ host: opts.host, port: opts.port, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES });
      const server = new WireServer(wss);
      wss.once('error', reject);
      wss.once('listening', () => {
        wss.off('error', reject);
        wss.on('error', (err) => opts.log?.(`wire server error: ${err.message}`));
        resolve(server);
      });
      wss.on('connection', (ws) => server.#accept(ws, opts));
    });
  }

  /** A wire endpoint on someone else's HTTP server: feed it the upgrade requests that are its. */
  static forUpgrades(opts: UpgradeOptions): WireServer {
    const server = new WireServer(new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES }));
    server.#upgradeOptions = opts;
    return server;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const opts = this.#upgradeOptions;
    if (opts === undefined) throw new Error('this wire server listens on its own port');
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, opts));
  }

  #accept(ws: WebSocket, opts: UpgradeOptions): void {
    ws.on('error', () => {});
    this.#handshaking.add(ws);
    acceptHandshake(ws, opts.identity).then(
      (remote) => {
        this.#handshaking.delete(ws);
        if (this.#closing) {
          ws.close(1001, 'shutting down');
          return;
        }
        const peer = new Peer(ws, remote, { onRequest: opts.onRequest, spans: opts.spans === true, ...(opts.log ? { log: opts.log } : {}) });
        this.#peers.add(peer);
        peer.onClose(() => this.#peers.delete(peer));
        opts.onPeer?.(peer);
      },
      (err: Error) => {
        this.#handshaking.delete(ws);
        opts.log?.(`refused a connection: ${err.message}`);
        ws.terminate();
      },
    );
  }

  get port(): number {
    return (this.#wss.address() as AddressInfo).port;
  }

  get url(): string {
    const addr = this.#wss.address() as AddressInfo;
    return `ws://${advertisedHost(addr.address)}:${addr.port}`;
  }

  get peers(): ReadonlySet<Peer> {
    return this.#peers;
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const peer of this.#peers) peer.close(1001, 'shutting down');
    // Otherwise the listening socket stays open until their handshake times out (5 s).
    for (const ws of this.#handshaking) ws.terminate();
    if (this.#upgradeOptions === undefined) await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    else this.#wss.close();
  }
}
