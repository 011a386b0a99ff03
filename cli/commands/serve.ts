import cluster from 'node:cluster';
import type { Command } from 'commander';
import { DEFAULT_DB, withRegistry } from '../common.js';
import { count } from '../output.js';

interface ServeFlags {
  db?: string; config?: string; host?: string; mqttPort?: string; tlsPort?: string; tlsCert?: string; tlsKey?: string;
  wsPort?: string; httpPort?: string; httpHost?: string; httpTlsCert?: string; httpTlsKey?: string; wsOrigins?: string; deniedPublish?: string; logLevel?: string; logFormat?: string;
  maxPacketBytes?: string; maxQueuedMessages?: string; maxQueuedBytes?: string; workers?: string; bus?: string; busCa?: string; busInsecure?: boolean; verifiedTokenCache?: string;
}

/** `credbroker serve`: the broker on embedded defaults, configured by flags, environment and a config file. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the MQTT broker (TCP, TLS, WebSocket) and its ops HTTP port')
    .option('--db <file>', `registry file, or postgres://USER@HOST:PORT/DB (env CREDBROKER_DB; default ${DEFAULT_DB}, created on the first start only at this default: any other registry is made with "credbroker init")`)
    .option('--config <file>', 'JSON config file (flags and environment override it)')
    .option('--host <addr>', 'address to listen on (default 0.0.0.0)')
    .option('--mqtt-port <port>', 'MQTT over TCP, or "off" (default 1883)')
    .option('--tls-port <port>', 'MQTT over TLS (default 8883 when a certificate is given)')
    .option('--tls-cert <file>', 'PEM server certificate (see certs/README.md)')
    .option('--tls-key <file>', 'PEM server private key')
    .option('--ws-port <port>', 'MQTT over WebSocket, or "off" (default 8083)')
    .option('--http-port <port>', '/healthz, /readyz, /metrics, /sessions, /.well-known/jwks.json and the operator API /api/v1, or "off" (default 9100)')
    .option('--http-host <addr>', 'address of the ops HTTP port (default 127.0.0.1); off loopback it needs --http-tls-cert and --http-tls-key, and /metrics and /sessions need an operator credential')
    .option('--http-tls-cert <file>', 'PEM certificate of the ops HTTP port: it then serves HTTPS (see certs/README.md)')
    .option('--http-tls-key <file>', 'PEM private key of the ops HTTP port')
    .option('--ws-origins <list>', 'browser origins allowed on the WebSocket port, comma-separated (default: any)')
    .option('--denied-publish <policy>', 'on a publish the ACL refuses: disconnect | drop (default disconnect)')
    .option('--log-level <level>', 'pino level: debug | info | warn | error (default info)')
    .option('--log-format <format>', 'pretty | json (default: pretty on a terminal, json otherwise)')
    .option('--max-packet-bytes <n>', 'largest packet an authenticated client may send; larger closes the connection (default 262144)')
    .option('--max-queued-messages <n>', 'messages held for one slow client before QoS 0 to it is dropped (default 1000)')
    .option('--max-queued-bytes <n>', 'bytes held for one slow client before QoS 0 to it is dropped (default 4194304)')
    .option('--workers <n>', 'broker processes sharing the listeners, or "auto" (one per CPU); above 1 needs --bus (default 1)')
    .option('--bus <url>', 'redis://[USER:PASSWORD@]HOST:PORT[/DB], or rediss:// (TLS): the Redis that joins this node\'s workers and other nodes (default: none, one process)')
    .option('--bus-ca <file>', 'PEM CA that signs a rediss:// bus\'s certificate (default: the system\'s CAs)')
    .option('--bus-insecure', 'allow a bus off loopback without both TLS and a password (logged at every start, shown in /readyz)')
    .option('--verified-token-cache <n>', 'accepted access tokens remembered so a reconnect skips the signature check; 0: off (default 100000)')
    .addHelpText('after', `
Examples:
  credbroker serve                                   # embedded defaults: ./data/credbroker.db, ports 1883, 8083, 9100
  credbroker serve --tls-cert certs/out/server.crt --tls-key certs/out/server.key
  CREDBROKER_MQTT_PORT=11883 credbroker serve --http-port off
  credbroker serve --config /etc/credbroker.json    # keys as in the flags, camelCase: {"mqttPort": 1883, "deniedPublish": "drop"}
  credbroker serve --workers auto --bus redis://127.0.0.1:6379   # every core, on a Redis bus (see "Scaling out" in README.md)`)
    .action(async (flags: ServeFlags) => {
      // A node's worker runs this command again (node:cluster): it takes the config its primary resolved.
      if (cluster.isWorker) return (await import('../serve-node.js')).serveWorker();
      // Loaded here, not at start-up: every other command stays fast to start.
      const { consoleMount, loadConfigWithSources, startBroker } = await import('../../broker/index.js');
      const { config, given } = loadConfigWithSources({ ...flags });
      // The quick start (`npm start`) creates the embedded default; a registry named by
      // the user must exist, so that a typo cannot start a broker on a new, empty one.
      // Nor may serve give a first signing key to one that has none (a copy stopped half-way): only init does.
      if (given.has('db')) {
        const { Keyring } = await import('../../tokens/keyring.js');
        await withRegistry(config.db, (reg) => Keyring.load(reg), { readonly: true });
      }
      // On a bus, a node of workers; without one, today's single process with no Redis client loaded.
      if (config.bus !== null) return (await import('../serve-node.js')).serveNode(config);
      const broker = await startBroker(config, { opsMounts: [consoleMount()] });
      const p = broker.ports;
      const { reg, keyring, settings } = broker.context.issuer;
      const devices = await reg.devices.countByStatus();
      process.stderr.write(`credbroker: broker ready — mqtt ${p.mqtt ?? 'off'}, tls ${p.tls ?? 'off'}, ws ${p.ws ?? 'off'}, http ${p.http ?? 'off'}; `
        + `registry ${reg.location} (${count(devices.active)} active and ${count(devices.revoked)} revoked device(s), signing key ${keyring.signer?.kid ?? 'none'}, issuer ${settings.issuer})\n`);
      const stop = (signal: string) => {
        process.stderr.write(`credbroker: ${signal}: closing listeners and sessions\n`);
        broker.close().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
