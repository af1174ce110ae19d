// Preload (`node --import ./bench/procs/hop-times.ts`) for `profile.ts --hops`: stamps every
// WebSocket message this process receives (as `ws` hands it over) and every frame it sends (as it
// is handed to `ws`), on the clock all processes share (CLOCK_MONOTONIC through `hrtime`), and
// writes the stamps to $BENCH_HOPS_DIR/<pid>.hops.json on exit. At one call in flight that splits a
// round trip into its hops: time inside each process, and time between them (kernel, wake-up, `ws`).
// The stamps go into preallocated arrays (a ring): recording allocates nothing that survives, so it
// does not change the garbage collections it would measure.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';

const dir = process.env.BENCH_HOPS_DIR;
const CAPACITY = 1 << 20;
let write = () => {};

/** Writes this process's stamps now (children write theirs when they exit). */
export function writeHops(): void {
  write();
}

if (dir) {
  const base = process.hrtime.bigint();
  const at = new Float64Array(CAPACITY);
  const socket = new Uint16Array(CAPACITY);
  const sent = new Uint8Array(CAPACITY);
  let count = 0;
  // Each connection gets a small number, in the order this process first used it.
  const ids = new WeakMap<object, number>();
  let sockets = 0;
  const stamp = (ws: WebSocket, isSend: number) => {
    let id = ids.get(ws);
    if (id === undefined) ids.set(ws, (id = ++sockets));
    const i = count++ & (CAPACITY - 1);
    at[i] = Number(process.hrtime.bigint() - base);
    socket[i] = id;
    sent[i] = isSend;
  };
  const proto = WebSocket.prototype as unknown as { send: (data: Buffer, ...rest: unknown[]) => void; emit: (event: string, ...args: unknown[]) => boolean };
  const send = proto.send;
  proto.send = function (this: WebSocket, data: Buffer, ...rest: unknown[]) {
    stamp(this, 1);
    return send.call(this, data, ...rest);
  };
  const emit = proto.emit;
  proto.emit = function (this: WebSocket, event: string, ...args: unknown[]) {
    if (event === 'message') stamp(this, 0);
    return emit.call(this, event, ...args);
  };
  write = () => {
    const n = Math.min(count, CAPACITY);
    const first = count - n;
    const events: [number, number, number][] = [];
    for (let k = first; k < count; k++) {
      const i = k & (CAPACITY - 1);
      events.push([at[i]! / 1000, socket[i]!, sent[i]!]);
    }
    // Times in µs on the shared clock: base (ns) as a string keeps its precision.
    writeFileSync(join(dir, `${process.pid}.hops.json`), JSON.stringify({ pid: process.pid, baseNs: String(base), events }));
  };
  process.on('exit', write);
}
