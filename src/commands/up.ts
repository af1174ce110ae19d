import { Flags } from '@oclif/core';
import { KoalaCommand, CliError } from '../cli/base-command.ts';

export default class Up extends KoalaCommand {
  static override description = 'Start the cluster described by the manifest: placement, hosts and the gateway';
  static override examples = ['<%= config.bin %> up', '<%= config.bin %> up --detach', '<%= config.bin %> up -c deploy/koala.config.yaml'];
  static override flags = {
    config: Flags.string({ char: 'c', description: 'manifest file (default: found from the current directory)' }),
    detach: Flags.boolean({ char: 'd', description: 'start in the background and return once every process is ready' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Up);
    const { loadManifest } = await import('../runtime/config/manifest.ts');
    const { findRunningCluster } = await import('../runtime/supervisor/run-state.ts');
    const loaded = await loadManifest({ cwd: process.cwd(), ...(flags.config ? { configPath: flags.config } : {}) });
    const running = findRunningCluster(loaded.root);
    if (running !== undefined && running.root === loaded.root) {
      throw new CliError(`a Koala cluster is already running in ${running.root} (gateway ${running.gateway}, supervisor pid ${running.pid})`, {
        hint: 'stop it with `koala down`, or use `koala status` to see it',
      });
    }
    if (flags.detach) await this.#detached(loaded);
    else await this.#foreground(loaded);
  }

  async #foreground(loaded: import('../runtime/config/manifest.ts').LoadedManifest): Promise<void> {
    const { Supervisor } = await import('../runtime/supervisor/supervisor.ts');
    const { createLogPrinter } = await import('../cli/log-printer.ts');
    const print = createLogPrinter();
    const supervisor = new Supervisor(loaded, {
      log: (name, line) => print(name, line),
      progress: (name, detail, ms) => this.logToStderr(`  ✓ ${name.padEnd(10)} ready in ${ms} ms  ${detail}`),
    });
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      this.logToStderr('stopping the cluster…');
      supervisor.stop().then(() => process.exit(0), () => process.exit(1));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    this.logToStderr(`starting cluster "${loaded.manifest.cluster}" from ${loaded.filepath ?? loaded.root}`);
    const state = await supervisor.start();
    this.logToStderr(`cluster "${state.cluster}" is up: gateway ${state.gateway} (Ctrl-C stops it)`);
    // The children keep the event loop alive; Ctrl-C / SIGTERM ends it through `stop`.
    await new Promise<never>(() => {});
  }

  async #detached(loaded: import('../runtime/config/manifest.ts').LoadedManifest): Promise<void> {
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const { DAEMON_ENV } = await import('../runtime/supervisor/daemon-env.ts');
    type DaemonMessage = import('../runtime/supervisor/daemon.ts').DaemonMessage;
    const entry = fileURLToPath(new URL('../runtime/supervisor/daemon.ts', import.meta.url));
    this.logToStderr(`starting cluster "${loaded.manifest.cluster}" in the background from ${loaded.filepath ?? loaded.root}`);
    const daemon = spawn(process.execPath, [entry], {
      cwd: loaded.root,
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      env: { ...process.env, [DAEMON_ENV]: JSON.stringify(loaded) },
    });
    const state = await new Promise<import('../runtime/supervisor/run-state.ts').RunState>((resolve, reject) => {
      daemon.on('message', (msg: DaemonMessage) => {
        if (msg.type === 'progress') this.logToStderr(`  ✓ ${msg.name.padEnd(10)} ready in ${msg.elapsedMs} ms  ${msg.detail}`);
        if (msg.type === 'ready') resolve(msg.state);
        if (msg.type === 'fatal') reject(new CliError(msg.message, { hint: `the full log is in ${loaded.root}/.koala/koala.log` }));
      });
      daemon.once('exit', (code, signal) => reject(new CliError(`the cluster supervisor exited before it was ready (${signal ?? `code ${code}`})`, { hint: `see ${loaded.root}/.koala/koala.log` })));
    });
    daemon.disconnect();
    daemon.unref();
    this.logToStderr(`cluster "${state.cluster}" is up (supervisor pid ${state.pid}); stop it with \`koala down\``);
    this.log(state.gateway);
  }
}
