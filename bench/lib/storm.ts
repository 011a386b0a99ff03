/** One reconnect storm: every CONNECT written at once, with the kernel's listen-queue counters around it. */
import { listenCounters } from './netstat.js';
import { connectMany, type ConnectOutcome } from './raw-client.js';

export interface StormOutcome extends ConnectOutcome {
  /** ListenOverflows and ListenDrops during the storm (host-wide kernel counters). */
  readonly overflows: number;
  readonly drops: number;
  /** Where the counters were read (`nstat` or /proc/net/netstat). */
  readonly counterSource: string;
}

/** Opens one connection per packet, all at once, and keeps those accepted open (close them with `closeAll`). */
export async function storm(port: number, packets: readonly Buffer[]): Promise<StormOutcome> {
  const c0 = listenCounters();
  const out = await connectMany(port, packets, packets.length, true);
  const c1 = listenCounters();
  return { ...out, overflows: c1.overflows - c0.overflows, drops: c1.drops - c0.drops, counterSource: c0.source };
}
