import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** `json`: one JSON object a line (for collectors); `pretty`: one readable line per event (for a person); `auto`: pretty on a terminal. */
export type LogFormat = 'json' | 'pretty' | 'auto';

/** `auto` becomes `pretty` when the logs go to a terminal, `json` otherwise (a pipe, a file, journald). */
export function resolveLogFormat(format: LogFormat, out: { isTTY?: boolean } = process.stdout): 'json' | 'pretty' {
  return format === 'auto' ? (out.isTTY ? 'pretty' : 'json') : format;
}

/**
 * The broker's logs, with ISO 8601 timestamps (`"time":"2024-05-01T12:00:00.000Z"`),
 * as JSON or through pino-pretty (pino's own formatter, in process: no worker
 * thread). Tokens and secrets are never passed to the logger; the redaction list
 * is the safety net should one ever be (a password field, a token, a key), and it
 * applies before either format.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, format: LogFormat = 'json'): Logger {
  const target = destination ?? process.stdout;
  const stream = resolveLogFormat(format, target as { isTTY?: boolean }) === 'pretty'
    ? pretty({
      destination: destination ?? 1,
      colorize: !!(target as { isTTY?: boolean }).isTTY,
      singleLine: true,
      translateTime: false, // the time is already ISO 8601 (UTC)
      ignore: 'service',
    })
    : destination ?? pino.destination({ fd: 1, sync: false });
  return pino(
    {
      level,
      base: { service: 'credbroker' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['password', '*.password', 'token', '*.token', 'accessToken', '*.accessToken', 'refreshCredential', '*.refreshCredential', 'privateJwk', '*.privateJwk', 'payload', '*.payload'],
        censor: '[redacted]',
      },
    },
    stream,
  );
}
