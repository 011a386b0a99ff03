import { isIP } from 'node:net';

/**
 * `localhost`, 127.0.0.0/8, ::1 (also 127.x as an IPv4-mapped address, which the
 * URL parser writes in hex). Any other name is not loopback: no DNS is asked.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || /^::ffff:(7f[0-9a-f]{2}:[0-9a-f]{1,4}|127\.\d+\.\d+\.\d+)$/.test(host);
}
