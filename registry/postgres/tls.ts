import { isIP } from 'node:net';

/**
 * Whether a PostgreSQL host is this machine: 127.0.0.0/8, ::1 (also as
 * ::ffff:127.x.y.z), `localhost`, or a Unix socket directory (a path). Only
 * there may the registry's traffic (the private signing keys among it) go in clear.
 */
export function isLocalPgHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (h.startsWith('/')) return true;
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h) || /^(0:){7}0*1$/.test(h);
  return false;
}

/**
 * The host node-postgres will reach for `url`: a `host=` query parameter wins
 * over the URL's host (as pg-connection-string reads it), a percent-encoded path
 * is a Unix socket directory, and no host at all is node-postgres's default
 * (`PGHOST`, else localhost).
 */
export function pgHostOf(url: URL, hostless = false): string {
  const host = url.searchParams.get('host') || (hostless ? '' : decodeURIComponent(url.hostname));
  return host || process.env.PGHOST || 'localhost';
}

/**
 * The URL as node-postgres reads it: `postgres://user@/db?host=/socket/dir` has
 * no host, which WHATWG URL refuses and pg-connection-string reads with a placeholder.
 */
function parsePgUrl(url: string): { url: URL; hostless: boolean } | null {
  if (URL.canParse(url)) return { url: new URL(url), hostless: false };
  const placeholder = url.replace('@/', '@placeholder/');
  return URL.canParse(placeholder) ? { url: new URL(placeholder), hostless: true } : null;
}

/** Modes that may talk in clear (`disable`; `allow`, `prefer` fall back) or without checking who answers (`require`). */
const WEAK: Readonly<Record<string, string>> = {
  disable: 'sends the registry\'s traffic, signing keys included, in clear',
  allow: 'may send the registry\'s traffic, signing keys included, in clear',
  prefer: 'may send the registry\'s traffic, signing keys included, in clear',
  require: 'does not check the server\'s certificate (add sslrootcert, or use sslmode=verify-full)',
};

export interface PgTlsPolicy {
  /** The connection string to hand node-postgres: `sslmode=verify-full` added off loopback when none is given. */
  readonly url: string;
  /** One line for the operator when the URL asks for less than verified TLS to another host; never holds the password. */
  readonly warning: string | null;
}

/**
 * TLS by default off this machine: with no `sslmode`, a remote host gets
 * `verify-full` (TLS, the certificate checked against the system CAs or
 * `sslrootcert`, and the host name against the certificate). A weaker mode
 * given explicitly is honoured, with a warning. A local host stays as given
 * (plaintext allowed). An `sslmode` makes node-postgres follow libpq's meanings
 * (`uselibpqcompat`), which is what an operator's other tools read from the same URL.
 */
export function pgTlsPolicy(url: string): PgTlsPolicy {
  let out = url;
  const add = (param: string) => { out += `${out.includes('?') ? '&' : '?'}${param}`; };
  const parsed = parsePgUrl(url);
  if (!parsed) {
    // node-postgres refuses it too (reported redacted, asPgRegistryError): whatever it makes of it, never plaintext by default.
    if (!/[?&]sslmode=/i.test(url)) add('sslmode=verify-full&uselibpqcompat=true');
    return { url: out, warning: null };
  }
  const host = pgHostOf(parsed.url, parsed.hostless);
  const local = isLocalPgHost(host);
  const mode = parsed.url.searchParams.get('sslmode')?.toLowerCase() ?? null;
  if (mode === null && !local) add('sslmode=verify-full');
  if ((mode !== null || !local) && !parsed.url.searchParams.has('uselibpqcompat')) add('uselibpqcompat=true');
  const weak = mode === null || local ? undefined : WEAK[mode];
  const weakHere = weak && !(mode === 'require' && parsed.url.searchParams.has('sslrootcert')) ? weak : null;
  return { url: out, warning: weakHere ? `the registry's PostgreSQL host ${hostForLine(host)} is not this machine and sslmode=${mode} ${weakHere}` : null };
}

/** The host as one short line shows it (it is the operator's own input: cut, with control characters dropped). */
const hostForLine = (host: string) => JSON.stringify(host.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 100));
