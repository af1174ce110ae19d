import { KoalaCommand } from '../cli/base-command.ts';
import { findRunningCluster, isAlive, removeRunState } from '../runtime/supervisor/run-state.ts';

const STOP_TIMEOUT_MS = 10_000;

export default class Down extends KoalaCommand {
  static override description = 'Stop the cluster running from this project (started by `koala up`, with or without --detach)';

  async run(): Promise<void> {
    await this.parse(Down);
    const state = findRunningCluster(process.cwd());
    if (state === undefined) {
      this.logToStderr('no running Koala cluster found from here; nothing to stop');
      return;
    }
    this.logToStderr(`stopping cluster "${state.cluster}" (supervisor pid ${state.pid})…`);
    process.kill(state.pid, 'SIGTERM');
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (isAlive(state.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(state.pid)) {
      // The supervisor is stuck: take everything down hard rather than leave processes and ports behind.
      for (const p of state.processes) if (isAlive(p.pid)) process.kill(p.pid, 'SIGKILL');
      process.kill(state.pid, 'SIGKILL');
      removeRunState(state.root, state.pid);
      this.logToStderr(`the supervisor did not stop within ${STOP_TIMEOUT_MS / 1000} s; killed it and its ${state.processes.length} processes`);
      return;
    }
    this.logToStderr('stopped');
  }
}
