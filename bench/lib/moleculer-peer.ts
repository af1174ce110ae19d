// The peer: Moleculer (npm) with its TCP transporter, request/response between two processes. The
// echo service runs in a child process; the calling broker runs in the bench process and knows the
// echo node by its explicit URL (no UDP discovery).
import { fileURLToPath } from 'node:url';
import { ServiceBroker } from 'moleculer';
import { startChild } from './child.ts';

const ECHO = fileURLToPath(new URL('../procs/moleculer-echo.ts', import.meta.url));

export interface MoleculerPeer {
  call(n: number): Promise<number>;
  close(): Promise<void>;
}

export async function startMoleculer(): Promise<MoleculerPeer> {
  const echo = await startChild<{ port: number; nodeID: string }>(ECHO);
  let broker: ServiceBroker | undefined;
  try {
    broker = new ServiceBroker({
      nodeID: `bench-caller-${process.pid}`,
      logger: false,
      requestTimeout: 30_000,
      transporter: { type: 'TCP', options: { udpDiscovery: false, port: 0, useHostname: false, gossipPeriod: 1, urls: [`127.0.0.1:${echo.ready.port}/${echo.ready.nodeID}`] } },
    });
    await broker.start();
    await broker.waitForServices('echo', 20_000, 20);
    const b = broker;
    return {
      call: (n: number) => b.call('echo.ping', { n }) as Promise<number>,
      close: async () => {
        await b.stop().catch(() => {});
        await echo.stop();
      },
    };
  } catch (err) {
    await broker?.stop().catch(() => {});
    await echo.stop();
    throw err;
  }
}
