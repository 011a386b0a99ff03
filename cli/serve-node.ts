/**
 * `credbroker serve --bus …`: a node (a primary and its workers, cluster/), and
 * the worker side of the same command. Kept apart from serve.ts so that a broker
 * without a bus never loads the Redis client.
 */
import { createLogger, validateConfig, type BrokerConfig, type Weakening } from '../broker/index.js';
import { startNode, WorkerStartError, WORKER_CONFIG_ENV, WORKER_INDEX_ENV, WORKER_REUSEPORT_ENV } from '../cluster/primary.js';
import { consoleMount } from '../broker/console-assets.js';
import type { ToPrimary } from '../cluster/ipc.js';
import { ensureBusKeys } from '../cluster/bus-keys.js';
import { runWorker } from '../cluster/worker.js';
import { checkBusSecurity } from '../cluster/bus-policy.js';
import { redisTarget } from '../cluster/redis-options.js';
import { openIssuer } from '../provisioning/index.js';
import { redactUrl } from '../util/redact-url.js';
import { count } from './output.js';

export async function serveNode(config: BrokerConfig): Promise<void> {
  // Refused before any registry or Redis connection: an unsafe bus, an unreadable --bus-ca.
  checkBusSecurity(config.bus!, config.busInsecure);
  redisTarget(config);
  // Created (the quick-start default) or migrated once here, before the workers open it side by side.
  const issuer = await openIssuer(config.db);
  const devices = await issuer.reg.devices.countByStatus();
  // The cluster key, on the first `serve --bus` of this registry (cluster/bus-keys.ts).
  await ensureBusKeys(issuer.reg);
  const { keyring, settings } = issuer;
  const where = issuer.reg.location;
  await issuer.reg.close();
  const log = createLogger(config.logLevel, undefined, config.logFormat).child({ role: 'primary' });
  let node;
  try {
    node = await startNode(config, log, { opsMounts: [consoleMount()] });
  } catch (err) {
    if (err instanceof WorkerStartError) {
      if (err.line !== null) process.stderr.write(`${err.line}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
  const p = node.ports;
  process.stderr.write(`credbroker: broker ready — mqtt ${p.mqtt ?? 'off'}, tls ${p.tls ?? 'off'}, ws ${p.ws ?? 'off'}, http ${p.http ?? 'off'}; `
    + `${node.workers} worker(s) on bus ${redactUrl(config.bus!)}; `
    + `registry ${where} (${count(devices.active)} active and ${count(devices.revoked)} revoked device(s), signing key ${keyring.signer?.kid ?? 'none'}, issuer ${settings.issuer})\n`);
  const stop = (signal: string) => {
    process.stderr.write(`credbroker: ${signal}: draining ${node.workers} worker(s)\n`);
    node.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/**
 * In a forked worker: the config and index its primary gave it. `weaken` only
 * from code (bench/lib/serve-weakened.ts), never from the environment.
 */
export async function serveWorker(weaken: Weakening = {}): Promise<void> {
  const config = validateConfig(JSON.parse(process.env[WORKER_CONFIG_ENV] ?? '{}') as Record<string, unknown>);
  try {
    await runWorker(config, Number(process.env[WORKER_INDEX_ENV] ?? 0), { weaken, reusePort: process.env[WORKER_REUSEPORT_ENV] === '1' });
  } catch (err) {
    // Its line goes to the primary, which prints it once for the node; and the worker exits
    // now, as its open bus and IPC channel would otherwise keep it (and the node) alive.
    const { errorLine } = await import('./main.js');
    const { line, code } = errorLine(err);
    if (process.connected) process.send!({ credbroker: 'failed', line } satisfies ToPrimary, () => process.exit(code));
    else {
      process.stderr.write(`${line}\n`);
      process.exit(code);
    }
  }
}
