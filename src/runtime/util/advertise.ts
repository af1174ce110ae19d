// The address other machines use to reach a socket of ours. A socket bound to every interface
// (0.0.0.0, ::) cannot be dialled at that address: advertise this machine's first external one.
import { networkInterfaces } from 'node:os';

export function advertisedHost(bound: string): string {
  if (bound !== '0.0.0.0' && bound !== '::') return bound.includes(':') ? `[${bound}]` : bound;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Whether a bound address takes connections from this machine only (127.0.0.0/8, ::1). */
export function isLoopback(bound: string): boolean {
  return bound.startsWith('127.') || bound === '::1' || bound === '::ffff:127.0.0.1';
}
