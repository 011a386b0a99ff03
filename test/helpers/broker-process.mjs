// A broker in a process of its own, for the shutdown test: the compiled broker
// (dist/, `npm run build` first) on a registry file, ephemeral loopback ports.
//
//   node test/helpers/broker-process.mjs DB [CONFIG_JSON]
//
// Prints the bound ports as one JSON line on stdout ({"mqtt":…,"tls":…,"ws":…,"http":…}),
// JSON logs on stderr, and on SIGTERM/SIGINT stops as `credbroker serve` does:
// broker.close() then exit 0 (exit 1 if closing failed).
import { createLogger, startBroker, validateConfig } from '../../dist/broker/index.js';

const [db, extra = '{}'] = process.argv.slice(2);
if (!db) {
  process.stderr.write('usage: node test/helpers/broker-process.mjs DB [CONFIG_JSON]\n');
  process.exit(2);
}
const config = validateConfig({ db, host: '127.0.0.1', mqttPort: 0, wsPort: 0, httpPort: 0, logLevel: 'info', ...JSON.parse(extra) });
const broker = await startBroker(config, { logger: createLogger(config.logLevel, process.stderr) });
process.stdout.write(`${JSON.stringify(broker.ports)}\n`);

const stop = (signal) => {
  process.stderr.write(`broker-process: ${signal}: closing\n`);
  broker.close().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`broker-process: close failed: ${err?.stack ?? err}\n`);
      process.exit(1);
    },
  );
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
