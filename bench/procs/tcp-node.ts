// A process of the TCP floor: what one call in flight costs on this machine with no WebSocket, no
// batching and no JavaScript work beyond moving bytes. `server` echoes every message; `relay
// <upstream port>` passes messages to the upstream server over one connection and the answers back.
// Messages are MESSAGE_BYTES long (the size of a Koala call envelope). Reports `{ port }` over IPC
// once listening; exits when the parent goes away.
import net, { type AddressInfo } from 'node:net';
import { MESSAGE_BYTES } from '../lib/tcp-floor.ts';

const [mode, upstreamPort] = process.argv.slice(2);
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

const NOTHING = Buffer.alloc(0);

/** Calls `each` with every whole message that arrives on `socket` (TCP may split or join them). */
function onMessages(socket: net.Socket, each: (message: Buffer) => void): void {
  let held = NOTHING;
  socket.on('data', (chunk: Buffer) => {
    let data = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
    while (data.length >= MESSAGE_BYTES) {
      each(data.subarray(0, MESSAGE_BYTES));
      data = data.subarray(MESSAGE_BYTES);
    }
    // Usually nothing is left: the floor allocates nothing more per message then.
    held = data.length === 0 ? NOTHING : Buffer.from(data);
  });
}

let handle: (client: net.Socket) => void;
if (mode === 'server') {
  handle = (client) => onMessages(client, (message) => client.write(message));
} else if (mode === 'relay') {
  const upstream = net.connect(Number(upstreamPort), '127.0.0.1');
  upstream.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    upstream.once('connect', () => resolve());
    upstream.once('error', reject);
  });
  // One client at a time (the bench's): answers go back to it in order.
  let current: net.Socket | undefined;
  onMessages(upstream, (message) => current?.write(message));
  handle = (client) => {
    current = client;
    onMessages(client, (message) => upstream.write(message));
  };
} else {
  throw new Error(`usage: tcp-node.ts server | relay <upstream port> (got ${mode})`);
}

const server = net.createServer((client) => {
  client.setNoDelay(true);
  handle(client);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
process.send!({ port: (server.address() as AddressInfo).port });
