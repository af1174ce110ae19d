// Entry of the child process that runs a Consul dev agent for `placement.consul.start`. Consul is
// not a Node process and cannot watch the supervisor's IPC channel, so this small process does it
// for Consul: it starts the agent, reports ready once a leader is elected, and takes the agent down
// with it whatever ends the supervisor.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { runChild, type ChildBase } from '../process/child.ts';
import { freePorts } from '../util/free-port.ts';
import { findConsul } from './binary.ts';

export interface ConsulChildConfig extends ChildBase {
  host: string;
  /** Set on a restart so that hosts and the gateway find the agent where it was. */
  httpPort?: number;
}

const READY_TIMEOUT_MS = 15_000;

/** How many times the agent is started with fresh ports if it exits during start-up (another process took a port first). */
const START_ATTEMPTS = 3;

runChild<ConsulChildConfig>(async ({ config, log, ready, onStop }) => {
  const binary = findConsul();
  const dataDir = join(config.root, '.koala', 'consul');
  await mkdir(dataDir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    // The ports are free when picked, not when Consul binds them: an agent that exits during
    // start-up is started again on other ports (unless its HTTP port was given: a restart keeps it).
    const [http, serfLan, serfWan, server] = await freePorts(config.host, 4, [1, 2]);
    const httpPort = config.httpPort ?? http!;
    const agent = execa(
      binary,
      [
        'agent',
        '-dev',
        `-node=koala-${config.cluster}`,
        `-bind=${config.host}`,
        `-client=${config.host}`,
        `-http-port=${httpPort}`,
        '-dns-port=-1',
        '-grpc-port=-1',
        `-serf-lan-port=${serfLan}`,
        `-serf-wan-port=${serfWan}`,
        `-server-port=${server}`,
        `-log-level=${config.logLevel === 'debug' ? 'debug' : 'warn'}`,
      ],
      { cwd: dataDir, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit', reject: false, cleanup: true },
    );
    let running = true;
    const exited = agent.then((r) => {
      running = false;
      return r;
    });
    const stop = async () => {
      agent.kill('SIGTERM');
      const timer = setTimeout(() => agent.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    };
    const url = `http://${config.host}:${httpPort}`;
    const outcome = await leaderOrExit(url, () => running);
    if (outcome === 'timeout') {
      await stop();
      throw new Error(`consul agent (${binary}) elected no leader within ${READY_TIMEOUT_MS / 1000} s`);
    }
    if (outcome === 'exited') {
      const r = await exited;
      const how = r.signal ?? `code ${r.exitCode}`;
      if (attempt < START_ATTEMPTS && config.httpPort === undefined) {
        log.warn(`consul agent exited during start-up (${how}); starting it again on other ports`);
        continue;
      }
      throw new Error(`consul agent (${binary}) exited during start-up (${how}); see its output above`);
    }
    onStop(stop);
    void exited.then((r) => {
      log.error(`consul agent exited (${r.signal ?? `code ${r.exitCode}`})`);
      process.exit(1);
    });
    log.info(`consul dev agent ${binary} ready at ${url}`);
    ready(`${config.host}:${httpPort}`);
    return;
  }
});

/** Polls the agent until it has a leader, has exited, or READY_TIMEOUT_MS have passed. */
async function leaderOrExit(url: string, running: () => boolean): Promise<'leader' | 'exited' | 'timeout'> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!running()) return 'exited';
    const leader = await fetch(`${url}/v1/status/leader`).then((r) => r.json() as Promise<string>, () => '');
    if (leader) return 'leader';
    if (Date.now() > deadline) return 'timeout';
    await new Promise((r) => setTimeout(r, 100));
  }
}
