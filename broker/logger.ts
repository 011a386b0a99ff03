import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs. Tokens and secrets are never passed to the logger; the redaction
 * list is the safety net should one ever be (a password field, a token, a key).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'credbroker' },
      redact: {
        paths: ['password', '*.password', 'token', '*.token', 'accessToken', '*.accessToken', 'refreshCredential', '*.refreshCredential', 'privateJwk', '*.privateJwk', 'payload', '*.payload'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
