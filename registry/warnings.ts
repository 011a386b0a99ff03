/**
 * What the registry must tell the operator about a registry it opens (a
 * database reached without verified TLS), once per process and message: a
 * command opens its registry once, a broker at start, and a warning repeated on
 * every reconnect would only be noise. By default one line on stderr (the CLI);
 * a broker routes them into its log (`onRegistryWarning`).
 */
let sink: (message: string) => void = (message) => { process.stderr.write(`credbroker: warning: ${message}\n`); };
const said = new Set<string>();

/** Where the warnings go from now on (the broker: its logger at warn). */
export function onRegistryWarning(fn: (message: string) => void): void {
  sink = fn;
}

export function warnOperator(message: string): void {
  if (said.has(message)) return;
  said.add(message);
  sink(message);
}
