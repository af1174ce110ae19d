// Ports nobody uses right now (the OS picks them). Another process could take one before we bind
// it, so use them at once, and be ready to try again; they are for tools that cannot take port 0
// themselves (Consul).
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return (await freePorts(host, 1))[0]!;
}

/**
 * `count` ports free on `host` right now (all held at once, so distinct); those at `udpToo`
 * indexes are free for UDP as well (Consul's Serf gossips over TCP and UDP on the same port).
 */
export async function freePorts(host: string, count: number, udpToo: readonly number[] = []): Promise<number[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const servers: Server[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const server = createServer();
        servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host, port: 0, exclusive: true }, () => resolve());
        });
      }
      const ports = servers.map((s) => (s.address() as { port: number }).port);
      if ((await Promise.all(udpToo.map((i) => udpFree(host, ports[i]!)))).every(Boolean)) return ports;
    } finally {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
    }
  }
  throw new Error(`could not find ${count} free ports on ${host}`);
}

function udpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ address: host, port, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}
