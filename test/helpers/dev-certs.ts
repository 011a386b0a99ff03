import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const makeDevCertsScript = resolve(dirname(fileURLToPath(import.meta.url)), '../../certs/make-dev-certs.sh');

export interface DevCerts {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  remove(): void;
}

/** Runs certs/make-dev-certs.sh into a fresh temp folder (openssl only, as a developer would). */
export function makeDevCerts(...hostnames: string[]): DevCerts {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-certs-'));
  execFileSync('bash', [makeDevCertsScript, dir, ...hostnames], { stdio: 'pipe' });
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
