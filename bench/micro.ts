// Component microbenchmarks: one process's JavaScript on the steady-state path, in this process,
// over stub sockets (no kernel, no other process). On a shared machine the whole-path profile
// (`bench/profile.ts`) cannot see a change of 0.05 µs per call; these can. CPU per call (or per
// turn, per envelope) from `process.cpuUsage`, the min and median of 7 windows.
//
//   node bench/micro.ts <client|gateway|host|caller|ceiling-client|turn|decode|writer> [checkout] [--rounds=N] [--lanes=N]
//
// `--lanes=N` (`caller` and `ceiling-client`): how many awaiting lanes make the calls, 10 calls each
// per round (default 100; the host-to-host case runs 1 000).
//
// `--rounds=N`: after the warm-up, run N rounds and print nothing (for bench/instructions.ts,
// which counts the instructions of two such runs under valgrind: the difference is per call).
//
// `checkout`: the root of another checkout of Koala (e.g. an earlier commit exported with `git
// archive`) to measure instead of this one, for before/after comparisons run alternately.
import { EventEmitter } from 'node:events';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The modules come from a checkout named at run time (possibly an older one): untyped here.
type Any = any;

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
/** The value of `--name=value`, if given. */
const flag = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const roundsFlag = flag('rounds');
const countedRounds = roundsFlag === undefined ? undefined : Number(roundsFlag);
const lanesFlag = flag('lanes');
const LANES = lanesFlag === undefined ? 100 : Number(lanesFlag);
if (!Number.isInteger(LANES) || LANES < 1) {
  console.error(`--lanes must be a whole number of lanes (1 or more), got "--lanes=${lanesFlag}"`);
  process.exit(2);
}
const subject = positional[0] ?? '';
const root = resolve(positional[1] ?? resolve(dirname(fileURLToPath(import.meta.url)), '..'));
const load = (path: string): Promise<Any> => import(`${root}/${path}`);

const { Peer } = await load('src/runtime/wire/peer.ts');
const { FrameWriter, readFrame } = await load('src/runtime/wire/frame.ts');
const benchActor = await load('bench/fixtures-empty.ts');
const IBench = benchActor.IBench;
const ping = IBench.service.message('ping');
// What writeArgs takes for ping's arguments: its MethodCodec, or (an older checkout) its fields.
const codecs = await load('src/runtime/wire/value-codec.ts');
const pingCodec = codecs.methodCodec === undefined ? ping.requestType.fields : codecs.methodCodec(ping);
// What writeAnswerValue takes for ping's result: its ValueCodec, or (an older checkout) its type.
const pingResult = codecs.valueCodec === undefined ? ping.responseType : codecs.valueCodec(ping.responseType);
const NO_HEADERS = Object.freeze({});
const CALLS = 1000; // per frame, as at 1 000 in flight
/** Calls per round of the lane-driven subjects: 10 per lane, at least a frame's worth. */
const LANE_CALLS = Math.max(CALLS, LANES * 10);

/** A WebSocket that keeps what is sent; frames are fed in with `emit('message', frame, true)`. */
class StubSocket extends EventEmitter {
  readonly sent: Buffer[] = [];
  send(frame: Buffer): void {
    this.sent.push(frame);
  }
  ping(): void {}
  close(): void {}
  terminate(): void {}
}

function stubPeer(onRequest: (env: Any, peer: Any) => void, spans = false): { peer: Any; socket: StubSocket } {
  const socket = new StubSocket();
  const peer = new Peer(socket, { node: 'stub', role: 'stub', cluster: 'bench', version: 2 }, { onRequest, heartbeatMs: 0, spans });
  return { peer, socket };
}

const tick = (): Promise<void> => new Promise((done) => setImmediate(done));

let nextRequestId = 0;
/** A frame of CALLS requests as a client writes them. */
function requestFrame(): Buffer {
  const w = new FrameWriter();
  for (let i = 0; i < CALLS; i++) {
    w.writeArgs('REQUEST', ++nextRequestId, { iface: 'IBench', key: String(i % 64), method: 'ping', chain: '', headers: NO_HEADERS }, 30_000, 0, pingCodec, [i]);
  }
  return w.take();
}

/** Runs `round` (`perRound` calls or other units) `rounds` times per window; prints µs per unit. */
async function measure(name: string, rounds: number, round: () => Promise<number> | number, perRound = CALLS): Promise<void> {
  for (let i = 0; i < rounds; i++) await round(); // warm-up: JIT
  if (countedRounds !== undefined) {
    for (let i = 0; i < countedRounds; i++) await round();
    return;
  }
  const windows: number[] = [];
  for (let w = 0; w < 7; w++) {
    let excluded = 0;
    const start = process.cpuUsage();
    for (let i = 0; i < rounds; i++) excluded += await round();
    const used = process.cpuUsage(start);
    windows.push((used.user + used.system - excluded) / (rounds * perRound));
  }
  windows.sort((a, b) => a - b);
  console.log(`${name}: min ${windows[0]!.toFixed(3)} med ${windows[3]!.toFixed(3)} µs`);
}

/** CPU µs spent in `fn` (to leave a stub's own work out of a window). */
function cpuOf(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

async function client(): Promise<void> {
  const { ClusterClient } = await load('src/runtime/client/cluster-client.ts');
  const { peer, socket } = stubPeer(() => {});
  const cluster = new ClusterClient(peer, 30_000); // private constructor: connect() would dial
  let answered = 0;
  const answers = new FrameWriter();
  await measure('client, per call (getProxy(IBench, i % 64).ping(i), answer decoded)', 100, async () => {
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < CALLS; i++) calls.push(cluster.getProxy(IBench, i % 64).ping(i));
    await tick();
    socket.sent.length = 0;
    // The stub's writing of the answers is left out; their reading is the client's.
    const stub = cpuOf(() => {
      for (let i = 0; i < CALLS; i++) answers.writeAnswerValue('RESPONSE', ++answered, pingResult, i);
    });
    socket.emit('message', answers.take(), true);
    await Promise.all(calls);
    return stub;
  });
}

async function gateway(): Promise<void> {
  const { ActorRouter } = await load('src/runtime/routing/router.ts');
  const host = stubPeer(() => {});
  const position = { host: 'h', address: 'ws://h', epoch: 1 };
  const router = new ActorRouter({ placement: { locate: async () => position }, pool: { ready: () => host.peer, get: async () => host.peer } });
  // The gateway's own #onRequest is private: the same steps (a ReplyTo per call, forwardDecoded).
  const { replyError } = await load('src/runtime/wire/rpc.ts');
  class ReplyTo {
    readonly #peer: Any;
    readonly #request: Any;
    constructor(peer: Any, request: Any) {
      this.#peer = peer;
      this.#request = request;
    }
    answer(kind: string, _id: number, frame: Buffer, start: number, end: number): void {
      if (this.#request.kind === 'REQUEST') this.#peer.replyBytes(this.#request, kind, frame, start, end);
    }
    fail(err: Error): void {
      replyError(this.#peer, this.#request, err);
    }
  }
  const client = stubPeer((env, peer) => router.forwardDecoded(env, env.deadline, new ReplyTo(peer, env)), true);
  const answers = new FrameWriter();
  await measure('gateway, per call (forwarded, answer passed back)', 50, async () => {
    // Writing the client's requests and the stub host's answers is left out.
    let requests: Buffer = Buffer.alloc(0);
    let stub = cpuOf(() => (requests = requestFrame()));
    client.socket.emit('message', requests, true);
    await tick();
    stub += cpuOf(() => {
      for (const frame of host.socket.sent.splice(0)) readFrame(frame, (env: Any) => answers.writeAnswerValue('RESPONSE', env.id, pingResult, 1));
    });
    host.socket.emit('message', answers.take(), true);
    await tick();
    client.socket.sent.length = 0;
    return stub;
  });
}

async function hostPath(): Promise<void> {
  const { WireServer } = await load('src/runtime/wire/server.ts');
  const { startInProcessHost } = await load('bench/cases/in-process-host.ts');
  let onRequest: Any;
  const listen = WireServer.listen;
  WireServer.listen = (opts: Any) => {
    onRequest = opts.onRequest; // the host's handler, to feed it frames without a socket
    return listen.call(WireServer, opts);
  };
  const host = await startInProcessHost([benchActor.default]);
  for (let i = 0; i < 64; i++) await host.proxy(IBench, String(i)).ping(i); // activations
  const gatewaySide = stubPeer(onRequest);
  await measure('host, per call (request decoded, turn run, result encoded)', 50, async () => {
    let requests: Buffer = Buffer.alloc(0);
    const stub = cpuOf(() => (requests = requestFrame()));
    gatewaySide.socket.emit('message', requests, true);
    await tick();
    gatewaySide.socket.sent.length = 0;
    return stub;
  });
  await host.stop();
}

/** The calling host of the host-to-host case: the driver actor's calls to a stub remote host. */
async function caller(): Promise<void> {
  const { PeerPool } = await load('src/runtime/wire/connect.ts');
  const { startInProcessHost } = await load('bench/cases/in-process-host.ts');
  const driverPlugin = await load('bench/fixtures-driver.ts');
  const remote = stubPeer(() => {});
  const REMOTE = 'ws://stub-host';
  // The targets live on a host that is only a stub socket: its connection is always open.
  const ready = PeerPool.prototype.ready;
  const get = PeerPool.prototype.get;
  PeerPool.prototype.ready = function (this: Any, url: string) {
    return url === REMOTE ? remote.peer : ready.call(this, url);
  };
  PeerPool.prototype.get = function (this: Any, url: string) {
    return url === REMOTE ? Promise.resolve(remote.peer) : get.call(this, url);
  };
  const { InProcessPlacement } = await load('src/runtime/placement/embedded/in-process.ts');
  const locate = InProcessPlacement.prototype.locate;
  InProcessPlacement.prototype.locate = function (this: Any, iface: string, key: string) {
    return iface === 'IBench' ? Promise.resolve({ host: 'stub-host', address: REMOTE, epoch: 1 }) : locate.call(this, iface, key);
  };
  const host = await startInProcessHost([driverPlugin.default]);
  const targets = Array.from({ length: 32 }, (_, i) => `t${i}`);
  const driver = host.proxy(driverPlugin.IDriver, 'driver');
  const answers = new FrameWriter();
  /** Answers every request the driver sent so far; returns the stub's CPU µs. */
  const answerAll = (): number =>
    cpuOf(() => {
      for (const frame of remote.socket.sent.splice(0)) readFrame(frame, (env: Any) => answers.writeAnswerValue('RESPONSE', env.id, pingResult, 1));
    });
  await measure(`caller, per call (an actor's call made, its answer read, its await resumed; ${LANES} lanes)`, 50, async () => {
    // LANES lanes of 10 calls each (in the bench, each lane makes hundreds of calls: a lane's start is not a call's cost).
    const drive = driver.drive(LANE_CALLS, LANES, targets);
    let stub = 0;
    // Calls go out as the answers to earlier ones come in (the driver's lanes), so answer until done.
    let done = false;
    void drive.then(() => (done = true));
    while (!done) {
      await tick();
      stub += answerAll();
      if (answers.count > 0) remote.socket.emit('message', answers.take(), true);
    }
    return stub;
  }, LANE_CALLS);
  await host.stop();
}

/**
 * The one-hop ceiling's client (bench/lib/ws-ceiling.ts: its batching, its pending Map, a Promise
 * per call), driven as `caller` drives the driver actor: the figure to hold `caller` against.
 * Always this checkout's ceiling (it is not Koala code).
 */
async function ceilingClient(): Promise<void> {
  const wire = await import('./lib/ceiling-wire.ts');
  const sent: Buffer[] = [];
  const out = new wire.Batcher({ send: (frame: Buffer) => void sent.push(frame) } as Any);
  const pending = new Map<number, (n: number) => void>();
  let nextId = 1;
  // As startCeiling's client: a request per call, answers matched by id.
  const call = (n: number): Promise<number> => {
    const id = nextId++;
    return new Promise<number>((resolve) => {
      out.request(id, n);
      pending.set(id, resolve);
    });
  };
  const onFrame = (frame: Buffer): void =>
    wire.eachMessage(frame, (start, _end, id) => {
      const resolve = pending.get(id);
      if (resolve === undefined) return;
      pending.delete(id);
      resolve(wire.payloadInt(frame, start));
    });
  await measure(`ceiling client, per call (a request written, its answer read, its await resumed; ${LANES} lanes)`, 50, async () => {
    let left = LANE_CALLS;
    let n = 0;
    const lane = async () => {
      while (left > 0) {
        left--;
        await call(n++);
      }
    };
    let done = false;
    void Promise.all(Array.from({ length: LANES }, lane)).then(() => (done = true));
    let stub = 0;
    while (!done) {
      await tick();
      // The stub server turns each request into its answer (left out, as `caller`'s stub is).
      let answers: Buffer[] = [];
      stub += cpuOf(() => {
        answers = sent.splice(0).map((frame) => {
          wire.eachMessage(frame, (start) => void (frame[start + wire.KIND_OFFSET] = wire.RESPONSE));
          return frame;
        });
      });
      for (const frame of answers) onFrame(frame);
    }
    return stub;
  }, LANE_CALLS);
}

async function turn(): Promise<void> {
  const { Activation } = await load('src/runtime/actor/activation.ts');
  class Bench {
    ping(n: number): number {
      return n;
    }
  }
  const activations = Array.from({ length: 64 }, (_, i) => new Activation(IBench, String(i), `IBench/${i}`, new Bench(), 1, () => {}, (e: unknown) => e));
  let sum = 0;
  // The host's short path hands in one object that is the turn, its context and its receiver.
  class Call {
    readonly touch = true;
    readonly check = undefined;
    readonly ctx = this;
    readonly done = this;
    settled = false;
    readonly chain = 'c';
    readonly deadline = 0;
    readonly identity = 'IBench/0';
    readonly parent = undefined;
    readonly origin = undefined;
    readonly method: (n: number) => number;
    readonly args: unknown[];
    constructor(method: (n: number) => number, args: unknown[]) {
      this.method = method;
      this.args = args;
    }
    resolve(value: number): void {
      sum += value;
    }
    reject(): void {}
  }
  await measure('turn, per call (enqueueTurn of a synchronous method, 64 activations)', 2000, () => {
    for (let i = 0; i < CALLS; i++) activations[i & 63]!.enqueueTurn(new Call(Bench.prototype.ping, [i]));
    return 0;
  });
  if (sum === 0) throw new Error('no turn ran');
}

async function decode(): Promise<void> {
  const requests = requestFrame();
  const w = new FrameWriter();
  for (let i = 0; i < CALLS; i++) w.writeAnswerValue('RESPONSE', 100_000 + i, pingResult, i);
  const answers = w.take();
  let sum = 0;
  const onEnvelope = (env: Any) => (sum += env.deadline);
  const onAnswer = (_kind: string, id: number) => (sum += id);
  await measure('decode, per request and answer (readFrame with spans, as a gateway)', 2000, () => {
    readFrame(requests, onEnvelope, true, onAnswer);
    readFrame(answers, onEnvelope, true, onAnswer);
    return 0;
  });
}

/** Writing a fan-out's calls: what a calling host's writer does per call (`FrameWriter.writeArgs`), and a frame taken per batch. */
async function writer(): Promise<void> {
  // As a calling host writes to another host (protocol version 2: calls may inherit their fields).
  const w = new FrameWriter(true);
  // As a turn's fan-out writes them: one interface, method, chain and headers; keys and arguments vary.
  const calls = Array.from({ length: 32 }, (_, i) => ({ iface: 'IBench', key: `t${i}`, method: 'ping', chain: 'q1w2e3r4.t5y', deadline: 0, epoch: 0, headers: NO_HEADERS }));
  const args = [[1], [200], [30_000]];
  await measure('writer, per call (writeArgs, and a frame taken per batch)', 200, () => {
    for (let i = 0; i < CALLS; i++) {
      w.writeArgs('REQUEST', 1000 + i, calls[i & 31]!, 29_000, 0, pingCodec, args[i % 3]!);
      if (w.full) w.take();
    }
    w.take();
    return 0;
  });
}

const subjects: Record<string, () => Promise<void>> = { client, gateway, host: hostPath, caller, 'ceiling-client': ceilingClient, turn, decode, writer };
const run = subjects[subject];
if (run === undefined) {
  console.error(`usage: node bench/micro.ts <${Object.keys(subjects).join('|')}> [checkout]`);
  process.exit(2);
}
await run();
process.exit(0);
