import { createServer, type Server } from 'node:net';
import type { BrokerConfig } from '../broker/index.js';
import { listen, portsInUse, PortInUseError } from '../broker/listeners.js';

/** The MQTT listeners a node's workers share, as config names them. */
const SHARED = [
  { key: 'mqttPort', what: 'MQTT', flag: '--mqtt-port' },
  { key: 'tlsPort', what: 'MQTT/TLS', flag: '--tls-port' },
  { key: 'wsPort', what: 'WebSocket', flag: '--ws-port' },
] as const;

export interface ReservedPorts {
  /** The config with every MQTT port resolved (port 0: the one the kernel chose), for the workers to bind with SO_REUSEPORT. */
  readonly config: BrokerConfig;
  /** Lets go of the ports held for the workers; call once they listen (or failed to start). */
  release(): void;
}

/**
 * The node's MQTT ports, made ready for its workers to bind each on its own
 * SO_REUSEPORT socket (the kernel then spreads connections over them, and the
 * primary hands none out).
 *
 * - A port given is checked free first with a plain bind: SO_REUSEPORT alone would
 *   let a second node of the same user share it silently. Every port in use is
 *   refused at once, as one process refuses them.
 * - Port 0 becomes a port of the kernel's choice that the primary holds, with
 *   SO_REUSEPORT, until the workers have bound it too: between a probe and the
 *   workers' binds, an outgoing connection could otherwise take that port. Nobody
 *   knows the port yet, so the held socket is sent no connection.
 */
export async function reservePorts(config: BrokerConfig): Promise<ReservedPorts> {
  const held: Server[] = [];
  const release = () => { for (const s of held.splice(0)) s.close(); };
  const resolved: Partial<Record<(typeof SHARED)[number]['key'], number>> = {};
  const conflicts: PortInUseError[] = [];
  for (const { key, what, flag } of SHARED) {
    const port = config[key];
    if (port === null) continue;
    const probe = createServer();
    try {
      resolved[key] = await listen(probe, port, config.host, 1, what, flag, port === 0);
    } catch (err) {
      if (!(err instanceof PortInUseError)) { release(); throw err; }
      conflicts.push(err);
      continue;
    }
    if (port === 0) held.push(probe);
    else await new Promise((r) => probe.close(r));
  }
  if (conflicts.length > 0) { release(); throw portsInUse(conflicts); }
  return { config: { ...config, ...resolved }, release };
}
