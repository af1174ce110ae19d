// The TCP floor: client → relay → server and back over plain TCP sockets (Nagle off), one message
// in flight, no WebSocket and no batching. Not a ceiling for throughput (it does not batch), but
// for latency at one call in flight it is the least any relay of this shape can take on this
// machine: its p99 shows how much of a tail the kernel and the VM's wake-ups make by themselves.
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { startChild, stopAll } from './child.ts';

const NODE = fileURLToPath(new URL('../procs/tcp-node.ts', import.meta.url));
/** A Koala call envelope's size (see ceiling-wire.ts). */
export const MESSAGE_BYTES = 40;

export interface TcpFloor {
  /** One message there and back. */
  call(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpFloor(): Promise<TcpFloor> {
  const stops: (() => Promise<void>)[] = [];
  try {
    const server = await startChild<{ port: number }>(NODE, ['server']);
    stops.unshift(server.stop);
    const relay = await startChild<{ port: number }>(NODE, ['relay', String(server.ready.port)]);
    stops.unshift(relay.stop);
    const socket = net.connect(relay.ready.port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    stops.unshift(async () => void socket.destroy());
    const message = Buffer.alloc(MESSAGE_BYTES, 7);
    let received = 0;
    let answered: (() => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= MESSAGE_BYTES && answered !== undefined) {
        received -= MESSAGE_BYTES;
        const done = answered;
        answered = undefined;
        done();
      }
    });
    return {
      call: () =>
        new Promise<void>((resolve) => {
          answered = resolve;
          socket.write(message);
        }),
      close: () => stopAll(stops),
    };
  } catch (err) {
    await stopAll(stops);
    throw err;
  }
}
