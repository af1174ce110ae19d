// The supervisor: starts placement, hosts and the gateway as child processes, waits until each
// is ready, relays their logs, restarts the ones that crash and stops them all in order.
import { randomBytes } from 'node:crypto';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { LoadedManifest, Manifest } from '../config/manifest.ts';
import type { GatewayChildConfig } from '../gateway/main.ts';
import type { HostChildConfig } from '../host/main.ts';
import type { ConsulChildConfig } from '../consul/main.ts';
import { ConsulApi } from '../placement/consul/consul-api.ts';
import { absoluteTlsFiles, readConsulTls } from '../placement/consul/tls-files.ts';
import { openPlacement, type PlacementTarget } from '../placement/connect.ts';
import type { PlacementChildConfig } from '../placement/embedded/main.ts';
import { CHILD_CONFIG_ENV, type ChildBase, type ChildMessage } from '../process/child.ts';
import { claimProject, releaseProject, writeRunState, type ProcessState, type RunState } from './run-state.ts';

type Role = ProcessState['role'];

export interface SupervisorEvents {
  /** A line a child wrote (or the supervisor says about a child). */
  log(name: string, line: string, stream: 'stdout' | 'stderr'): void;
  /** Start-up progress: one call per child that became ready. */
  progress(name: string, detail: string, elapsedMs: number): void;
}

interface ChildSpec {
  name: string;
  role: Role;
  entry: string;
  config: ChildBase & Record<string, unknown>;
}

/**
 * Where children keep Node's compile cache. Every start compiles the same modules (Koala's own and
 * the plugins, TypeScript stripped first); from the cache a child is ready in about half the time
 * (measured: `koala up --detach`, children ready in 590–830 → 290–400 ms). A directory the
 * user chose (`NODE_COMPILE_CACHE`) holds, as does `NODE_DISABLE_COMPILE_CACHE=1`, which Node
 * honours in the children by itself.
 */
function compileCacheDir(): string {
  return process.env.NODE_COMPILE_CACHE ?? module.getCompileCacheDir?.() ?? join(tmpdir(), 'node-compile-cache');
}

function spawnChild(spec: ChildSpec) {
  return execa(process.execPath, [spec.entry], {
    env: { [CHILD_CONFIG_ENV]: JSON.stringify(spec.config), NODE_COMPILE_CACHE: compileCacheDir() },
    ipc: true,
    serialization: 'json',
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    cleanup: true,
  });
}

interface RunningChild {
  spec: ChildSpec;
  proc: ReturnType<typeof spawnChild>;
  state: ProcessState;
  restarts: number[];
  stopping: boolean;
  exited: boolean;
}

const ENTRIES: Record<Role, string> = {
  placement: fileURLToPath(new URL('../placement/embedded/main.ts', import.meta.url)),
  consul: fileURLToPath(new URL('../consul/main.ts', import.meta.url)),
  host: fileURLToPath(new URL('../host/main.ts', import.meta.url)),
  gateway: fileURLToPath(new URL('../gateway/main.ts', import.meta.url)),
};

const READY_TIMEOUT_MS = 20_000;
/** Per stop phase: a child gets this long after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 2000;
const RESTART_WINDOW_MS = 60_000;
const MAX_RESTARTS_IN_WINDOW = 5;

export class StartError extends Error {
  override name = 'StartError';
}

export class Supervisor {
  readonly #loaded: LoadedManifest;
  readonly #events: SupervisorEvents;
  readonly #secret: string;
  readonly #children = new Map<string, RunningChild>();
  #state: RunState | undefined;
  #stopping: Promise<void> | undefined;
  #target: PlacementTarget | undefined;

  constructor(loaded: LoadedManifest, events: SupervisorEvents) {
    this.#loaded = loaded;
    this.#events = events;
    // No secret in the manifest: a fresh one per run, shared with local tools through the run state.
    this.#secret = loaded.manifest.secret ?? randomBytes(24).toString('base64url');
  }

  get state(): RunState | undefined {
    return this.#state;
  }

  async start(): Promise<RunState> {
    const { manifest, root } = this.#loaded;
    claimProject(root, process.pid);
    try {
      const base = { cluster: manifest.cluster, secret: this.#secret, logLevel: manifest.logLevel, root };
      const target = (this.#target = await this.#startPlacement(base));
      const hosts = hostSpecs(manifest).map(({ name, group }) => ({
        name,
        role: 'host' as const,
        entry: ENTRIES.host,
        config: { ...base, name, group: group.name, plugins: group.plugins, placement: target, listenHost: manifest.gateway.host, callTimeoutMs: manifest.gateway.requestTimeoutMs, idleTimeoutMs: group.idleTimeoutMs, storage: manifest.storage } satisfies HostChildConfig,
      }));
      const gateway = {
        name: 'gateway',
        role: 'gateway' as const,
        entry: ENTRIES.gateway,
        config: { ...base, name: 'gateway', placement: target, settings: manifest.gateway } satisfies GatewayChildConfig,
      };
      // A machine may run only some roles; with Consul, the others run elsewhere in the cluster.
      const specs = [...(manifest.roles.includes('hosts') ? hosts : []), ...(manifest.roles.includes('gateway') ? [gateway] : [])];
      await Promise.all(specs.map((spec) => this.#spawn(spec)));
      this.#state = {
        status: 'running',
        pid: process.pid,
        cluster: manifest.cluster,
        secret: this.#secret,
        root,
        manifest: this.#loaded.filepath,
        startedAt: new Date().toISOString(),
        gateway: this.#children.get('gateway')?.state.url ?? '',
        ...(target.provider === 'consul' ? { consul: target.address, ...(target.tls ? { consulTls: target.tls } : {}) } : {}),
        processes: [],
      };
      this.#saveState();
      return this.#state;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Starts (or finds) placement: the embedded process, a Consul agent of our own, or an existing agent. */
  async #startPlacement(base: Omit<ChildBase, 'name'>): Promise<PlacementTarget> {
    const { placement, gateway } = this.#loaded.manifest;
    if (placement.provider === 'embedded') {
      const started = await this.#spawn({
        name: 'placement',
        role: 'placement',
        entry: ENTRIES.placement,
        config: { ...base, name: 'placement', host: gateway.host, leaseTtlMs: placement.leaseTtlMs, strategy: placement.strategy } satisfies PlacementChildConfig,
      });
      return { provider: 'embedded', url: started.url };
    }
    const { consul } = placement;
    let address = consul.address;
    if (consul.start && consul.tls) {
      throw new StartError('placement.consul.tls does not apply to the dev agent that placement.consul.start runs (plain HTTP on this machine); remove one of them');
    }
    if (consul.start) {
      address = (await this.#spawn({ name: 'consul', role: 'consul', entry: ENTRIES.consul, config: { ...base, name: 'consul', host: gateway.host } satisfies ConsulChildConfig })).url;
    } else if (!address) {
      throw new StartError('placement.provider is consul but placement.consul has no address; set placement.consul.address (or KOALA_CONSUL_ADDRESS) to a running agent, or placement.consul.start: true');
    }
    const tls = consul.tls === undefined ? undefined : absoluteTlsFiles(this.#loaded.root, consul.tls);
    let api: ConsulApi | undefined;
    try {
      api = new ConsulApi(address!, { ...(consul.token ? { token: consul.token } : {}), ...(tls ? { tls: readConsulTls(tls) } : {}) });
      await api.leader();
    } catch (err) {
      throw new StartError((err as Error).message);
    } finally {
      api?.close();
    }
    return { provider: 'consul', address: address!, ...(consul.token ? { token: consul.token } : {}), ...(tls ? { tls } : {}), strategy: placement.strategy, leaseTtlMs: placement.leaseTtlMs, lockDelayMs: consul.lockDelayMs };
  }

  /** Stops everything: gateway and hosts first (hosts still need placement to hand back their actors), then placement. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const byRole = (roles: Role[]) => [...this.#children.values()].filter((c) => roles.includes(c.spec.role));
      await Promise.all(byRole(['gateway', 'host']).map((c) => this.#stopChild(c)));
      await Promise.all(byRole(['placement', 'consul']).map((c) => this.#stopChild(c)));
      releaseProject(this.#loaded.root, process.pid);
    })();
    return this.#stopping;
  }

  #saveState(): void {
    if (this.#state === undefined || this.#stopping) return;
    this.#state.processes = [...this.#children.values()].map((c) => c.state);
    writeRunState(this.#state);
  }

  /** Starts one child and resolves once it reported ready. */
  #spawn(spec: ChildSpec, restarts: number[] = []): Promise<ProcessState> {
    const started = Date.now();
    const proc = spawnChild(spec);
    for (const stream of ['stdout', 'stderr'] as const) {
      const readable = proc[stream];
      if (readable) createInterface({ input: readable }).on('line', (line) => this.#events.log(spec.name, line, stream));
    }
    const child: RunningChild = { spec, proc, state: { name: spec.name, role: spec.role, pid: proc.pid ?? 0, url: '' }, restarts, stopping: false, exited: false };
    this.#children.set(spec.name, child);

    return new Promise<ProcessState>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => fail(`${spec.name} did not become ready within ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
      const fail = (message: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(new StartError(message));
      };
      void (async () => {
        for await (const message of proc.getEachMessage()) {
          const msg = message as ChildMessage;
          if (msg.type === 'fatal') fail(`${spec.name}: ${msg.message}`);
          if (msg.type === 'ready' && !settled) {
            settled = true;
            clearTimeout(timer);
            child.state = { ...child.state, url: msg.url, ...(msg.details ? { details: msg.details } : {}) };
            this.#events.progress(spec.name, msg.url, Date.now() - started);
            resolve(child.state);
          }
        }
      })().catch(() => {});
      void proc.then((result) => {
        child.exited = true;
        fail(`${spec.name} exited during start-up (${result.signal ?? `code ${result.exitCode}`})`);
        this.#onExit(child, result.signal ?? `code ${result.exitCode}`);
      });
    });
  }

  #onExit(child: RunningChild, how: string): void {
    if (child.stopping || this.#stopping || this.#state === undefined) return;
    const now = Date.now();
    const recent = child.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    const hostId = child.spec.role === 'host' ? child.state.details?.id : undefined;
    if (hostId !== undefined) void this.#forgetHost(hostId);
    if (recent.length >= MAX_RESTARTS_IN_WINDOW) {
      this.#events.log(child.spec.name, `exited (${how}) ${recent.length} times within a minute; not restarting it again`, 'stderr');
      return;
    }
    const delay = Math.min(5000, 100 * 2 ** recent.length);
    this.#events.log(child.spec.name, `exited unexpectedly (${how}); restarting in ${delay} ms`, 'stderr');
    setTimeout(() => {
      if (this.#stopping) return;
      // A restarted placement (or Consul agent) keeps its port so that hosts and the gateway find it again.
      const port = child.state.url ? Number(new URL(child.state.url.includes('://') ? child.state.url : `http://${child.state.url}`).port) : undefined;
      const spec =
        child.spec.role === 'placement' ? { ...child.spec, config: { ...child.spec.config, port } }
        : child.spec.role === 'consul' ? { ...child.spec, config: { ...child.spec.config, httpPort: port } }
        : child.spec;
      this.#spawn(spec, [...recent, now]).then(
        () => this.#saveState(),
        (err: Error) => this.#events.log(child.spec.name, `restart failed: ${err.message}`, 'stderr'),
      );
    }, delay).unref();
  }

  /**
   * A host process that exited holds no activations, so its positions can be freed now instead of
   * when its lease runs out: the supervisor saw the process die, which is proof, not suspicion.
   */
  async #forgetHost(hostId: string): Promise<void> {
    if (this.#target === undefined) return;
    const placement = openPlacement(this.#target, { cluster: this.#loaded.manifest.cluster, secret: this.#secret, node: 'supervisor', role: 'supervisor' });
    try {
      await placement.unregister(hostId);
    } catch (err) {
      this.#events.log('supervisor', `could not release the positions of ${hostId}: ${(err as Error).message}`, 'stderr');
    } finally {
      await placement.close();
    }
  }

  async #stopChild(child: RunningChild): Promise<void> {
    child.stopping = true;
    const { proc } = child;
    if (child.exited) return;
    const killer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    proc.kill('SIGTERM');
    await proc;
    clearTimeout(killer);
  }
}

/** host groups × replicas → `host-1`, `host-2`, … (or `api-1` for a group named `api`). */
function hostSpecs(manifest: Manifest): { name: string; group: Manifest['hosts'][number] }[] {
  return manifest.hosts.flatMap((group) => Array.from({ length: group.replicas }, (_, i) => ({ name: `${group.name}-${i + 1}`, group })));
}
