// A process of the ceiling: `server` answers every request; `relay <upstream url>` forwards
// requests to the upstream server over one connection and routes the answers back to the client
// that asked (ids remapped, as any relay serving many clients must). No Koala code.
// Reports `{ url }` over IPC once listening; exits when the parent goes away.
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { Batcher, eachMessage, REQUEST, RESPONSE } from '../lib/ceiling-wire.ts';

const [mode, upstreamUrl] = process.argv.slice(2);
process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM, so that `--cpu-prof` profiles get written.
process.on('SIGTERM', () => process.exit(0));

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
const listening = new Promise<void>((resolve) => wss.once('listening', () => resolve()));

if (mode === 'server') {
  wss.on('connection', (ws) => {
    const out = new Batcher(ws);
    ws.on('message', (data) => {
      const frame = data as Buffer;
      eachMessage(frame, (start, end, id) => out.forward(frame, start, end, RESPONSE, id));
    });
  });
} else if (mode === 'relay') {
  const upstream = new WebSocket(upstreamUrl!, { perMessageDeflate: false, maxPayload: 16 * 1024 * 1024, generateMask: (mask: Buffer) => void mask.fill(0) });
  await new Promise<void>((resolve, reject) => {
    upstream.once('open', () => resolve());
    upstream.once('error', reject);
  });
  const toUpstream = new Batcher(upstream);
  const pending = new Map<number, { out: Batcher; id: number }>();
  let nextId = 1;
  upstream.on('message', (data) => {
    const frame = data as Buffer;
    eachMessage(frame, (start, end, id) => {
      const caller = pending.get(id);
      if (caller === undefined) return;
      pending.delete(id);
      caller.out.forward(frame, start, end, RESPONSE, caller.id);
    });
  });
  wss.on('connection', (ws) => {
    const out = new Batcher(ws);
    ws.on('message', (data) => {
      const frame = data as Buffer;
      eachMessage(frame, (start, end, id) => {
        const relayId = nextId;
        nextId = nextId >= 0xffffffff ? 1 : nextId + 1;
        pending.set(relayId, { out, id });
        toUpstream.forward(frame, start, end, REQUEST, relayId);
      });
    });
  });
} else {
  throw new Error(`usage: ws-node.ts server | relay <upstream url> (got ${mode})`);
}

await listening;
const { port } = wss.address() as AddressInfo;
process.send!({ url: `ws://127.0.0.1:${port}` });
