// Real Consul agents for tests: `consul agent -dev`, or a cluster of servers on loopback, as child
// processes on free ports, stopped by t.teardown (or `stop()`), and never left running.
//
// The binary is $KOALA_CONSUL_BIN or <repo>/.cache/consul/consul, put there by
// scripts/ensure-consul.sh (the `pretest` script runs it).
//
// Leftovers: every agent is started under `setpriv --pdeathsig KILL` where setpriv exists, so the
// kernel kills it if the test process dies (a crash, ava's timeout, SIGKILL); a process 'exit'
// handler kills what is still running and removes temp dirs when the test process exits normally.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import type { HostInfo } from '../../src/runtime/placement/protocol.ts';
import { freePorts } from '../../src/runtime/util/free-port.ts';
import { stopChild, sweepOrphanDirs } from './orphans.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** How long stop() waits after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5_000;

export interface ConsulPorts {
  http: number;
  serfLan: number;
  /** Raft/RPC; `/v1/status/leader` names a server by `host:server`. */
  server: number;
}

export interface ConsulAgent {
  /** Node name, unique per agent. */
  readonly name: string;
  /** Bind and client address (127.0.0.1, or 127.0.0.N in a cluster). */
  readonly host: string;
  /** HTTP API address `host:port`, as a Consul client takes it. */
  readonly address: string;
  /** HTTP API base URL, `http://host:port`. */
  readonly url: string;
  readonly ports: ConsulPorts;
  /** `host:serverPort`: how `/v1/status/leader` and `/v1/status/peers` name this agent. */
  readonly serverAddress: string;
  readonly pid: number;
  /** Whether the process is still running. */
  running(): boolean;
  /** The agent's recent output (last 400 lines). */
  logs(): string;
  /** SIGTERM, SIGKILL after 5 s, wait for the exit, remove temp dirs. Idempotent; never throws. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), wait for the exit. Temp dirs go at stop() or teardown. */
  kill(): Promise<void>;
}

export interface ConsulOptions {
  /** Consul binary; default $KOALA_CONSUL_BIN or .cache/consul/consul. */
  bin?: string;
  /** Bind and client address; default 127.0.0.1. */
  host?: string;
  /** Node name; default unique. */
  name?: string;
  /** Until the agent has a leader and its own node is registered and healthy; default 30 s. */
  timeoutMs?: number;
  /** Agent log level; default `info`. */
  logLevel?: string;
  /** Extra `consul agent` arguments. */
  args?: string[];
}

export interface ConsulCluster {
  readonly agents: ConsulAgent[];
  /**
   * The agent that is leader now: polls the running agents until all that answer name the same
   * leader and it is a running agent of this cluster (after a leader is killed, followers name it
   * for a while). Throws after `timeoutMs` (default 30 s).
   */
  leader(timeoutMs?: number): Promise<ConsulAgent>;
  /** Stops every agent. Idempotent; never throws. */
  stop(): Promise<void>;
}

/** The consul binary to run, or one clear error. */
export function consulBinary(bin?: string): string {
  const path = bin ?? process.env.KOALA_CONSUL_BIN ?? join(REPO, '.cache', 'consul', 'consul');
  try {
    accessSync(path, fsConstants.X_OK);
  } catch {
    throw new Error(`consul not found: run scripts/ensure-consul.sh (looked for ${path})`);
  }
  return path;
}

/** Starts `consul agent -dev` on free ports; stopped by `t.teardown` when `t` is given. */
export async function startConsul(t?: ExecutionContext, opts: ConsulOptions = {}): Promise<ConsulAgent> {
  const bin = consulBinary(opts.bin);
  const host = opts.host ?? '127.0.0.1';
  const name = opts.name ?? uniqueName('dev');
  const timeoutMs = opts.timeoutMs ?? 30_000;
  for (let attempt = 1; ; attempt++) {
    const [http, serfLan, server] = await freePorts(host, 3, [1]);
    const ports = { http: http!, serfLan: serfLan!, server: server! };
    const agent = launch(bin, { name, host, ports, dataDir: undefined }, [
      '-dev',
      ...commonArgs(name, host, ports, opts.logLevel),
      ...(opts.args ?? []),
    ]);
    t?.teardown(() => agent.stop());
    try {
      await waitReady([agent], timeoutMs);
      return agent;
    } catch (err) {
      await agent.stop();
      if (attempt < 3 && /address already in use/i.test(agent.logs())) continue; // lost a port race
      throw err;
    }
  }
}

/**
 * Starts `n` Consul servers (`-server -bootstrap-expect n`) joined into one cluster, each on its
 * own loopback address (127.0.0.2, 127.0.0.3, … where binding them works, else all on 127.0.0.1)
 * and its own free ports; resolves once a leader is elected and every agent is registered.
 */
export async function startConsulCluster(t?: ExecutionContext, n = 3, opts: Omit<ConsulOptions, 'host' | 'name'> = {}): Promise<ConsulCluster> {
  const bin = consulBinary(opts.bin);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  await sweepOrphanDirs(/^koala-consul-koala-[a-z]+-(\d+)-/);
  const hosts = (await loopbackAliasesWork(n)) ? Array.from({ length: n }, (_, i) => `127.0.0.${i + 2}`) : Array.from({ length: n }, () => '127.0.0.1');
  const id = uniqueName('srv');
  for (let attempt = 1; ; attempt++) {
    const specs = [];
    for (let i = 0; i < n; i++) {
      const host = hosts[i]!;
      const [http, serfLan, server] = await freePorts(host, 3, [1]);
      specs.push({ name: `${id}-${i + 1}`, host, ports: { http: http!, serfLan: serfLan!, server: server! } });
    }
    const agents: ConsulAgent[] = [];
    const cluster: ConsulCluster = {
      agents,
      leader: (ms = 30_000) => findLeader(agents, ms),
      stop: async () => {
        await Promise.all(agents.map((a) => a.stop()));
      },
    };
    t?.teardown(() => cluster.stop());
    try {
      for (const spec of specs) {
        const dataDir = await mkdtemp(join(tmpdir(), `${DATA_DIR_PREFIX}${spec.name}-`));
        const peers = specs.filter((s) => s !== spec).map((s) => `-retry-join=${s.host}:${s.ports.serfLan}`);
        agents.push(
          launch(bin, { ...spec, dataDir }, [
            '-server',
            `-bootstrap-expect=${n}`,
            `-data-dir=${dataDir}`,
            ...commonArgs(spec.name, spec.host, spec.ports, opts.logLevel),
            ...peers,
            '-retry-interval=200ms',
            // Test timing: leader lease 500 ms, election within ~1-2 s of losing the leader.
            '-hcl=performance { raft_multiplier = 1 }',
            ...(opts.args ?? []),
          ]),
        );
      }
      await waitReady(agents, timeoutMs);
      return cluster;
    } catch (err) {
      await cluster.stop();
      if (attempt < 3 && agents.some((a) => /address already in use/i.test(a.logs()))) continue;
      throw err;
    }
  }
}

// ---- internals ---------------------------------------------------------------------------------

function commonArgs(name: string, host: string, ports: ConsulPorts, logLevel = 'info'): string[] {
  return [
    `-node=${name}`,
    `-bind=${host}`,
    `-client=${host}`,
    `-http-port=${ports.http}`,
    `-serf-lan-port=${ports.serfLan}`,
    `-server-port=${ports.server}`,
    '-dns-port=-1',
    '-grpc-port=-1',
    '-serf-wan-port=-1',
    `-log-level=${logLevel}`,
  ];
}

const DATA_DIR_PREFIX = 'koala-consul-';
let counter = 0;
function uniqueName(kind: string): string {
  return `koala-${kind}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Agents not yet stopped, for the process 'exit' handler. */
const live = new Set<{ child: ChildProcess; dataDir: string | undefined }>();
let exitHandlerInstalled = false;
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const { child, dataDir } of live) {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          child.kill('SIGKILL');
        } catch {
          // gone
        }
      }
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

let setprivWorks: boolean | undefined;
/** `setpriv --pdeathsig KILL` (util-linux): the agent dies with the test process. */
function pdeathsigPrefix(): string[] {
  setprivWorks ??= spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' }).status === 0;
  return setprivWorks ? ['setpriv', '--pdeathsig', 'KILL', '--'] : [];
}

function launch(bin: string, spec: { name: string; host: string; ports: ConsulPorts; dataDir: string | undefined }, args: string[]): ConsulAgent {
  installExitHandler();
  const argv = [...pdeathsigPrefix(), bin, 'agent', ...args];
  // setpriv execs consul: the child's pid is consul's.
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const entry = { child, dataDir: spec.dataDir };
  live.add(entry);
  const lines: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      lines.push(line);
      if (lines.length > 400) lines.shift();
    }
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      spawnError = err;
      lines.push(`spawn failed: ${err.message}`);
      resolve();
    });
  });
  const running = () => spawnError === undefined && child.exitCode === null && child.signalCode === null;

  let stopping: Promise<void> | undefined;
  const agent: ConsulAgent = {
    name: spec.name,
    host: spec.host,
    address: `${spec.host}:${spec.ports.http}`,
    url: `http://${spec.host}:${spec.ports.http}`,
    ports: spec.ports,
    serverAddress: `${spec.host}:${spec.ports.server}`,
    pid: child.pid ?? -1,
    running,
    logs: () => lines.join('\n'),
    kill: async () => {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
    stop: () =>
      (stopping ??= (async () => {
        await stopChild(child, running, exited, 'SIGTERM', STOP_GRACE_MS);
        child.stdout?.destroy();
        child.stderr?.destroy();
        live.delete(entry);
        if (spec.dataDir) await rm(spec.dataDir, { recursive: true, force: true }).catch(() => undefined);
      })()),
  };
  return agent;
}

async function getJson(url: string): Promise<unknown> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) return undefined;
    return await res.json();
  } catch {
    return undefined;
  }
}

/** A leader is known and each agent's own node is in the catalog with serfHealth passing (sessions need that). */
async function waitReady(agents: ConsulAgent[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(agents);
  while (pending.size > 0) {
    for (const agent of [...pending]) {
      if (!agent.running()) {
        throw new Error(`consul agent ${agent.name} exited while starting:\n${tail(agent.logs())}`);
      }
      const leader = await getJson(`${agent.url}/v1/status/leader`);
      if (typeof leader !== 'string' || leader === '') continue;
      const checks = await getJson(`${agent.url}/v1/health/node/${encodeURIComponent(agent.name)}`);
      if (Array.isArray(checks) && checks.some((c: { CheckID?: string; Status?: string }) => c.CheckID === 'serfHealth' && c.Status === 'passing')) {
        pending.delete(agent);
      }
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) {
      const a = [...pending][0]!;
      throw new Error(`consul agent ${a.name} not ready (leader + registered node) within ${timeoutMs} ms:\n${tail(a.logs())}`);
    }
    await sleep(50);
  }
}

async function findLeader(agents: ConsulAgent[], timeoutMs: number): Promise<ConsulAgent> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    const up = agents.filter((a) => a.running());
    const answers = (await Promise.all(up.map((a) => getJson(`${a.url}/v1/status/leader`)))).filter((x): x is string => typeof x === 'string');
    const named = new Set(answers);
    last = answers.length ? [...named].map((x) => x || '(none)').join(', ') : 'no agent answered';
    if (named.size === 1 && answers.length === up.length) {
      const leader = up.find((a) => a.serverAddress === answers[0]);
      if (leader) return leader;
    }
    if (Date.now() > deadline) throw new Error(`no agreed, running Consul leader within ${timeoutMs} ms (agents name: ${last})`);
    await sleep(50);
  }
}

let aliasesChecked: Promise<boolean> | undefined;
let aliasesFor = 0;
/** Whether 127.0.0.2 … 127.0.0.(n+1) can be bound (Linux routes all of 127/8 to lo). */
function loopbackAliasesWork(n: number): Promise<boolean> {
  if (!aliasesChecked || aliasesFor < n) {
    aliasesFor = n;
    aliasesChecked = (async () => {
      for (let i = 0; i < n; i++) {
        try {
          await freePorts(`127.0.0.${i + 2}`, 1, [0]);
        } catch {
          return false;
        }
      }
      return true;
    })();
  }
  return aliasesChecked;
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A host as a test registers it straight through ConsulPlacement (no host process), serving `iface`. */
export function consulHostInfo(id: string, port: number, iface: string): HostInfo {
  return {
    id,
    group: 'host',
    address: `127.0.0.1:${port}`,
    pid: process.pid,
    startedAt: Date.now(),
    load: 0,
    interfaces: [{ name: iface, fingerprint: 'f', protocol: '{}', stateless: false }],
    role: 'host',
    health: 'passing',
  };
}
