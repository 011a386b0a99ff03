import { startPostgres, type PgCluster } from '../../bench/lib/postgres-cluster.js';
import { makeDevCerts } from './dev-certs.js';

export { postgresBinDir, startPostgres, type PgCluster } from '../../bench/lib/postgres-cluster.js';

let shared: Promise<PgCluster & { readonly caCert: string }> | null = null;

/**
 * One throwaway cluster (bench/lib/postgres-cluster.ts) for the whole test file
 * (each tap file is its own process), removed when the process exits; a database
 * per test (`newDatabase`). It serves TLS with a development CA (`caCert`), so
 * that sslmode can be exercised. Tests that stop it must start it again before
 * they end. Throws (never skips) when PostgreSQL is not installed.
 */
export function sharedPostgres(): Promise<PgCluster & { readonly caCert: string }> {
  shared ??= (async () => {
    const certs = makeDevCerts();
    try {
      const cluster = await startPostgres({ tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert } });
      return cluster as PgCluster & { readonly caCert: string };
    } finally {
      certs.remove();
    }
  })();
  return shared;
}
