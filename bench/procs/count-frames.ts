// Preload (`node --import ./bench/procs/count-frames.ts`) for profiling runs: counts the WebSocket
// frames and bytes this process sends and receives (through `ws`, whoever calls it) and writes
// them to $BENCH_FRAMES_DIR/<pid>.frames.json on exit. Tells how well batching works per hop.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';

const dir = process.env.BENCH_FRAMES_DIR;
const counts = { pid: process.pid, argv: process.argv.slice(1).join(' '), sent: 0, sentBytes: 0, received: 0, receivedBytes: 0 };

/** This process's counts so far. */
export function frameCounts(): typeof counts {
  return { ...counts };
}

if (dir) {
  const proto = WebSocket.prototype as unknown as { send: (data: Buffer, ...rest: unknown[]) => void; emit: (event: string, ...args: unknown[]) => boolean };
  const send = proto.send;
  proto.send = function (this: unknown, data: Buffer, ...rest: unknown[]) {
    counts.sent++;
    counts.sentBytes += data.length ?? 0;
    return send.call(this, data, ...rest);
  };
  const emit = proto.emit;
  proto.emit = function (this: unknown, event: string, ...args: unknown[]) {
    if (event === 'message') {
      counts.received++;
      counts.receivedBytes += (args[0] as Buffer).length ?? 0;
    }
    return emit.call(this, event, ...args);
  };
  process.on('exit', () => writeFileSync(join(dir, `${process.pid}.frames.json`), JSON.stringify(counts)));
}
