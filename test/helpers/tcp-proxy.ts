// A TCP proxy a test controls: put it between a process and a server, then cut it to simulate a
// network partition (open connections die, new ones are refused) and heal it again.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';

export interface TcpProxy {
  /** `127.0.0.1:<port>` to give the client instead of the target. */
  address: string;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(t: ExecutionContext, target: string): Promise<TcpProxy> {
  const [host, port] = target.split(':') as [string, string];
  const sockets = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect({ host, port: Number(port) });
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: TcpProxy = {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    heal() {
      cut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        proxy.cut();
        server.close(() => resolve());
      }),
  };
  t.teardown(() => proxy.close());
  return proxy;
}
