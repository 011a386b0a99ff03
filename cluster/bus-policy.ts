import { UsageError } from '../errors/index.js';
import { redactUrl } from '../util/redact-url.js';
import { isLoopbackHost } from '../util/loopback-host.js';

export { isLoopbackHost };

/** How the bus is protected: what a node logs at start and `/readyz` shows. */
export interface BusSecurity {
  /** TLS and a password both. */
  readonly secure: boolean;
  readonly tls: boolean;
  readonly auth: boolean;
  readonly loopback: boolean;
  /** `--bus-insecure` given. */
  readonly insecure: boolean;
}

/**
 * Decides whether a node may use the bus at `url`, from the URL alone (no DNS, no
 * connection): on loopback anything goes; elsewhere Redis carries device secrets
 * and is believed by every node, so it needs TLS (`rediss://`) and a password,
 * unless `insecure` (`--bus-insecure`) says the operator accepts the risk.
 * A refusal is one line and exit 2.
 */
export function checkBusSecurity(url: string, insecure: boolean): BusSecurity {
  const u = new URL(url);
  const tls = u.protocol === 'rediss:';
  const auth = u.password !== '';
  const loopback = isLoopbackHost(u.hostname);
  if (!loopback && !(tls && auth) && !insecure) {
    const missing = [tls ? null : 'TLS (rediss://)', auth ? null : 'a password'].filter(Boolean).join(' and ');
    throw new UsageError(`bus ${redactUrl(url)} is not on loopback and lacks ${missing}: whoever reaches it could read device secrets and forge messages; use a rediss:// URL with a user and password (and --bus-ca), or --bus-insecure to accept that`, 'ERR_CONFIG');
  }
  return { secure: tls && auth, tls, auth, loopback, insecure };
}

