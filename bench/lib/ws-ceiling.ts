// The ceiling: what bare `ws` with Koala's batching can do on this machine, no Koala code.
// Two hops (client → relay → server, as client → gateway → host) or one (client → server, as
// host → host). The client runs in the bench process, the relay and the server are child processes.
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Batcher, eachMessage, payloadInt } from './ceiling-wire.ts';
import { startChild, stopAll } from './child.ts';

const NODE = fileURLToPath(new URL('../procs/ws-node.ts', import.meta.url));

export interface Ceiling {
  /** `ping(n)` through the ceiling's hops: resolves with n. */
  call(n: number): Promise<number>;
  close(): Promise<void>;
  /** The child processes: name → pid. */
  pids: Record<string, number>;
}

export async function startCeiling(hops: 1 | 2): Promise<Ceiling> {
  const stops: (() => Promise<void>)[] = [];
  try {
    const server = await startChild<{ url: string }>(NODE, ['server']);
    stops.unshift(server.stop);
    const pids: Record<string, number> = { server: server.proc.pid ?? 0 };
    let url = server.ready.url;
    if (hops === 2) {
      const relay = await startChild<{ url: string }>(NODE, ['relay', url]);
      stops.unshift(relay.stop);
      pids.relay = relay.proc.pid ?? 0;
      url = relay.ready.url;
    }
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 16 * 1024 * 1024, generateMask: (mask: Buffer) => void mask.fill(0) });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    stops.unshift(async () => {
      ws.terminate();
    });
    const out = new Batcher(ws);
    const pending = new Map<number, (n: number) => void>();
    let nextId = 1;
    ws.on('message', (data) => {
      const frame = data as Buffer;
      eachMessage(frame, (start, _end, id) => {
        const resolve = pending.get(id);
        if (resolve === undefined) return;
        pending.delete(id);
        resolve(payloadInt(frame, start));
      });
    });
    return {
      call(n: number): Promise<number> {
        const id = nextId;
        nextId = nextId >= 0xffffffff ? 1 : nextId + 1;
        return new Promise<number>((resolve) => {
          out.request(id, n);
          pending.set(id, resolve);
        });
      },
      close: () => stopAll(stops),
      pids,
    };
  } catch (err) {
    await stopAll(stops);
    throw err;
  }
}
