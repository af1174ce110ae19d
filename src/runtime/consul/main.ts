// Entry of the child process that runs a Consul dev agent for `placement.consul.start`. Consul is
// not a Node process and cannot watch the supervisor's IPC channel, so this small process does it
// for Consul: it starts the agent, reports ready once a leader is elected, and takes the agent down
// with it whatever ends the supervisor.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { runChild, type ChildBase } from '../process/child.ts';
import { freePort } from '../util/free-port.ts';
import { findConsul } from './binary.ts';

export interface ConsulChildConfig extends ChildBase {
  host: string;
  /** Set on a restart so that hosts and the gateway find the agent where it was. */
  httpPort?: number;
}

const READY_TIMEOUT_MS = 15_000;

runChild<ConsulChildConfig>(async ({ config, log, ready, onStop }) => {
  const binary = findConsul();
  const dataDir = join(config.root, '.koala', 'consul');
  await mkdir(dataDir, { recursive: true });
  const http = config.httpPort ?? (await freePort(config.host));
  const [serfLan, serfWan, server] = [await freePort(config.host), await freePort(config.host), await freePort(config.host)];
  const agent = execa(
    binary,
    [
      'agent',
      '-dev',
      `-node=koala-${config.cluster}`,
      `-bind=${config.host}`,
      `-client=${config.host}`,
      `-http-port=${http}`,
      '-dns-port=-1',
      '-grpc-port=-1',
      `-serf-lan-port=${serfLan}`,
      `-serf-wan-port=${serfWan}`,
      `-server-port=${server}`,
      `-log-level=${config.logLevel === 'debug' ? 'debug' : 'warn'}`,
    ],
    { cwd: dataDir, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit', reject: false, cleanup: true },
  );
  const exited = agent.then((r) => r);
  onStop(async () => {
    agent.kill('SIGTERM');
    const timer = setTimeout(() => agent.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  });
  void exited.then((r) => {
    log.error(`consul agent exited (${r.signal ?? `code ${r.exitCode}`})`);
    process.exit(1);
  });
  const url = `http://${config.host}:${http}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const leader = await fetch(`${url}/v1/status/leader`).then((r) => r.json() as Promise<string>, () => '');
    if (leader) break;
    if (Date.now() > deadline) throw new Error(`consul agent (${binary}) elected no leader within ${READY_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log.info(`consul dev agent ${binary} ready at ${url}`);
  ready(`${config.host}:${http}`);
});
